/**
 * Where image blobs come from: a small interface that containerd's content
 * store, a registry and an image archive implement, so resolving an image,
 * storing it and reading files from its layers work the same over each.
 *
 * @module
 */

import { dataLoss } from "../content/_data_loss.ts";
import { Sha256Stream } from "../content/digest.ts";
import { readAllContent, readContent } from "../content/read.ts";
import { ContainerdError, GrpcCode } from "../grpc/errors.ts";
import type { ContainerdClient } from "../grpc/connection.ts";
import type { OciDescriptor } from "../oci/types.ts";

/** Options of {@linkcode BlobProvider.readBlob}. */
export interface ReadBlobOptions {
  /** Refuse blobs larger than this many bytes. */
  maxBytes: number;
  /** Cancels the read. */
  signal?: AbortSignal;
}

/** Options of {@linkcode BlobProvider.openBlob}. */
export interface OpenBlobOptions {
  /** Cancels the read. */
  signal?: AbortSignal;
  /**
   * The first byte to send (resuming an interrupted ingest).
   * @default {0}
   */
  offset?: number;
  /**
   * Hash the bytes and fail at the end when they do not match the digest.
   * Turn it off when the consumer verifies (containerd's content store
   * checks the digest when an ingest is committed).
   * @default {true}
   */
  verify?: boolean;
}

/** A source of image blobs, addressed by descriptor. */
export interface BlobProvider {
  /** Names the source in messages, e.g. `containerd namespace 'default'`. */
  readonly description: string;
  /**
   * Reads a whole blob (an index, manifest or config) into memory.
   *
   * @returns The bytes, verified against the descriptor's digest (callers
   *   compare the size with the descriptor's, to name the document).
   */
  readBlob(desc: OciDescriptor, options: ReadBlobOptions): Promise<Uint8Array>;
  /**
   * Streams a blob (a layer) as it is stored, compressed or not, from
   * `offset` on. Read from offset 0, the stream is verified against the
   * descriptor's size and digest and fails at its end when they differ; from
   * a later offset only the size can be checked (the content store verifies
   * the digest of the whole blob when the ingest is committed).
   *
   * @returns The blob's chunks, in order.
   */
  openBlob(desc: OciDescriptor, options: OpenBlobOptions): AsyncIterable<Uint8Array>;
}

/**
 * The blob provider of containerd's content store, in the client's
 * namespace.
 *
 * @param client A connected client.
 * @returns A provider that reads blobs with Content.Read (digests verified).
 *
 * @example
 * ```ts
 * import { connect } from "@wfe/containerd";
 * import { contentStoreProvider, resolveManifest } from "@wfe/containerd/api";
 *
 * await using client = await connect();
 * const { image } = await client.images.get({ name: "docker.io/library/alpine:latest" });
 * const resolved = await resolveManifest(contentStoreProvider(client), image!.target!);
 * console.log(resolved.chainId);
 * ```
 */
export function contentStoreProvider(client: ContainerdClient): BlobProvider {
  return {
    description: `containerd namespace '${client.namespace}'`,
    readBlob(desc, { maxBytes, signal }) {
      // The descriptor's size saves a Content.Info round trip. When it is wrong, read by the
      // blob's own size, so that the caller can say how the descriptor and the blob differ.
      const options = { maxBytes, verify: true, signal };
      return readAllContent(client, desc.digest, { ...options, size: desc.size }).catch((err) => {
        if (!(err instanceof ContainerdError && err.code === GrpcCode.DATA_LOSS)) throw err;
        return readAllContent(client, desc.digest, options);
      });
    },
    async *openBlob(desc, { signal, offset = 0, verify = true }) {
      const hash = offset === 0 && verify ? new Sha256Stream() : undefined;
      let size = offset;
      for await (const chunk of readContent(client, desc.digest, { signal, offset })) {
        hash?.update(chunk);
        size += chunk.length;
        yield chunk;
      }
      if (size !== desc.size) {
        throw dataLoss(
          "Content.Read",
          desc.digest,
          `${size} bytes, the descriptor says ${desc.size}`,
        );
      }
      const actual = hash?.digest();
      if (actual && actual !== desc.digest) {
        throw dataLoss("Content.Read", desc.digest, `the blob hashes to ${actual}`);
      }
    },
  };
}
