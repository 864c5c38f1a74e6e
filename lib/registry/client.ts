/**
 * An OCI distribution client on `fetch`: resolves a reference to the
 * descriptor of its manifest or index (HEAD, GET when the registry answers
 * 405 or leaves out the digest), and reads manifests and blobs verified
 * against their descriptor's size and digest, as a {@linkcode BlobProvider}
 * so that `resolveManifest` and `readImageFiles` work over a registry as
 * they do over the content store.
 *
 * Plain HTTP is used for localhost, 127.0.0.1 and ::1 and for the hosts
 * given in `plainHttp`; every other host is reached over HTTPS.
 *
 * Authentication answers the registry's challenge (see lib/registry/auth.ts)
 * with the `registryAuth` credentials, else those of Docker's config.json. 408, 429, 5xx answers and dropped
 * connections are retried with backoff. Not yet here (issue 10, next):
 * stall detection with Range
 * resume, custom CAs and mirrors.
 *
 * @module
 */

import { retry } from "../_util/async.ts";
import { concat } from "../_util/bytes.ts";
import { errorMessage } from "../_util/errors.ts";
import { Sha256Stream } from "../content/digest.ts";
import type { BlobProvider, ReadBlobOptions } from "../image/provider.ts";
import { INDEX_TYPES, MANIFEST_TYPES, mediaTypeKind } from "../oci/media_types.ts";
import { formatReference, type ImageReference, parseReference } from "../oci/reference.ts";
import type { OciDescriptor } from "../oci/types.ts";
import { AuthFailure, Authorizer, parseChallenge, type RegistryCredentials } from "./auth.ts";
import { dockerCredentials } from "./docker_config.ts";
import { RegistryError } from "./errors.ts";

/** The Accept header of manifest requests: OCI and Docker manifests and indexes, then anything. */
export const MANIFEST_ACCEPT: string = [...MANIFEST_TYPES, ...INDEX_TYPES, "*/*"].join(", ");

/** The largest manifest or index a resolve reads: 4 MiB (containerd's limit). */
export const MAX_MANIFEST_BYTES: number = 4 * 1024 * 1024;

const LOOPBACK = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);

/** Options of {@linkcode RegistryClient}. */
export interface RegistryClientOptions {
  /**
   * Hosts (`host` or `host:port`) to reach over plain HTTP besides localhost,
   * 127.0.0.1 and ::1; `true` for every host.
   * @default {[]}
   */
  plainHttp?: boolean | readonly string[];
  /**
   * Credentials by registry host (`host` or `host:port`), as wfe's
   * `registryAuth`. Without an entry a registry is asked anonymously.
   * @default {{}}
   */
  registryAuth?: Readonly<Record<string, RegistryCredentials>>;
  /**
   * Where Docker's `config.json` is, for hosts without `registryAuth`
   * credentials (`auths`, `credHelpers`, `credsStore`); `false` to ignore it.
   * @default {`DOCKER_CONFIG`, else `~/.docker`}
   */
  dockerConfigDir?: string | false;
  /**
   * Attempts per request, the first included: 408, 429, 5xx answers and
   * dropped connections are retried with exponential backoff from
   * `retryDelayMs`; other answers never are.
   * @default {4}
   */
  attempts?: number;
  /**
   * The pause before the second attempt, in ms (doubled each time, at most 10 s).
   * @default {500}
   */
  retryDelayMs?: number;
}

/** Statuses worth another attempt: timeouts, rate limits and server errors. */
const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);

/** A retryable answer, carried through `retry` so the last one can still be reported. */
class RetryableAnswer extends Error {
  constructor(readonly response: Response) {
    super(`HTTP ${response.status}`);
  }
}

/** What {@linkcode RegistryClient.resolve} found. */
export interface ResolvedReference {
  /** The reference, normalised, e.g. `localhost:5000/team/app:1`. */
  name: string;
  /** Its parts. */
  reference: ImageReference;
  /** The manifest's or index's descriptor: media type, digest and size. */
  descriptor: OciDescriptor;
}

/** Reads images from OCI distribution registries. */
export class RegistryClient {
  #plainHttp: boolean | readonly string[];
  #auth: Authorizer;
  #attempts: number;
  #retryDelayMs: number;

