/**
 * Importing image archives (OCI image layouts and `docker save` archives)
 * through the same path a pull takes: {@linkcode storeImage} over the
 * archive's blobs.
 *
 * @module
 */

import { openImageArchive } from "../archive/image_archive.ts";
import type { ContainerdClient } from "../grpc/connection.ts";
import type { OciDescriptor } from "../oci/types.ts";
import { type StoredImage, storeImage, type StoreImageOptions } from "./store.ts";

/** Options of {@linkcode importImages}. */
export interface ImportImagesOptions extends Omit<StoreImageOptions, "name" | "source"> {
  /**
   * Names images whose `org.opencontainers.image.ref.name` is only a tag:
   * `<baseName>:<tag>`.
   */
  baseName?: string;
}

/** What {@linkcode importImages} did. */
export interface ImportResult {
  /** The archive's format. */
  format: "oci" | "docker";
  /** One entry per image name stored. */
  images: StoredImage[];
  /** Targets that had no name (give `baseName` to name them by their tag). */
  unnamed: OciDescriptor[];
}

/**
 * Imports the images of an archive: an OCI image layout (`skopeo copy ...
 * oci-archive:`, `ctr images export`) or a `docker save` archive, plain or
 * gzip'd, from a file or a stream. Each named image is stored for the
 * platform (the host's by default) and unpacked, exactly as a pull stores
 * it; names come from `io.containerd.image.name`, a full
 * `org.opencontainers.image.ref.name`, or `RepoTags` (normalised:
 * `alpine:3` becomes `docker.io/library/alpine:3`).
 *
 * @param client A connected client (its namespace receives the images).
 * @param archive The archive's path, or its bytes as a stream (e.g. stdin).
 * @param options Platform, snapshotter, progress, a base name for tag-only names.
 * @returns The images stored and the targets left unnamed.
 * @throws {TypeError} When the archive is not an image archive or lacks a blob.
 * @throws {ContainerdError} From containerd (NOT_FOUND when an image has no
 *   manifest for the platform).
 *
 * @example
 * ```ts
 * import { connect, importImages } from "@wfe/containerd/api";
 *
 * await using client = await connect();
 * const { images } = await importImages(client, "app.tar");
 * for (const image of images) console.log(image.name, image.target.digest);
 * ```
 */
export async function importImages(
  client: ContainerdClient,
  archive: string | ReadableStream<Uint8Array>,
  options: ImportImagesOptions = {},
): Promise<ImportResult> {
  await using opened = await openImageArchive(archive, { baseName: options.baseName });
  const images: StoredImage[] = [];
  const unnamed: OciDescriptor[] = [];
  for (const { names, target } of opened.images) {
    if (names.length === 0) unnamed.push(target);
    for (const name of names) {
      images.push(await storeImage(client, opened.provider, target, { ...options, name }));
    }
  }
  return { format: opened.format, images, unnamed };
}
