/**
 * Writing blobs into containerd's content store: chunked, resumable (an
 * ingest ref resumes where an earlier write stopped) and verified before commit.
 *
 * @module
 */

import { dataLoss } from "./_data_loss.ts";
import { assertDigest, Sha256Stream } from "./digest.ts";
import { MAX_WRITE_CHUNK } from "./read.ts";
import type { ContainerdClient } from "../grpc/connection.ts";
import { ContainerdError, GrpcCode, isAlreadyExists, isNotFound } from "../grpc/errors.ts";
import type { CallOptions } from "../grpc/rpc.ts";
import { WriteAction, type WriteContentResponse } from "../../proto/gen/types.ts";

/** WRITE messages sent before waiting for the first answer (at most 4 MiB in flight). */
const WRITE_WINDOW = 4;

/** How long an aborted write waits for the acknowledgements of what it sent. */
const ABORT_DRAIN_MS = 2000;

/** Data {@linkcode writeContent} accepts. */
export type ContentSource = Uint8Array | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

/**
 * A source that can start at any offset: called once with the offset the
 * ingest resumes from, it returns the blob's bytes from there on.
 */
export type ResumableSource = (offset: number) => ContentSource;

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
  /**
   * Hash the data on this side before COMMIT, so a mismatch aborts the
   * ingest. Turn it off when the source verifies its own digest (a registry
   * stream does); containerd checks `expected` at COMMIT either way. Data
   * resumed through a {@linkcode ResumableSource} is not hashed here.
   * @default {true}
   */
  verify?: boolean;
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
 * import { connect, writeContent } from "@wfe/containerd/api";
 *
 * await using client = await connect();
 * const { digest } = await writeContent(client, new TextEncoder().encode("hello"));
 * ```
 */
export async function writeContent(
  client: ContainerdClient,
  data: ContentSource | ResumableSource,
  options: WriteContentOptions = {},
): Promise<WriteContentResult> {
  const {
    ref: givenRef,
    labels,
    onProgress,
    chunkSize = MAX_WRITE_CHUNK,
    verify = true,
    ...call
  } = options;
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
  if (typeof data === "function" && expected === undefined) {
    throw new TypeError("Cannot resume a write without the expected digest");
  }
  const { signal, timeoutMs, namespace, lease } = call;

  // The call gets its own signal: on the caller's abort, the WRITEs already
  // sent are acknowledged first (for at most ABORT_DRAIN_MS), so the ingest
  // keeps every byte that left this process and a later write resumes there.
  const callAbort = new AbortController();
  let drainTimer: ReturnType<typeof setTimeout> | undefined;
  const onAbort = () => {
    drainTimer = setTimeout(() => callAbort.abort(signal!.reason), ABORT_DRAIN_MS);
  };
  signal?.throwIfAborted();
  signal?.addEventListener("abort", onAbort, { once: true });
  const stream = client.content.write({
    signal: callAbort.signal,
    timeoutMs,
    namespace,
    lease,
  });
  const receive = async (): Promise<WriteContentResponse> => {
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
  const exchange = async (
    request: Parameters<typeof stream.send>[0],
  ): Promise<WriteContentResponse> => {
    await stream.send(request);
    return await receive();
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
    let source: ContentSource;
    let written = 0; // bytes of the blob consumed
    if (typeof data === "function") {
      source = data(offset);
      written = offset; // the source starts where the ingest stopped
    } else {
      source = data;
    }
    const hash = verify && written === 0 ? new Sha256Stream() : undefined;
    const inFlight: number[] = []; // the offset each unacknowledged WRITE ends at
    const acknowledge = async (): Promise<void> => {
      const want = inFlight.shift()!;
      const res = await receive();
      if (res.offset !== want) {
        throw dataLoss("Content.Write", ref, `server is at offset ${res.offset}, sent ${want}`);
      }
      onProgress?.(want, total);
    };

    // Acknowledges what is in flight before giving up on a failed source or an abort.
    const settle = async (): Promise<void> => {
      try {
        while (inFlight.length > 0) await acknowledge();
      } catch { /* the original failure is reported */ }
    };
    const pieces = chunks(source, chunkSize)[Symbol.asyncIterator]();
    while (true) {
      let next: IteratorResult<Uint8Array>;
      try {
        next = await pieces.next();
      } catch (err) {
        await settle();
        throw signal?.aborted ? signal.reason : err;
      }
      if (next.done) break;
      if (signal?.aborted) {
        await settle();
        throw signal.reason;
      }
      const piece = next.value;
      hash?.update(piece);
      const start = written;
      written += piece.length;
      if (total !== undefined && written > total) {
        throw dataLoss("Content.Write", ref, `the data is longer than total ${total}`);
      }
      if (written <= offset) continue; // already on the server
      const part = start < offset ? piece.subarray(offset - start) : piece;
      // Up to WRITE_WINDOW chunks in flight: the server answers each in order.
      await stream.send({ action: WriteAction.WRITE, ref, offset, data: part });
      offset += part.length;
      inFlight.push(offset);
      if (inFlight.length >= WRITE_WINDOW) await acknowledge();
    }
    while (inFlight.length > 0) await acknowledge();
    if (total !== undefined && written !== total) {
      throw dataLoss("Content.Write", ref, `the data has ${written} bytes, total is ${total}`);
    }
    const actual = hash?.digest() ?? expected!;
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
    clearTimeout(drainTimer);
    signal?.removeEventListener("abort", onAbort);
    stream.cancel();
  }
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

/** Cuts the data into pieces of `size` bytes (the last may be shorter), joining small chunks. */
async function* chunks(data: ContentSource, size: number): AsyncGenerator<Uint8Array> {
  if (data instanceof Uint8Array) {
    for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
    return;
  }
  let buffer = new Uint8Array(0);
  let filled = 0;
  for await (let piece of data as AsyncIterable<Uint8Array>) {
    if (filled === 0 && piece.length >= size) {
      let i = 0;
      for (; i + size <= piece.length; i += size) yield piece.subarray(i, i + size);
      piece = piece.subarray(i);
    }
    while (piece.length > 0) {
      if (buffer.length === 0) buffer = new Uint8Array(size);
      const n = Math.min(size - filled, piece.length);
      buffer.set(piece.subarray(0, n), filled);
      filled += n;
      piece = piece.subarray(n);
      if (filled === size) {
        yield buffer;
        buffer = new Uint8Array(0); // the consumer may keep the yielded piece
        filled = 0;
      }
    }
  }
  if (filled > 0) yield buffer.subarray(0, filled);
}