  /** A client; it holds no connection until the first request. */
  constructor(options: RegistryClientOptions = {}) {
    this.#plainHttp = options.plainHttp ?? [];
    this.#attempts = options.attempts ?? 4;
    if (!Number.isSafeInteger(this.#attempts) || this.#attempts < 1) {
      throw new RangeError(`Cannot use attempts ${options.attempts}: expected an integer >= 1`);
    }
    this.#retryDelayMs = options.retryDelayMs ?? 500;
    if (!(this.#retryDelayMs >= 0)) {
      throw new RangeError(
        `Cannot use retryDelayMs ${options.retryDelayMs}: expected a number >= 0`,
      );
    }
    const creds = options.registryAuth ?? {};
    const configDir = options.dockerConfigDir;
    this.#auth = new Authorizer((registry) => {
      const given = creds[registry] ?? creds[registry.replace(/:\d+$/, "")];
      if (given || configDir === false) return Promise.resolve(given);
      return dockerCredentials(registry, { configDir });
    });
  }

  /** The base URL of a registry's API, e.g. `http://127.0.0.1:5000/v2/`. */
  endpoint(registry: string): string {
    const host = registry.replace(/:\d+$/, "");
    const plain = this.#plainHttp === true || LOOPBACK.has(host) ||
      (Array.isArray(this.#plainHttp) && (this.#plainHttp.includes(registry) ||
        this.#plainHttp.includes(host)));
    return `${plain ? "http" : "https"}://${registry}/v2/`;
  }

  /**
   * Resolves a reference to the descriptor of its manifest or index.
   *
   * @param ref A reference such as `localhost:5000/team/app:1` (Docker's
   *   normalisation applies) or its parsed parts.
   * @param options Cancels the requests.
   * @returns The normalised name, its parts and the descriptor.
   * @throws {TypeError} When `ref` is not a valid reference.
   * @throws {RegistryError} When the registry cannot be reached or refuses
   *   (404: `manifest unknown`), or a pinned digest does not match.
   *
   * @example
   * ```ts
   * import { RegistryClient } from "@wfe/containerd/api";
   *
   * const registry = new RegistryClient();
   * const { descriptor } = await registry.resolve("localhost:5000/team/app:1");
   * console.log(descriptor.mediaType, descriptor.digest);
   * ```
   */
  async resolve(
    ref: string | ImageReference,
    options: { signal?: AbortSignal } = {},
  ): Promise<ResolvedReference> {
    const reference = typeof ref === "string" ? parseReference(ref) : ref;
    const name = formatReference(reference);
    const target = reference.digest ?? reference.tag ?? "latest";
    const headers = { Accept: MANIFEST_ACCEPT };
    const path = `manifests/${target}`;
    let res = await this.#request(reference, path, "HEAD", headers, options.signal, [405]);
    const fail = (details: string) =>
      new RegistryError({ ...where(reference), status: res.status, details });
    let digest = res.headers.get("Docker-Content-Digest") ?? undefined;
    let mediaType = res.headers.get("Content-Type")?.split(";")[0].trim() || undefined;
    let size = Number(res.headers.get("Content-Length") ?? NaN);
    if (res.status === 405 || !digest || !mediaType || !Number.isSafeInteger(size)) {
      res = await this.#request(reference, path, "GET", headers, options.signal);
      const bytes = await readBody(
        res,
        MAX_MANIFEST_BYTES,
        () => fail(`manifest ${target} is larger than ${MAX_MANIFEST_BYTES} bytes`),
      );
      const hash = new Sha256Stream();
      hash.update(bytes);
      digest = hash.digest();
      size = bytes.length;
      mediaType ??= mediaTypeOf(bytes);
    }
    if (!mediaType) throw fail(`manifest ${target} has no media type`);
    if (reference.digest && digest !== reference.digest) {
      throw fail(`manifest ${target} hashes to ${digest}`);
    }
    return { name, reference, descriptor: { mediaType, digest: digest!, size } };
  }

  /**
   * The blobs of one repository as a {@linkcode BlobProvider}: manifests and
   * indexes from `manifests/<digest>`, everything else from
   * `blobs/<digest>`, each checked against its descriptor's size and digest
   * (a stream fails at its end when they differ).
   *
   * @param ref The repository, as any reference into it.
   * @returns The provider.
   *
   * @example
   * ```ts
   * import { RegistryClient, resolveManifest } from "@wfe/containerd/api";
   *
   * const registry = new RegistryClient();
   * const { descriptor } = await registry.resolve("localhost:5000/team/app:1");
   * const image = await resolveManifest(registry.blobProvider("localhost:5000/team/app"), descriptor);
   * console.log(image.chainId);
   * ```
   */
  blobProvider(ref: string | ImageReference): BlobProvider {
    const reference = typeof ref === "string" ? parseReference(ref) : ref;
    const open = (desc: OciDescriptor, signal?: AbortSignal): AsyncIterable<Uint8Array> =>
      this.#openBlob(reference, desc, signal);
    return {
      description: `registry ${reference.registry}, repository ${reference.repository}`,
      openBlob: (desc, { signal }) => open(desc, signal),
      async readBlob(desc: OciDescriptor, { maxBytes, signal }: ReadBlobOptions) {
        if (desc.size > maxBytes) {
          throw new RangeError(
            `Cannot read ${desc.digest}: its descriptor says ${desc.size} bytes, more than ${maxBytes}`,
          );
        }
        const chunks: Uint8Array[] = [];
        for await (const chunk of open(desc, signal)) chunks.push(chunk);
        return concat(chunks);
      },
    };
  }

  async *#openBlob(
    reference: ImageReference,
    desc: OciDescriptor,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<Uint8Array> {
    const kind = mediaTypeKind(desc.mediaType);
    const path = `${
      kind === "manifest" || kind === "index" ? "manifests" : "blobs"
    }/${desc.digest}`;
    const headers = { Accept: kind === "manifest" || kind === "index" ? desc.mediaType : "*/*" };
    const res = await this.#request(reference, path, "GET", headers, signal);
    const fail = (details: string) =>
      new RegistryError({
        ...where(reference),
        status: 0,
        details: `blob ${desc.digest}: ${details}`,
      });
    const hash = new Sha256Stream();
    let received = 0;
    for await (const chunk of res.body ?? []) {
      received += chunk.length;
      if (received > desc.size) {
        await res.body?.cancel().catch(() => {});
        throw fail(`more than the ${desc.size} bytes its descriptor says`);
      }
      hash.update(chunk);
      yield chunk;
    }
    if (received !== desc.size) {
      throw fail(`got ${received} bytes, its descriptor says ${desc.size}`);
    }
    const actual = hash.digest();
    if (actual !== desc.digest) throw fail(`the bytes received hash to ${actual}`);
  }

  async #request(
    reference: ImageReference,
    path: string,
    method: "GET" | "HEAD",
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
    allow: readonly number[] = [],
  ): Promise<Response> {
    const url = `${this.endpoint(reference.registry)}${reference.repository}/${path}`;
    const scope = `repository:${reference.repository}:pull`;
    const once = async (authorization: string | undefined): Promise<Response> => {
      const all = authorization ? { ...headers, Authorization: authorization } : headers;
      let res: Response;
      try {
        res = await fetch(url, { method, headers: all, signal });
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        throw new RegistryError({
          ...where(reference),
          status: 0,
          details: `cannot reach ${url}: ${errorMessage(err)}`,
          cause: err,
        });
      }
      if (RETRY_STATUS.has(res.status)) throw new RetryableAnswer(res);
      return res;
    };
    const send = async (authorization: string | undefined): Promise<Response> => {
      try {
        return await retry(() => once(authorization), {
          attempts: this.#attempts,
          minDelayMs: this.#retryDelayMs,
          maxDelayMs: 10_000,
          signal,
          retryable: (err) => {
            if (err instanceof RetryableAnswer) {
              err.response.body?.cancel().catch(() => {});
              return true;
            }
            return err instanceof RegistryError && err.status === 0;
          },
        });
      } catch (err) {
        if (err instanceof RetryableAnswer) return err.response; // the last answer, reported below
        throw err;
      }
    };
    let res = await send(this.#auth.cached(reference.registry, scope));
    if (res.status === 401) {
      const challenge = parseChallenge(res.headers.get("WWW-Authenticate"));
      await res.body?.cancel();
      let authorization: string;
      try {
        if (!challenge) throw new AuthFailure("the registry sent no WWW-Authenticate challenge");
        authorization = await this.#auth.answer(reference.registry, challenge, scope, signal);
      } catch (err) {
        if (!(err instanceof AuthFailure)) throw err;
        throw new RegistryError({
          ...where(reference),
          status: 401,
          details: `unauthorized: ${err.message}`,
          cause: err,
        });
      }
      res = await send(authorization);
    }
    if (res.ok || allow.includes(res.status)) return res;
    throw await responseError(
      reference,
      path,
      res,
      await this.#auth.hasCredentials(reference.registry),
    );
  }
}

function where(reference: ImageReference): { registry: string; repository: string } {
  return { registry: reference.registry, repository: reference.repository };
}

function mediaTypeOf(bytes: Uint8Array): string | undefined {
  try {
    const doc = JSON.parse(new TextDecoder().decode(bytes));
    return typeof doc?.mediaType === "string" ? doc.mediaType : undefined;
  } catch {
    return undefined;
  }
}

async function readBody(res: Response, max: number, tooLarge: () => Error): Promise<Uint8Array> {
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
async function responseError(
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
