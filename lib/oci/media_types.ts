/**
 * OCI and Docker media types: what a media type describes (index, manifest,
 * config, layer) and how a layer is compressed.
 *
 * @module
 */

/** The media types of image indexes, manifests, configs and layers. */
export const MediaType = {
  /** OCI image index (a list of manifests, one per platform). */
  ociIndex: "application/vnd.oci.image.index.v1+json",
  /** OCI image manifest. */
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  /** OCI image config. */
  ociConfig: "application/vnd.oci.image.config.v1+json",
  /** OCI layer, uncompressed tar. */
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  /** OCI layer, gzip-compressed tar. */
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  /** OCI layer, zstd-compressed tar. */
  ociLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  /** OCI non-distributable layer, uncompressed tar (deprecated by the spec, still found). */
  ociLayerNonDistributable: "application/vnd.oci.image.layer.nondistributable.v1.tar",
  /** OCI non-distributable layer, gzip-compressed tar. */
  ociLayerNonDistributableGzip: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  /** OCI non-distributable layer, zstd-compressed tar. */
  ociLayerNonDistributableZstd: "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
  /** Docker manifest list (schema 2), the Docker form of an index. */
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  /** Docker image manifest (schema 2). */
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  /** Docker image config. */
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  /** Docker layer, uncompressed tar. */
  dockerLayer: "application/vnd.docker.image.rootfs.diff.tar",
  /** Docker layer, gzip-compressed tar (the usual Docker layer). */
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  /** Docker foreign layer (e.g. Windows base layers), uncompressed tar. */
  dockerLayerForeign: "application/vnd.docker.image.rootfs.foreign.diff.tar",
  /** Docker foreign layer, gzip-compressed tar. */
  dockerLayerForeignGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
} as const;

/** One of the media types in {@linkcode MediaType}. */
export type MediaType = typeof MediaType[keyof typeof MediaType];

/** What a media type describes; see {@linkcode mediaTypeKind}. */
export type MediaTypeKind = "index" | "manifest" | "config" | "layer";

/** How a layer blob is compressed; see {@linkcode layerCompression}. */
export type LayerCompression = "none" | "gzip" | "zstd";

/** Media types of image indexes (OCI index, Docker manifest list). */
export const INDEX_TYPES: readonly string[] = [MediaType.ociIndex, MediaType.dockerManifestList];
/** Media types of image manifests (OCI, Docker schema 2). */
export const MANIFEST_TYPES: readonly string[] = [MediaType.ociManifest, MediaType.dockerManifest];
/** Media types of image configs (OCI, Docker). */
export const CONFIG_TYPES: readonly string[] = [MediaType.ociConfig, MediaType.dockerConfig];
const LAYER_COMPRESSION: ReadonlyMap<string, LayerCompression> = new Map([
  [MediaType.ociLayer, "none"],
  [MediaType.ociLayerGzip, "gzip"],
  [MediaType.ociLayerZstd, "zstd"],
  [MediaType.ociLayerNonDistributable, "none"],
  [MediaType.ociLayerNonDistributableGzip, "gzip"],
  [MediaType.ociLayerNonDistributableZstd, "zstd"],
  [MediaType.dockerLayer, "none"],
  [MediaType.dockerLayerGzip, "gzip"],
  [MediaType.dockerLayerForeign, "none"],
  [MediaType.dockerLayerForeignGzip, "gzip"],
]);
/** Media types of Docker schema 1 manifests (not supported). */
export const SCHEMA1_TYPES: readonly string[] = [
  "application/vnd.docker.distribution.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

/**
 * Tells what a media type describes.
 *
 * @param mediaType A descriptor's media type.
 * @returns `"index"` (OCI index, Docker manifest list), `"manifest"` (OCI or
 *   Docker schema 2 manifest), `"config"` (OCI or Docker image config),
 *   `"layer"` (any OCI or Docker layer type), or `undefined` for anything else.
 *
 * @example
 * ```ts
 * import { mediaTypeKind } from "@wfe/containerd/api";
 *
 * mediaTypeKind("application/vnd.docker.distribution.manifest.list.v2+json"); // "index"
 * ```
 */
export function mediaTypeKind(mediaType: string): MediaTypeKind | undefined {
  if (INDEX_TYPES.includes(mediaType)) return "index";
  if (MANIFEST_TYPES.includes(mediaType)) return "manifest";
  if (CONFIG_TYPES.includes(mediaType)) return "config";
  if (LAYER_COMPRESSION.has(mediaType)) return "layer";
  return undefined;
}

/**
 * Tells how a layer of this media type is compressed.
 *
 * @param mediaType A layer descriptor's media type.
 * @returns `"none"`, `"gzip"` or `"zstd"`: the OCI and Docker layer types
 *   (distributable or not), and other tar types by their suffix (`+gzip`,
 *   `.tar.gz`, `+zstd`, `.tar`, `application/x-tar`, parameters and case
 *   ignored); `undefined` for anything else.
 *
 * @example
 * ```ts
 * import { layerCompression } from "@wfe/containerd/api";
 *
 * layerCompression("application/vnd.oci.image.layer.v1.tar+zstd"); // "zstd"
 * ```
 */
export function layerCompression(mediaType: string): LayerCompression | undefined {
  const known = LAYER_COMPRESSION.get(mediaType);
  if (known !== undefined) return known;
  // Other spellings of tar layers: parameters, upper case, vendor types.
  const type = mediaType.split(";")[0].trim().toLowerCase();
  if (/(\+|\.)gzip$/.test(type) || type.endsWith(".tar.gz")) return "gzip";
  if (/(\+|\.)zstd$/.test(type)) return "zstd";
  if (/(\.|\/)tar$/.test(type) || type === "application/x-tar") return "none";
  return undefined;
}
