/**
 * Reading and writing blobs in containerd's content store.
 *
 * @module
 */

import type { ContainerdClient } from "./connection.ts";
import { ContainerdError, GrpcCode, isAlreadyExists, isNotFound } from "./errors.ts";
import { assertDigest, Sha256Stream } from "./digest.ts";
import type { CallOptions } from "./rpc.ts";
import { WriteAction, type WriteContentResponse } from "../proto/gen/types.ts";

/** The largest chunk containerd accepts comfortably in one Write message: 1 MiB. */
export const MAX_WRITE_CHUNK: number = 1024 * 1024;

/** Options of {@linkcode readContent}. */
export interface ReadContentOptions extends CallOptions {
  /**
   * Byte offset to start at.
   * @default {0}
   */
  offset?: number;
  /**
   * How many bytes to read; `undefined` or 0 reads to the end.
   * @default {0}
   */
  size?: number;
}

/**
 * Streams a blob's bytes. Breaking out of the loop cancels the read.
 *
 * @param client A connected client.
 * @param digest The blob's `sha256:` digest.
 * @param options Range, signal and deadline.
 * @returns The blob's bytes, chunk by chunk (containerd sends at most 1 MiB each).
 * @throws {ContainerdError} NOT_FOUND (5) when the blob is absent; DATA_LOSS (15)
 *   when the server skips or repeats bytes.
 *
 * @example
 * ```ts
 * import { connect, readContent } from "@wfe/containerd";
 *
 * await using client = await connect();
 * const digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
 * for await (const chunk of readContent(client, digest)) console.log(chunk.length);
 * ```
 */
export async function* readContent(
  client: ContainerdClient,
  digest: string,
  options: ReadContentOptions = {},
): AsyncGenerator<Uint8Array, void, undefined> {
  assertDigest(digest);
  const { offset = 0, size = 0, ...call } = options;
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new RangeError(`Cannot read ${digest} at offset ${offset}: expected an integer >= 0`);
  }
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new RangeError(`Cannot read ${size} bytes of ${digest}: expected an integer >= 0`);
  }
  let position = 0;
  for await (const res of client.content.read({ digest, offset, size }, call)) {
    // The server numbers response offsets from the requested offset.
    if (res.offset !== position) {
      throw new ContainerdError({
        code: GrpcCode.DATA_LOSS,
        method: "Content.Read",
        details: `${digest}: expected data at offset ${position}, got offset ${res.offset}`,
      });
    }
    position += res.data.length;
    if (res.data.length > 0) yield res.data;
  }
}

/** Options of {@linkcode readAllContent}. */
export interface ReadAllContentOptions extends CallOptions {
  /**
   * Refuse blobs larger than this many bytes (checked before reading).
   * @default {67108864} (64 MiB)
   */
  maxBytes?: number;
  /**
   * Check that the bytes hash to `digest`.
   * @default {true}
   */
  verify?: boolean;
}

/**
 * Reads a whole blob into memory, refusing blobs over `maxBytes`.
 *
 * @param client A connected client.
 * @param digest The blob's `sha256:` digest.
 * @param options Size cap, verification, signal and deadline.
 * @returns The blob's bytes.
 * @throws {RangeError} When the blob is larger than `maxBytes`.
 * @throws {ContainerdError} NOT_FOUND (5) when the blob is absent; DATA_LOSS (15)
 *   when the bytes do not match the size or digest.
 *
 * @example
 * ```ts
 * import { connect, readAllContent } from "@wfe/containerd";
 *
 * await using client = await connect();
 * const image = await client.images.get({ name: "wfe.test/busybox:one-layer" });
 * const manifest = await readAllContent(client, image.image!.target!.digest, { maxBytes: 4 << 20 });
 * console.log(JSON.parse(new TextDecoder().decode(manifest)).mediaType);
 * ```
 */
