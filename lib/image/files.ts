/**
 * Reading single files (such as `/etc/passwd`) out of an image's layers in containerd's content
 * store (or any other blob provider), without mounting anything, so it works against a remote
 * daemon.
 *
 * Each layer blob is streamed from its provider (`readContent` for the content store),
 * decompressed (gzip) when its media type says so and parsed as tar (ustar, GNU long names, PAX records). Layers apply bottom-up with OCI
 * whiteouts (`.wh.<name>` deletes, `.wh..wh..opq` makes a directory opaque), so a file reads as
 * it appears in the final root filesystem; symbolic links (also in parent directories) and hard
 * links are followed inside the image. Only the requested files' bytes are held in memory, and
 * results are memoized per manifest digest and path (manifests are content-addressed, so the
 * cache is never stale).
 *
 * @module
 */

import { Readable } from "node:stream";
import zlib from "node:zlib";
import { LruCache } from "../_util/cache.ts";
import { normalizePath } from "../archive/_paths.ts";
import { readFilesTopDown } from "../archive/top_down.ts";
import {
  DEFAULT_MAX_FILE_BYTES,
  type LayerSource,
  readLayeredFiles,
  tooLarge,
} from "../archive/layered.ts";
import { assertDigest } from "../content/digest.ts";
import type { ContainerdClient } from "../grpc/connection.ts";
import { type BlobProvider, contentStoreProvider } from "./provider.ts";
import { layerCompression } from "../oci/media_types.ts";
import type { OciDescriptor } from "../oci/types.ts";

/** An image as {@linkcode readImageFiles} needs it: its manifest digest and layers. */
export interface ImageLayers {
  /** The manifest's digest; results are memoized under it. */
  manifestDigest: string;
  /** The manifest's layers, bottom first. */
  layers: readonly Pick<OciDescriptor, "mediaType" | "digest" | "size">[];
  /** The image's name, used in error messages (the manifest digest otherwise). */
  name?: string;
}

/** Options of {@linkcode readImageFiles}. */
export interface ReadImageFilesOptions {
  /** Cancels the reads; the call rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Refuse files larger than this many bytes.
   * @default {1048576} (1 MiB)
   */
  maxFileBytes?: number;
}

const decoder = new TextDecoder();

function contentLayer(
  provider: BlobProvider,
  layer: Pick<OciDescriptor, "mediaType" | "digest" | "size">,
  image: string,
  signal: AbortSignal | undefined,
): LayerSource {
  const compression = layerCompression(layer.mediaType);
  if (compression === undefined) {
    throw new Error(
      `Cannot read layer ${layer.digest} (${layer.mediaType}) of image ${image}: not a tar ` +
        "layer media type (expected tar, tar+gzip or tar+zstd)",
    );
  }
  return {
    name: `${layer.digest} (${layer.mediaType})`,
    open: () => {
      stats.layerReads++;
      const blob = provider.openBlob(layer, { signal });
      if (compression === "none") return blob;
      if (compression === "zstd") return unzstd(blob);
      // Chunks from gRPC and fetch are plain ArrayBuffer-backed arrays.
      const chunks = blob as AsyncIterable<Uint8Array<ArrayBuffer>>;
      return ReadableStream.from(chunks).pipeThrough(new DecompressionStream("gzip"));
    },
  };
}

/** Decompresses a zstd stream with node:zlib (Web streams have no zstd). */
async function* unzstd(blob: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const decompress = zlib.createZstdDecompress();
  const input = Readable.from(blob);
  input.on("error", (err) => decompress.destroy(err));
  for await (const chunk of input.pipe(decompress)) yield chunk as Uint8Array;
}

/** Results by `<manifest digest>\0<path>`, least recently used first. */
const cache = new LruCache<string, Uint8Array | undefined>({
  maxEntries: 256,
  maxBytes: 4 * 1024 * 1024,
  maxEntryBytes: 1024 * 1024,
  sizeOf: (value) => value?.length ?? 0,
});
const stats = { layerReads: 0, cacheHits: 0, cacheMisses: 0 };

/** Counters of {@linkcode readImageFiles}' cache, for diagnostics and tests. */
export interface ImageFilesCacheStats {
  /** Layer blobs opened for reading since the module loaded. */
  layerReads: number;
  /** Paths answered from the cache. */
  cacheHits: number;
  /** Paths that had to be read from the layers. */
  cacheMisses: number;
  /** Entries in the cache now. */
  entries: number;
  /** Bytes of file content in the cache now. */
  bytes: number;
}

/**
 * Reports how often {@linkcode readImageFiles} read layers and used its cache.
 *
 * @returns A snapshot of the counters.
 *
 * @example
 * ```ts
 * import { imageFilesCacheStats } from "@wfe/containerd/api";
 *
 * console.log(imageFilesCacheStats().layerReads);
 * ```
 */
export function imageFilesCacheStats(): ImageFilesCacheStats {
  return { ...stats, entries: cache.size, bytes: cache.bytes };
}

/**
 * Empties {@linkcode readImageFiles}' cache (the counters keep counting).
 *
 * @example
 * ```ts
 * import { clearImageFilesCache } from "@wfe/containerd/api";
 *
 * clearImageFilesCache();
 * ```
 */
export function clearImageFilesCache(): void {
  cache.clear();
}

