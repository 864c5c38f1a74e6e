/**
 * Resolving an image's target descriptor for one platform over any
 * {@linkcode BlobProvider}: an index or manifest list is narrowed to the best
 * manifest (nested indexes followed), the manifest and config are read,
 * verified and validated, and the chain ID of the layers is computed.
 *
 * Parsed configs are memoized by config digest. A digest names its content,
 * so a cached entry is never stale; the cache is bounded by entries and bytes.
 *
 * @module
 */

import { LruCache } from "../_util/cache.ts";
import { ContainerdError, GrpcCode } from "../grpc/errors.ts";
import type { BlobProvider } from "./provider.ts";
import { chainId as computeChainId } from "../oci/chain_id.ts";
import { parseImageConfig, parseIndex, parseManifest } from "../oci/documents.ts";
import { mediaTypeKind } from "../oci/media_types.ts";
import {
  compatiblePlatforms,
  describeOffers,
  formatPlatform,
  hostPlatform,
  matchingManifests,
  matchPlatform,
  parsePlatform,
} from "../oci/platform.ts";
import type { OciDescriptor, OciImageConfig, OciManifest, OciPlatform } from "../oci/types.ts";

/** The largest index, manifest or config that is read: 8 MiB. */
export const MAX_DOCUMENT_BYTES: number = 8 * 1024 * 1024;
/** How deep indexes may nest inside indexes. */
const MAX_INDEX_DEPTH = 4;

interface CachedConfig {
  config: OciImageConfig;
  chainId: string;
  bytes: number;
}

const cache = new LruCache<string, CachedConfig>({
  maxEntries: 256,
  maxBytes: 32 * 1024 * 1024,
  sizeOf: (entry) => entry.bytes,
});
const counters = { hits: 0, misses: 0 };

/**
 * Whole resolutions of content-store images by target descriptor and platform, for
 * `resolveImage`: a digest names its content (the index and every manifest below it), so an
 * unchanged image resolves again without reading anything. Emptied by clearImageCache.
 */
const resolutions: LruCache<string, ResolvedManifest> = new LruCache({
  maxEntries: 256,
  maxBytes: 256,
  sizeOf: () => 1,
});

/** A remembered resolution (counted as a cache hit), for `resolveImage`. */
export function recallResolution(key: string): ResolvedManifest | undefined {
  const hit = resolutions.get(key)?.value;
  if (hit) counters.hits++;
  return hit;
}

/** Remembers a resolution, for `resolveImage`. */
export function rememberResolution(key: string, resolved: ResolvedManifest): void {
  resolutions.set(key, resolved);
}

/** What {@linkcode imageCacheStats} reports. */
export interface ImageCacheStats {
  /** Resolutions that found the config in the cache. */
  hits: number;
  /** Resolutions that read the config blob. */
  misses: number;
  /** Configs in the cache now. */
  entries: number;
  /** Bytes of config JSON the cached entries came from. */
  bytes: number;
}

/**
 * Counters of the config cache behind {@linkcode resolveManifest} (and so `resolveImage`) (shared by the
 * whole process).
 *
 * @returns Hits and misses since the last {@linkcode clearImageCache}, and the
 *   cache's current size.
 *
 * @example
 * ```ts
 * import { imageCacheStats } from "@wfe/containerd/api";
 *
 * const { hits, misses } = imageCacheStats();
 * console.log(`config cache: ${hits} hits, ${misses} misses`);
 * ```
 */
export function imageCacheStats(): ImageCacheStats {
  return { ...counters, entries: cache.size, bytes: cache.bytes };
}

/**
 * Empties the config cache behind {@linkcode resolveManifest} (and so `resolveImage`) and resets its
 * counters. Never needed for correctness (entries are keyed by digest).
 *
 * @example
 * ```ts
 * import { clearImageCache } from "@wfe/containerd/api";
 *
 * clearImageCache();
 * ```
 */
export function clearImageCache(): void {
  cache.clear();
  resolutions.clear();
  counters.hits = 0;
  counters.misses = 0;
}

/** Options of {@linkcode resolveManifest}. */
export interface ResolveManifestOptions {
  /**
   * The platform to resolve for, `os/arch[/variant]` or a parsed platform.
   * @default {hostPlatform()} (e.g. `linux/amd64`)
   */
  platform?: string | OciPlatform;
  /** Names the image in messages. @default {the target's digest} */
  name?: string;
  /** Cancels the reads. */
  signal?: AbortSignal;
}

