/**
 * HTTP helpers of the registry client: reading bounded bodies and turning a
 * refused request into a {@linkcode RegistryError} that says what it means.
 *
 * @module
 */

import { concat } from "../_util/bytes.ts";
import { errorMessage } from "../_util/errors.ts";
import type { ImageReference } from "../oci/reference.ts";
import { RegistryError } from "./errors.ts";

export function where(reference: ImageReference): { registry: string; repository: string } {
  return { registry: reference.registry, repository: reference.repository };
}

export function mediaTypeOf(bytes: Uint8Array): string | undefined {
  try {
    const doc = JSON.parse(new TextDecoder().decode(bytes));
    return typeof doc?.mediaType === "string" ? doc.mediaType : undefined;
  } catch {
    return undefined;
  }
}

export async function readBody(
  res: Response,
  max: number,
  tooLarge: () => Error,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body ?? []) {
    total += chunk.length;
    if (total > max) {
      await res.body?.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(chunk);
  }
  return concat(chunks);
}

/** Turns a refused request into a RegistryError that says what the status means here. */
export async function responseError(
  reference: ImageReference,
  path: string,
  res: Response,
  hasCredentials: boolean,
): Promise<RegistryError> {
  let code: string | undefined;
  let message = "";
  if (res.body && res.status !== 204) {
    try {
      const body = JSON.parse(await res.text()) as {
        errors?: { code?: string; message?: string }[];
      };
      code = body.errors?.[0]?.code;
      message = body.errors?.[0]?.message ?? "";
    } catch {
      // not a distribution error body
    }
  }
  const [what, target] = path.split("/");
  const subject = what === "manifests" ? `manifest ${target}` : `blob ${target}`;
  let details: string;
  if (res.status === 404) {
    details = what === "manifests"
      ? `manifest unknown: ${target} not found`
      : `blob unknown: ${target} not found`;
  } else if (res.status === 401 || res.status === 403) {
    details = hasCredentials
      ? `unauthorized: ${subject}: credentials for ${reference.registry} were rejected`
      : `unauthorized: ${subject}: no credentials for ${reference.registry} found`;
  } else {
    details = `${subject}: ${message || res.statusText || "request refused"}`;
  }
  return new RegistryError({ ...where(reference), status: res.status, code, details });
}

/**
 * The PEM certificates under `<dir>/<host:port>/` and `<dir>/<host>/` (files
 * ending `.crt`), read when a registry is first used.
 */
export function registryCerts(dir: string | undefined, registry: string): string[] {
  if (!dir) return [];
  const hosts = [registry, registry.replace(/:\d+$/, "")];
  const certs: string[] = [];
  for (const host of new Set(hosts)) {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(`${dir}/${host}`)];
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue;
      throw err;
    }
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.isFile && entry.name.endsWith(".crt")) {
        certs.push(Deno.readTextFileSync(`${dir}/${host}/${entry.name}`));
      }
    }
  }
  return certs;
}

/** Says why a registry could not be reached; TLS trust failures in plain words. */
export function reachError(url: string, registry: string, err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e !== undefined && parts.length < 4; e = (e as Error)?.cause) {
    parts.push(errorMessage(e));
  }
  const text = parts.join(": ");
  if (/certificate|UnknownIssuer|tls|handshake/i.test(text)) {
    return `TLS: cannot verify ${registry}'s certificate (${text}); trust its CA with ` +
      "caCerts or certsDir (CLI: --ca-cert FILE), or, for a private test registry only, " +
      "use plain HTTP (plainHttp / --plain-http)";
  }
  return `cannot reach ${url}: ${text}`;
}