/**
 * Reads files from an image's layers (in containerd's content store or another blob provider), as
 * they appear in the image's root filesystem (see {@linkcode readLayeredFiles} for whiteouts and links). Layer blobs are
 * streamed from the provider and gunzipped as their media type says; only the requested files
 * are kept in memory. Results are memoized per manifest digest and path in a bounded cache, so a
 * second call for the same image reads no layers.
 *
 * @param client A connected client (its namespace must hold the layer blobs), or another
 *   {@linkcode BlobProvider} of the layer blobs.
 * @param image The manifest digest and its layer descriptors, bottom first.
 * @param paths Absolute paths, e.g. `["/etc/passwd", "/etc/group"]`.
 * @param options Signal and the per-file size cap (default 1 MiB).
 * @returns A map from each requested path to its bytes, or `undefined` when the image has no
 *   regular file there. The arrays are the caller's to keep (copies of the cached ones).
 * @throws {TypeError} When a digest or path is malformed.
 * @throws {RangeError} When a requested file is larger than `maxFileBytes`.
 * @throws {Error} When a layer's media type is not tar, tar+gzip or tar+zstd, or
 *   a layer is not a valid tar archive.
 * @throws {ContainerdError} NOT_FOUND (5) when a layer blob is missing from the content store
 *   (a registry provider throws a RegistryError instead).
 *
 * @example
 * ```ts
 * import { connect, readAllContent, readImageFiles } from "@wfe/containerd/api";
 *
 * await using client = await connect();
 * const { image } = await client.images.get({ name: "wfe.test/busybox:one-layer" });
 * const manifestDigest = image!.target!.digest;
 * const manifest = JSON.parse(new TextDecoder().decode(await readAllContent(client, manifestDigest)));
 * const files = await readImageFiles(client, { manifestDigest, layers: manifest.layers }, [
 *   "/etc/os-release",
 * ]);
 * console.log(new TextDecoder().decode(files.get("/etc/os-release")));
 * ```
 */
export async function readImageFiles(
  client: ContainerdClient | BlobProvider,
  image: ImageLayers,
  paths: readonly string[],
  options: ReadImageFilesOptions = {},
): Promise<Map<string, Uint8Array | undefined>> {
  const { signal, maxFileBytes = DEFAULT_MAX_FILE_BYTES } = options;
  assertDigest(image.manifestDigest, "manifestDigest");
  image.layers.forEach((l, i) => assertDigest(l.digest, `layers[${i}].digest`));
  if (!Number.isSafeInteger(maxFileBytes) || maxFileBytes < 0) {
    throw new RangeError(`Cannot use maxFileBytes ${maxFileBytes}: expected an integer >= 0`);
  }
  signal?.throwIfAborted();
  const imageName = image.name ? `${image.name} (${image.manifestDigest})` : image.manifestDigest;
  const results = new Map<string, Uint8Array | undefined>();
  const missing: string[] = [];
  for (const path of paths) {
    if (typeof path !== "string" || path === "" || path.includes("\0")) {
      throw new TypeError(
        `Cannot read path '${path}' from image ${imageName}: expected a file path`,
      );
    }
    const hit = cache.get(`${image.manifestDigest}\0${normalizePath(path)}`);
    if (!hit) {
      if (!missing.includes(path)) missing.push(path);
      continue;
    }
    stats.cacheHits++;
    if (hit.value !== undefined && hit.value.length > maxFileBytes) {
      throw tooLarge(path, normalizePath(path), hit.value.length, maxFileBytes, imageName);
    }
    results.set(path, hit.value?.slice());
  }
  if (missing.length > 0) {
    stats.cacheMisses += missing.length;
    const provider = "readBlob" in client ? client : contentStoreProvider(client);
    const layers = image.layers.map((l) => contentLayer(provider, l, imageName, signal));
    // From the top layer down, stopping once decided; the full reader when links are involved.
    const read = await readFilesTopDown(layers, missing, { signal, maxFileBytes }) ??
      await readLayeredFiles(layers, missing, { signal, maxFileBytes, imageName });
    for (const [path, value] of read) {
      cache.set(`${image.manifestDigest}\0${normalizePath(path)}`, value);
      results.set(path, value?.slice());
    }
  }
  // Keep the caller's order.
  return new Map(paths.map((p) => [p, results.get(p)]));
}

/**
 * Reads an image's `/etc/passwd` and `/etc/group` as text (for `resolveUser`).
 *
 * @param client A connected client.
 * @param image The manifest digest and its layer descriptors, bottom first.
 * @param options Signal and the per-file size cap (default 1 MiB).
 * @returns The two files' texts; a file the image lacks is absent.
 * @throws {RangeError} When a file is larger than `maxFileBytes`.
 * @throws {Error} As {@linkcode readImageFiles}.
 *
 * @example
 * ```ts
 * import { connect, readAllContent, readImagePasswdGroup, resolveUser } from "@wfe/containerd/api";
 *
 * await using client = await connect();
 * const name = "wfe.test/busybox:one-layer";
 * const { image } = await client.images.get({ name });
 * const manifestDigest = image!.target!.digest;
 * const manifest = JSON.parse(new TextDecoder().decode(await readAllContent(client, manifestDigest)));
 * const files = await readImagePasswdGroup(client, { manifestDigest, layers: manifest.layers });
 * console.log(resolveUser("nobody", files, name)); // { uid: 65534, gid: 65534, ... }
 * ```
 */
export async function readImagePasswdGroup(
  client: ContainerdClient | BlobProvider,
  image: ImageLayers,
  options: ReadImageFilesOptions = {},
): Promise<{ passwd?: string; group?: string }> {
  const files = await readImageFiles(client, image, ["/etc/passwd", "/etc/group"], options);
  const out: { passwd?: string; group?: string } = {};
  const passwd = files.get("/etc/passwd");
  const group = files.get("/etc/group");
  if (passwd !== undefined) out.passwd = decoder.decode(passwd);
  if (group !== undefined) out.group = decoder.decode(group);
  return out;
}