/** What {@linkcode resolveManifest} found for a target. */
export interface ResolvedManifest {
  /** The target: an index, a Docker manifest list or a manifest. */
  target: OciDescriptor;
  /** Digest of the manifest chosen for the platform. */
  manifestDigest: string;
  /** The manifest. */
  manifest: OciManifest;
  /** Digest of the image config. */
  configDigest: string;
  /** The image config: runtime defaults, platform, diff IDs. */
  config: OciImageConfig;
  /** The layer blobs (tars), bottom first: one per diff ID. */
  layers: OciDescriptor[];
  /**
   * Layers that are not tars (e.g. Wasm modules): stored with the image, never
   * unpacked, and without a diff ID (containerd's client skips them too).
   */
  extraLayers: OciDescriptor[];
  /** The layers' diff IDs (sha256 of each uncompressed tar), bottom first. */
  diffIds: string[];
  /** The chain ID of all layers: the committed snapshot to use as a rootfs parent. */
  chainId: string;
  /** The image's platform, from its config. */
  platform: OciPlatform;
}

/** A descriptor reduced to what locates a blob. */
function descriptorOf(d: Pick<OciDescriptor, "mediaType" | "digest" | "size">): OciDescriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}

async function readDocument(
  provider: BlobProvider,
  what: string,
  desc: OciDescriptor,
  signal: AbortSignal | undefined,
): Promise<Uint8Array> {
  const bytes = await provider.readBlob(desc, { maxBytes: MAX_DOCUMENT_BYTES, signal });
  if (bytes.length !== desc.size) {
    throw new TypeError(
      `${what} ${desc.digest}: the descriptor says ${desc.size} bytes, the blob has ${bytes.length}`,
    );
  }
  return bytes;
}

/** A manifest descriptor to try, and whether an index already vouched for its platform. */
interface Candidate {
  desc: OciDescriptor;
  platformChecked: boolean;
}

/** Walks the target down to the manifests to try for `want`, best first. */
async function manifestCandidates(
  provider: BlobProvider,
  desc: OciDescriptor,
  want: OciPlatform,
  signal: AbortSignal | undefined,
  depth: number,
  offers: string[],
): Promise<Candidate[]> {
  const kind = mediaTypeKind(desc.mediaType);
  if (kind === "manifest") return [{ desc, platformChecked: desc.platform !== undefined }];
  if (kind !== "index") {
    throw new TypeError(
      `${desc.digest} has media type '${desc.mediaType}', expected an index or a manifest`,
    );
  }
  if (depth >= MAX_INDEX_DEPTH) {
    throw new TypeError(`index ${desc.digest} nests indexes more than ${MAX_INDEX_DEPTH} deep`);
  }
  const bytes = await readDocument(provider, "index", desc, signal);
  const index = parseIndex(bytes, desc.digest, { mediaType: desc.mediaType });
  offers.push(`index ${desc.digest}: ${describeOffers(index)}`);
  const out: Candidate[] = [];
  for (const entry of matchingManifests(index, want)) {
    const sub = mediaTypeKind(entry.mediaType);
    if (sub === "manifest") {
      out.push({ desc: entry, platformChecked: entry.platform !== undefined });
    } else if (sub === "index") {
      out.push(...await manifestCandidates(provider, entry, want, signal, depth + 1, offers));
    } // other entries (attestations, artifacts with odd types) cannot be run
  }
  return out;
}

async function loadConfig(
  provider: BlobProvider,
  manifest: OciManifest,
  manifestDigest: string,
  signal: AbortSignal | undefined,
): Promise<CachedConfig> {
  const desc = manifest.config;
  if (mediaTypeKind(desc.mediaType) !== "config") {
    throw new TypeError(
      `manifest ${manifestDigest}: config.mediaType '${desc.mediaType}' is not an image config`,
    );
  }
  const cached = cache.get(desc.digest);
  if (cached) {
    counters.hits++;
    return cached.value;
  }
  counters.misses++;
  const bytes = await readDocument(provider, "config", desc, signal);
  const config = parseImageConfig(bytes, desc.digest, { mediaType: desc.mediaType });
  const diffIds = config.rootfs.diff_ids;
  const entry: CachedConfig = {
    config,
    // No tar layers (a Wasm image): the rootfs is an empty snapshot.
    chainId: diffIds.length === 0 ? "" : await computeChainId(diffIds),
    bytes: bytes.length,
  };
  cache.set(desc.digest, entry);
  return entry;
}