export async function readAllContent(
  client: ContainerdClient,
  digest: string,
  options: ReadAllContentOptions = {},
): Promise<Uint8Array> {
  assertDigest(digest);
  const { maxBytes = 64 * 1024 * 1024, verify = true, ...call } = options;
  const info = await client.content.info({ digest }, call);
  const size = info.info?.size ?? 0;
  if (size > maxBytes) {
    throw new RangeError(
      `Cannot read ${digest}: its ${size} bytes exceed maxBytes ${maxBytes}`,
    );
  }
  const out = new Uint8Array(size);
  let filled = 0;
  for await (const chunk of readContent(client, digest, call)) {
    if (filled + chunk.length > size) {
      throw dataLoss(
        "Content.Read",
        digest,
        `the server sent more than the ${size} bytes Info reported`,
      );
    }
    out.set(chunk, filled);
    filled += chunk.length;
  }
  if (filled !== size) {
    throw dataLoss("Content.Read", digest, `read ${filled} bytes, Info reported ${size}`);
  }
  if (verify) {
    const hash = new Sha256Stream();
    hash.update(out);
    const actual = hash.digest();
    if (actual !== digest) {
      throw dataLoss("Content.Read", digest, `the bytes read hash to ${actual}`);
    }
  }
  return out;
}

/** Data {@linkcode writeContent} accepts. */
export type ContentSource = Uint8Array | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

/** Options of {@linkcode writeContent}. */
export interface WriteContentOptions extends CallOptions {
  /**
   * The ingest reference; a later write with the same ref resumes where this
   * one stopped.
   * @default {"upload-<expected digest>"} (a random ref when no digest is known)
   */
  ref?: string;
  /** Digest the blob must have; computed for a `Uint8Array` when omitted. */
  expected?: string;
  /** Total size in bytes; taken from a `Uint8Array` when omitted. */
  total?: number;
  /** Labels set when the commit creates the blob. */
  labels?: Record<string, string>;
  /**
   * Bytes per Write message, at most 1 MiB.
   * @default {1048576}
   */
  chunkSize?: number;
  /** Called after each acknowledged chunk with the bytes committed so far. */
  onProgress?: (written: number, total: number | undefined) => void;
}

/** What {@linkcode writeContent} did. */
export interface WriteContentResult {
  /** The blob's digest. */
  digest: string;
  /** The blob's size in bytes. */
  size: number;
  /** True when the blob was already in the store and nothing was written. */
  existed: boolean;
  /** The offset the ingest resumed from (0 for a fresh ingest). */
  resumedFrom: number;
}

/**
 * Writes a blob: STAT (resume point), WRITE chunks of at most 1 MiB, each with
 * its offset, then COMMIT with the expected digest. A blob that already exists
 * is a success (`existed: true`); an interrupted ingest with the same `ref`
 * resumes from the server's offset. The data is hashed while it is sent and a
 * mismatch with `expected` aborts the ingest.
 *
 * @param client A connected client (its lease, if any, keeps the blob alive).
 * @param data The bytes, a `ReadableStream` or an async iterable of chunks.
 * @param options Ref, expected digest, total, labels, chunk size, progress.
 * @returns The digest and size, and whether the blob existed or resumed.
 * @throws {ContainerdError} DATA_LOSS (15) when the data does not match
 *   `expected` or `total`; other codes from the server.
 *
 * @example
 * ```ts
 * import { connect, writeContent } from "@wfe/containerd";
 *
 * await using client = await connect();
 * const { digest } = await writeContent(client, new TextEncoder().encode("hello"));
 * ```
 */
