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
 * connections are retried with backoff; a blob download that stalls or
 * drops is resumed with a `Range` request from the byte it reached.
 *
 * @module
 */

import { retry } from "../_util/async.ts";
import { concat } from "../_util/bytes.ts";
import { Sha256Stream } from "../content/digest.ts";
import type { BlobProvider, ReadBlobOptions } from "../image/provider.ts";
import { INDEX_TYPES, MANIFEST_TYPES } from "../oci/media_types.ts";
import { formatReference, type ImageReference, parseReference } from "../oci/reference.ts";
import type { OciDescriptor } from "../oci/types.ts";
import { AuthFailure, Authorizer, parseChallenge, type RegistryCredentials } from "./auth.ts";
import { dockerCredentials } from "./docker_config.ts";
import { RegistryError } from "./errors.ts";
import { streamBlob } from "./_blob.ts";
import { mediaTypeOf, reachError, readBody, registryCerts, responseError, where } from "./_http.ts";

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
  /**
   * A blob download that receives no bytes for this long is abandoned and
   * requested again from where it stopped (`Range: bytes=N-`), as is one
   * whose connection drops; at most `attempts` times per blob.
   * @default {30000}
   */
  stallTimeoutMs?: number;
  /**
   * PEM certificates of CAs to trust for HTTPS registries, besides the
   * system's (e.g. the contents of `registry.ca`).
   * @default {[]}
   */
  caCerts?: readonly string[];
  /**
   * A directory of per-registry certificates as Docker and containerd lay
   * them out: `<dir>/<host:port>/*.crt` (or `<dir>/<host>/*.crt`), e.g.
   * `/etc/docker/certs.d` or `/etc/containerd/certs.d`.
   */
  certsDir?: string;
  /**
   * Mirrors per registry host, tried in order before the registry itself
   * by `pull`, e.g. `{ "docker.io": ["mirror.internal:5000"] }`: the first
   * that resolves the reference serves the whole pull; the image keeps its
   * name. Each mirror gets its own credentials (`registryAuth`, config.json).
   * @default {{}}
   */
  mirrors?: Readonly<Record<string, readonly string[]>>;
  /** Called when a blob download is resumed after a stall or a dropped connection. */
  onBlobRetry?: (event: BlobRetryEvent) => void;
}

/** What {@linkcode RegistryClientOptions.onBlobRetry} is told. */
export interface BlobRetryEvent {
  /** The blob's digest. */
  digest: string;
  /** The byte the download resumes from. */
  offset: number;
  /** Why, e.g. `no data for 30000 ms at byte 1048576`. */
  reason: string;
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
  #stallTimeoutMs: number;
  #onRetry: RegistryClientOptions["onBlobRetry"];
  #caCerts: readonly string[];
  #mirrors: Readonly<Record<string, readonly string[]>>;
  #certsDir: string | undefined;
  #httpClients = new Map<string, Deno.HttpClient | undefined>();

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
    this.#stallTimeoutMs = options.stallTimeoutMs ?? 30_000;
    if (!(this.#stallTimeoutMs > 0) || this.#stallTimeoutMs > 2 ** 31 - 1) {
      throw new RangeError(
        `Cannot use stallTimeoutMs ${options.stallTimeoutMs}: expected 1 to ${2 ** 31 - 1}`,
      );
    }
    this.#onRetry = options.onBlobRetry;
    this.#caCerts = options.caCerts ?? [];
    this.#mirrors = options.mirrors ?? {};
    this.#certsDir = options.certsDir;
    const creds = options.registryAuth ?? {};
    const configDir = options.dockerConfigDir;
    this.#auth = new Authorizer((registry) => {
      const given = creds[registry] ?? creds[registry.replace(/:\d+$/, "")];
      if (given || configDir === false) return Promise.resolve(given);
      return dockerCredentials(registry, { configDir });
    });
  }

  /**
   * The base URL of a registry's API, e.g. `http://127.0.0.1:5000/v2/`:
   * plain HTTP for the hosts in `plainHttp`, and for localhost, 127.0.0.1 and
   * ::1 unless a CA is configured for them (`caCerts`, or `certsDir` has
   * certificates for the host), which means they serve HTTPS.
   */
  endpoint(registry: string): string {
    const host = registry.replace(/:\d+$/, "");
    const listed = Array.isArray(this.#plainHttp) &&
      (this.#plainHttp.includes(registry) || this.#plainHttp.includes(host));
    const plain = this.#plainHttp === true || listed ||
      (LOOPBACK.has(host) && this.#httpClient(registry) === undefined);
    return `${plain ? "http" : "https"}://${registry}/v2/`;
  }

  /** The hosts to try for a registry: its mirrors in order, then itself. */
  hostsFor(registry: string): string[] {
    return [...(this.#mirrors[registry] ?? []), registry];
  }

  /** The HTTP client for a registry: the default one unless extra CAs apply. */
  #httpClient(registry: string): Deno.HttpClient | undefined {
    if (this.#httpClients.has(registry)) return this.#httpClients.get(registry);
    const certs = [...this.#caCerts, ...registryCerts(this.#certsDir, registry)];
    const client = certs.length > 0 ? Deno.createHttpClient({ caCerts: certs }) : undefined;
    this.#httpClients.set(registry, client);
    return client;
  }

  /** Closes the HTTP clients made for custom CAs. */
  close(): void {
    for (const client of this.#httpClients.values()) client?.close();
    this.#httpClients.clear();
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
    const open = (desc: OciDescriptor, signal?: AbortSignal, offset = 0, verify = true) =>
      streamBlob(reference, desc, {
        signal,
        offset,
        verify,
        attempts: this.#attempts,
        stallTimeoutMs: this.#stallTimeoutMs,
        onRetry: this.#onRetry,
        request: (path, headers, signal) => this.#request(reference, path, "GET", headers, signal),
      });
    return {
      description: `registry ${reference.registry}, repository ${reference.repository}`,
      openBlob: (desc, { signal, offset, verify }) => open(desc, signal, offset, verify),
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
        const client = this.#httpClient(reference.registry);
        res = await fetch(url, { method, headers: all, signal, client });
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        throw new RegistryError({
          ...where(reference),
          status: 0,
          details: reachError(url, reference.registry, err),
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