function configPlatform(config: OciImageConfig): OciPlatform {
  const { os, architecture, variant } = config;
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** The manifest's tar layers (checked against the diff IDs) and its other layers. */
function splitLayers(
  manifest: OciManifest,
  manifestDigest: string,
  config: CachedConfig,
): { layers: OciDescriptor[]; extraLayers: OciDescriptor[] } {
  const layers: OciDescriptor[] = [];
  const extraLayers: OciDescriptor[] = [];
  for (const layer of manifest.layers) {
    (mediaTypeKind(layer.mediaType) === "layer" ? layers : extraLayers).push(descriptorOf(layer));
  }
  const diffIds = config.config.rootfs.diff_ids.length;
  if (layers.length !== diffIds) {
    throw new TypeError(
      `manifest ${manifestDigest} has ${layers.length} tar layer(s) but its config ` +
        `${manifest.config.digest} has ${diffIds} diff ID(s)`,
    );
  }
  if (layers.length === 0 && extraLayers.length === 0) {
    throw new TypeError(`manifest ${manifestDigest} has no layers`);
  }
  return { layers, extraLayers };
}

/**
 * Resolves a target descriptor for one platform: an index or manifest list
 * is narrowed to the best manifest for the platform (nested indexes are
 * followed), the manifest and config are read (at most
 * {@linkcode MAX_DOCUMENT_BYTES} each, verified) and validated, and the
 * chain ID of the layers is computed. Configs and their chain IDs are
 * memoized by config digest. A target that is a manifest (no index) must be
 * runnable on the platform too: its config's platform is checked.
 *
 * @param provider Where the blobs come from (e.g. {@linkcode contentStoreProvider}).
 * @param target The image's target descriptor.
 * @param options Platform (default: the host's), a name for messages, a signal.
 * @returns The target, manifest, config, layers, diff IDs, chain ID and platform.
 * @throws {ContainerdError} NOT_FOUND (5) when no manifest fits the platform
 *   (the message lists the platforms offered).
 * @throws {TypeError} When the platform cannot be parsed or the content is
 *   malformed (the message names the blob's digest and the problem).
 * @throws {SyntaxError} When a document is not JSON.
 * @throws {RangeError} When a document is larger than {@linkcode MAX_DOCUMENT_BYTES}.
 *
 * @example
 * ```ts
 * import { connect } from "@wfe/containerd";
 * import { contentStoreProvider, resolveManifest } from "@wfe/containerd/api";
 *
 * await using client = await connect();
 * const { image } = await client.images.get({ name: "docker.io/library/alpine:latest" });
 * const resolved = await resolveManifest(contentStoreProvider(client), image!.target!, {
 *   platform: "linux/arm64",
 * });
 * console.log(resolved.manifestDigest, resolved.chainId);
 * ```
 */
export async function resolveManifest(
  provider: BlobProvider,
  target: Pick<OciDescriptor, "mediaType" | "digest" | "size">,
  options: ResolveManifestOptions = {},
): Promise<ResolvedManifest> {
  const { signal } = options;
  signal?.throwIfAborted();
  const want = typeof options.platform === "object"
    ? options.platform
    : options.platform !== undefined
    ? parsePlatform(options.platform)
    : hostPlatform();
  const name = options.name ?? target.digest;
  const targetDesc = descriptorOf(target);
  const offers: string[] = [];
  const candidates = await manifestCandidates(provider, targetDesc, want, signal, 0, offers);
  const acceptable = compatiblePlatforms(want);
  const rejected: string[] = [];
  for (const { desc, platformChecked } of candidates) {
    const bytes = await readDocument(provider, "manifest", desc, signal);
    const manifest = parseManifest(bytes, desc.digest, { mediaType: desc.mediaType });
    const config = await loadConfig(provider, manifest, desc.digest, signal);
    const platform = configPlatform(config.config);
    if (!platformChecked && !acceptable.some((p) => matchPlatform(p, platform))) {
      rejected.push(`manifest ${desc.digest} is ${formatPlatform(platform)}`);
      continue;
    }
    const { layers, extraLayers } = splitLayers(manifest, desc.digest, config);
    return {
      target: targetDesc,
      manifestDigest: desc.digest,
      manifest,
      configDigest: manifest.config.digest,
      config: config.config,
      layers,
      extraLayers,
      diffIds: [...config.config.rootfs.diff_ids],
      chainId: config.chainId,
      platform,
    };
  }
  throw new ContainerdError({
    code: GrpcCode.NOT_FOUND,
    method: "resolveImage",
    details: `image '${name}' has no manifest for ${formatPlatform(want)}: ` +
      [...offers, ...rejected].join("; "),
  });
}
