/**
 * Streaming one blob from a registry: verified against its descriptor's size
 * (and digest, read from byte 0), and resumed with a `Range` request from
 * the byte it reached when the connection stalls or drops.
 *
 * @module
 */

import { errorMessage } from "../_util/errors.ts";
import { Sha256Stream } from "../content/digest.ts";
import { mediaTypeKind } from "../oci/media_types.ts";
import type { ImageReference } from "../oci/reference.ts";
import type { OciDescriptor } from "../oci/types.ts";
import { RegistryError } from "./errors.ts";
import { where } from "./_http.ts";

/** How {@linkcode streamBlob} reaches the registry and when it gives up. */
export interface StreamBlobOptions {
  /** Cancels the download. */
  signal: AbortSignal | undefined;
  /** The first byte to send. */
  offset: number;
  /** Hash the bytes (from offset 0) and fail when they do not match. */
  verify: boolean;
  /** Interruptions tolerated, the first download included. */
  attempts: number;
  /** A download without bytes for this long is abandoned and resumed. */
  stallTimeoutMs: number;
  /** Told about each resume. */
  onRetry?: (event: { digest: string; offset: number; reason: string }) => void;
  /** Sends an authorised GET for a path under the repository. */
  request: (
    path: string,
    headers: Record<string, string>,
    signal: AbortSignal,
  ) => Promise<Response>;
}

/** Streams a blob; see the module doc. */
export async function* streamBlob(
  reference: ImageReference,
  desc: OciDescriptor,
  options: StreamBlobOptions,
): AsyncGenerator<Uint8Array> {
  const { signal, offset, verify, attempts, stallTimeoutMs, onRetry, request } = options;
  const kind = mediaTypeKind(desc.mediaType);
  const isDocument = kind === "manifest" || kind === "index";
  const path = `${isDocument ? "manifests" : "blobs"}/${desc.digest}`;
  const fail = (details: string, code?: string) =>
    new RegistryError({
      ...where(reference),
      status: 0,
      code,
      details: `blob ${desc.digest}: ${details}`,
    });
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > desc.size) {
    throw new RangeError(
      `Cannot read ${desc.digest} from offset ${offset}: its size is ${desc.size}`,
    );
  }
  // Read from 0, the bytes are hashed; from a later offset the content store
  // verifies the digest of the whole blob at commit.
  const hash = offset === 0 && verify ? new Sha256Stream() : undefined;
  let position = offset;
  let interruptions = 0;
  while (position < desc.size || (position === 0 && desc.size === 0)) {
    const headers: Record<string, string> = { Accept: isDocument ? desc.mediaType : "*/*" };
    if (position > 0) headers.Range = `bytes=${position}-`;
    const attempt = new AbortController();
    const both = signal ? AbortSignal.any([signal, attempt.signal]) : attempt.signal;
    const res = await request(path, headers, both);
    let skip = 0;
    if (position > 0 && res.status !== 206) skip = position; // the Range was ignored
    const reader = res.body?.getReader();
    if (!reader) throw fail("the registry sent no body");
    let interrupted: string | undefined;
    const header = Number(res.headers.get("Content-Length") ?? NaN);
    const length = Number.isSafeInteger(header) ? header : undefined;
    let received = 0;
    // One watchdog per answer (not a timer per chunk): no bytes for
    // stallTimeoutMs aborts the answer, and the read below fails.
    let lastData = Date.now();
    let stalled = false;
    const watchdog = setInterval(() => {
      if (Date.now() - lastData < stallTimeoutMs) return;
      stalled = true;
      attempt.abort();
    }, Math.max(10, Math.min(1000, stallTimeoutMs / 4)));
    try {
      while (true) {
        let next: ReadableStreamReadResult<Uint8Array>;
        try {
          next = await reader.read();
        } catch (err) {
          if (signal?.aborted) throw signal.reason;
          interrupted = stalled
            ? `no data for ${stallTimeoutMs} ms at byte ${position}`
            : `the connection dropped at byte ${position}: ${errorMessage(err)}`;
          break;
        }
        if (next.done) {
          // An answer shorter than its Content-Length was cut: resume. One that
          // is complete but short means the blob is (fails the size check below).
          if (position < desc.size && length !== undefined && received < length) {
            interrupted = `the answer ended at byte ${position}`;
          }
          break;
        }
        lastData = Date.now();
        received += next.value.length;
        let chunk = next.value;
        if (skip > 0) {
          const n = Math.min(skip, chunk.length);
          skip -= n;
          chunk = chunk.subarray(n);
          if (chunk.length === 0) continue;
        }
        if (position + chunk.length > desc.size) {
          throw fail(`more than the ${desc.size} bytes its descriptor says`, "SIZE_INVALID");
        }
        hash?.update(chunk);
        position += chunk.length;
        yield chunk;
      }
    } finally {
      clearInterval(watchdog);
      attempt.abort();
      reader.releaseLock();
      await res.body?.cancel().catch(() => {});
    }
    if (interrupted === undefined) break;
    if (++interruptions >= attempts) {
      throw fail(`gave up after ${interruptions} interruptions: ${interrupted}`);
    }
    onRetry?.({ digest: desc.digest, offset: position, reason: interrupted });
  }
  if (position !== desc.size) {
    throw fail(`got ${position} bytes, its descriptor says ${desc.size}`, "SIZE_INVALID");
  }
  const actual = hash?.digest();
  if (actual !== undefined && actual !== desc.digest) {
    throw fail(`the bytes received hash to ${actual}`, "DIGEST_INVALID");
  }
}
