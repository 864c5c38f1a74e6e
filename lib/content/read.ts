/**
 * Reading blobs from containerd's content store: streamed ranges and whole,
 * bounded, verified blobs.
 *
 * @module
 */

import { dataLoss } from "./_data_loss.ts";
import { assertDigest, Sha256Stream } from "./digest.ts";
import type { ContainerdClient } from "../grpc/connection.ts";
import { ContainerdError, GrpcCode } from "../grpc/errors.ts";
import type { CallOptions } from "../grpc/rpc.ts";

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
 * import { connect, readContent } from "@wfe/containerd/api";
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
  /**
   * The blob's size when the caller knows it (a descriptor's `size`): no
   * Content.Info round trip; a blob of another size fails with DATA_LOSS.
   */
  size?: number;
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
 * import { connect, readAllContent } from "@wfe/containerd/api";
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
  const { maxBytes = 64 * 1024 * 1024, verify = true, size: known, ...call } = options;
  if (known !== undefined && !(Number.isSafeInteger(known) && known >= 0)) {
    throw new RangeError(`Cannot read ${digest} with size ${known}: expected an integer >= 0`);
  }
  const size = known ?? (await client.content.info({ digest }, call)).info?.size ?? 0;
  const source = known === undefined ? "Info reported" : "the descriptor says";
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
        `the server sent more than the ${size} bytes ${source}`,
      );
    }
    out.set(chunk, filled);
    filled += chunk.length;
  }
  if (filled !== size) {
    throw dataLoss("Content.Read", digest, `read ${filled} bytes, ${source} ${size}`);
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