export async function writeContent(
  client: ContainerdClient,
  data: ContentSource,
  options: WriteContentOptions = {},
): Promise<WriteContentResult> {
  const { ref: givenRef, labels, onProgress, chunkSize = MAX_WRITE_CHUNK, ...call } = options;
  let { expected, total } = options;
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_WRITE_CHUNK) {
    throw new RangeError(`Cannot use chunkSize ${chunkSize}: expected 1 to ${MAX_WRITE_CHUNK}`);
  }
  if (expected !== undefined) assertDigest(expected, "expected");
  if (data instanceof Uint8Array) {
    if (total !== undefined && total !== data.length) {
      throw new RangeError(`Cannot write ${data.length} bytes with total ${total}`);
    }
    total = data.length;
    if (expected === undefined) {
      const hash = new Sha256Stream();
      hash.update(data);
      expected = hash.digest();
    }
  }
  if (total !== undefined && (!Number.isSafeInteger(total) || total < 0)) {
    throw new RangeError(`Cannot write with total ${total}: expected an integer >= 0`);
  }
  const ref = givenRef ?? (expected ? `upload-${expected}` : `upload-${crypto.randomUUID()}`);
  const { signal, timeoutMs, namespace, lease } = call;

  const stream = client.content.write({ signal, timeoutMs, namespace, lease });
  const exchange = async (
    request: Parameters<typeof stream.send>[0],
  ): Promise<WriteContentResponse> => {
    await stream.send(request);
    const res = await stream.recv();
    if (!res) {
      throw new ContainerdError({
        code: GrpcCode.UNKNOWN,
        method: "Content.Write",
        details: `${ref}: the server ended the stream without a response`,
      });
    }
    return res;
  };
  const existedResult = (): WriteContentResult => ({
    digest: expected!,
    size: total ?? 0,
    existed: true,
    resumedFrom: 0,
  });

  try {
    let stat: WriteContentResponse;
    try {
      stat = await exchange({ action: WriteAction.STAT, ref, total, expected });
    } catch (err) {
      if (isAlreadyExists(err) && expected) return existedResult();
      throw err;
    }
    let offset = stat.offset;
    if (total !== undefined && offset > total) offset = 0; // a stale ingest: start over
    const resumedFrom = offset;
    const hash = new Sha256Stream();
    let written = 0; // bytes of `data` consumed (hashed)

    for await (const piece of chunks(data, chunkSize)) {
      hash.update(piece);
      const start = written;
      written += piece.length;
      if (total !== undefined && written > total) {
        throw dataLoss("Content.Write", ref, `the data is longer than total ${total}`);
      }
      if (written <= offset) continue; // already on the server
      const part = start < offset ? piece.subarray(offset - start) : piece;
      const res = await exchange({ action: WriteAction.WRITE, ref, offset, data: part });
      offset += part.length;
      if (res.offset !== offset) {
        throw dataLoss("Content.Write", ref, `server is at offset ${res.offset}, sent ${offset}`);
      }
      onProgress?.(offset, total);
    }
    if (total !== undefined && written !== total) {
      throw dataLoss("Content.Write", ref, `the data has ${written} bytes, total is ${total}`);
    }
    const actual = hash.digest();
    if (expected !== undefined && actual !== expected) {
      await abortIngest(client, ref, call);
      throw dataLoss("Content.Write", ref, `the data hashes to ${actual}, expected ${expected}`);
    }
    try {
      const res = await exchange({
        action: WriteAction.COMMIT,
        ref,
        total: written,
        offset,
        expected: actual,
        labels,
      });
      if (res.digest && res.digest !== actual) {
        throw dataLoss("Content.Write", ref, `committed as ${res.digest}, expected ${actual}`);
      }
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      return { ...existedResult(), digest: actual, size: written };
    }
    stream.closeSend();
    // The server repeats its last response after a commit; drain and ignore it.
    while (await stream.recv() !== undefined) { /* ignore */ }
    return { digest: actual, size: written, existed: false, resumedFrom };
  } finally {
    stream.cancel();
  }
}

function dataLoss(method: string, subject: string, details: string): ContainerdError {
  return new ContainerdError({
    code: GrpcCode.DATA_LOSS,
    method,
    details: `${subject}: ${details}`,
  });
}

async function abortIngest(
  client: ContainerdClient,
  ref: string,
  call: CallOptions,
): Promise<void> {
  try {
    await client.content.abort({ ref }, { ...call, signal: undefined });
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

async function* chunks(data: ContentSource, size: number): AsyncGenerator<Uint8Array> {
  if (data instanceof Uint8Array) {
    for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
    return;
  }
  for await (const piece of data as AsyncIterable<Uint8Array>) {
    for (let i = 0; i < piece.length; i += size) yield piece.subarray(i, i + size);
  }
}
