/**
 * Where image blobs come from: a small interface that containerd's content
 * store implements now and a registry implements next, so resolving an image
 * and reading files from its layers work the same over either.
 *
 * @module
 */

import { readAllContent, readContent } from "../content/read.ts";
import type { ContainerdClient } from "../grpc/connection.ts";
import type { OciDescriptor } from "../oci/types.ts";

/** Options of {@linkcode BlobProvider.readBlob}. */
export interface ReadBlobOptions {
  /** Refuse blobs larger than this many bytes. */
  maxBytes: number;
  /** Cancels the read. */
  signal?: AbortSignal;
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
   * Streams a blob (a layer) as it is stored, compressed or not.
   *
   * @returns The blob's chunks, in order.
   */
  openBlob(desc: OciDescriptor, options: { signal?: AbortSignal }): AsyncIterable<Uint8Array>;
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
      return readAllContent(client, desc.digest, { maxBytes, verify: true, signal });
    },
    openBlob(desc, { signal }) {
      return readContent(client, desc.digest, { signal });
    },
  };
}
