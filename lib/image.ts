/**
 * Resolving an image: the image record, its index (when it has one) narrowed
 * to one platform, the manifest, the config, the layers' diff IDs and the
 * chain ID of the snapshot that holds them.
 *
 * Parsed configs are memoized by config digest. A digest names its content,
 * so a cached entry is never stale; the cache is bounded by entries and bytes.
 *
 * @module
 */

import type { ContainerdClient } from "./connection.ts";
import { readAllContent } from "./content.ts";
import { chainId as computeChainId } from "./chain_id.ts";
import { ContainerdError, GrpcCode, isNotFound } from "./errors.ts";
import {
  compatiblePlatforms,
  describeOffers,
  formatPlatform,
  hostPlatform,
  matchingManifests,
  matchPlatform,
  mediaTypeKind,
  type OciDescriptor,
  type OciImageConfig,
  type OciManifest,
  type OciPlatform,
  parseImageConfig,
  parseIndex,
  parseManifest,
  parsePlatform,
} from "./manifest.ts";
import type { Descriptor, Image } from "../proto/gen/types.ts";

/** The registry a reference without a domain belongs to (Docker's rule): `docker.io`. */
export const DEFAULT_DOMAIN = "docker.io";
/** The repository prefix of Docker's official images: `alpine` is `docker.io/library/alpine`. */
const OFFICIAL_PREFIX = "library/";
/** An old spelling of {@linkcode DEFAULT_DOMAIN}. */
const LEGACY_DEFAULT_DOMAIN = "index.docker.io";
/** The tag of a reference without tag or digest. */
const DEFAULT_TAG = "latest";

/** The largest index, manifest or config {@linkcode resolveImage} reads: 8 MiB. */
export const MAX_DOCUMENT_BYTES: number = 8 * 1024 * 1024;
/** How deep indexes may nest inside indexes. */
const MAX_INDEX_DEPTH = 4;
/** At most this many configs stay memoized. */
const CACHE_MAX_ENTRIES = 256;
/** At most this many bytes of config JSON stay memoized. */
const CACHE_MAX_BYTES = 32 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// names

const DOMAIN_RE =
  /^(?:\[[0-9A-Fa-f:]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::[0-9]+)?$/;
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const REF_DIGEST_RE = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;

function badReference(ref: string, why: string): TypeError {
  return new TypeError(`Cannot parse image reference '${ref}': ${why}`);
}

/**
 * Normalises an image reference the way Docker and containerd's pull do: a
 * reference without a domain gets `docker.io` (and a one-component repository
 * `library/`), a reference without tag or digest gets `:latest`, and digests
 * are kept.
 *
 * | reference                  | normalised                              |
 * | -------------------------- | --------------------------------------- |
 * | `alpine`                   | `docker.io/library/alpine:latest`       |
 * | `alpine:3.18`              | `docker.io/library/alpine:3.18`         |
 * | `user/app`                 | `docker.io/user/app:latest`             |
 * | `host:5000/x`              | `host:5000/x:latest`                    |
 * | `alpine@sha256:<hex>`      | `docker.io/library/alpine@sha256:<hex>` |
 *
 * @param ref An image reference.
 * @returns The fully qualified reference.
 * @throws {TypeError} When `ref` is not a valid reference (empty, upper-case
 *   repository, bad tag or digest), e.g.
 *   `Cannot parse image reference 'Alpine': repository 'Alpine' must be lower case`.
 *
 * @example
 * ```ts
 * import { normalizeImageName } from "@wfe/containerd";
 *
 * normalizeImageName("alpine"); // "docker.io/library/alpine:latest"
 * ```
 */
export function normalizeImageName(ref: string): string {
  if (ref === "") throw badReference(ref, "it is empty");
  if (/\s/.test(ref)) throw badReference(ref, "it contains white space");
  let name = ref;
  let digest: string | undefined;
  const at = name.indexOf("@");
  if (at >= 0) {
    digest = name.slice(at + 1);
    name = name.slice(0, at);
    if (!REF_DIGEST_RE.test(digest)) {
      throw badReference(ref, `'${digest}' is not a digest: expected algorithm:hex`);
    }
  }
  let tag: string | undefined;
  const colon = name.lastIndexOf(":");
  if (colon > name.lastIndexOf("/")) {
    tag = name.slice(colon + 1);
    name = name.slice(0, colon);
    if (!TAG_RE.test(tag)) {
      throw badReference(
        ref,
        `tag '${tag}' is not valid: expected up to 128 letters, digits, '_', '.' and '-'`,
      );
    }
  }
  let domain = DEFAULT_DOMAIN;
  let path = name;
  const slash = name.indexOf("/");
  if (slash >= 0) {
    const first = name.slice(0, slash);
    const isDomain = /[.:]/.test(first) || first === "localhost" || first !== first.toLowerCase();
    if (isDomain) {
      domain = first === LEGACY_DEFAULT_DOMAIN ? DEFAULT_DOMAIN : first;
      path = name.slice(slash + 1);
    }
  }
  if (!DOMAIN_RE.test(domain)) throw badReference(ref, `'${domain}' is not a valid registry`);
  if (path === "") throw badReference(ref, "the repository is empty");
  for (const component of path.split("/")) {
    if (PATH_COMPONENT_RE.test(component)) continue;
    if (PATH_COMPONENT_RE.test(component.toLowerCase())) {
      throw badReference(ref, `repository '${path}' must be lower case`);
    }
    throw badReference(
      ref,
      `repository component '${component}' is not valid: expected lower-case letters and ` +
        "digits separated by '.', '_', '__' or '-'",
    );
  }
  if (domain === DEFAULT_DOMAIN && !path.includes("/")) path = OFFICIAL_PREFIX + path;
  const full = `${domain}/${path}`;
  if (full.length > 255) throw badReference(ref, "the name is longer than 255 characters");
  if (tag !== undefined) return digest ? `${full}:${tag}@${digest}` : `${full}:${tag}`;
  return digest ? `${full}@${digest}` : `${full}:${DEFAULT_TAG}`;
}

/**
 * The image names to look up for a reference, in order: the reference as
 * given (containerd stores whatever name an image was created with), then its
 * {@linkcode normalizeImageName} form when that differs and is valid.
 *
 * @param ref An image reference or stored image name.
 * @returns One or two names, the reference itself first.
 * @throws {TypeError} When `ref` is empty.
 *
 * @example
 * ```ts
 * import { imageNameCandidates } from "@wfe/containerd";
 *
 * imageNameCandidates("alpine"); // ["alpine", "docker.io/library/alpine:latest"]
 * ```
 */
export function imageNameCandidates(ref: string): string[] {
  if (ref === "") throw badReference(ref, "it is empty");
  let normalized: string | undefined;
  try {
    normalized = normalizeImageName(ref);
  } catch {
    // Not a Docker reference; it can still be a stored image name.
  }
  return normalized !== undefined && normalized !== ref ? [ref, normalized] : [ref];
}

// ---------------------------------------------------------------------------------------------
// the config cache

interface CachedConfig {
  config: OciImageConfig;
  chainId: string;
  bytes: number;
}

const cache = new Map<string, CachedConfig>();
let cacheBytes = 0;
const counters = { hits: 0, misses: 0 };

/** What {@linkcode imageCacheStats} reports. */
export interface ImageCacheStats {
  /** Resolves that found the config in the cache. */
  hits: number;
  /** Resolves that read the config blob from containerd. */
  misses: number;
  /** Configs in the cache now. */
  entries: number;
  /** Bytes of config JSON the cached entries came from. */
  bytes: number;
}

/**
 * Counters of the config cache behind {@linkcode resolveImage} (shared by the
 * whole process).
 *
 * @returns Hits and misses since the last {@linkcode clearImageCache}, and the
 *   cache's current size.
 *
 * @example
 * ```ts
 * import { imageCacheStats } from "@wfe/containerd";
 *
 * const { hits, misses } = imageCacheStats();
 * console.log(`config cache: ${hits} hits, ${misses} misses`);
 * ```
 */
export function imageCacheStats(): ImageCacheStats {
  return { ...counters, entries: cache.size, bytes: cacheBytes };
}

/**
 * Empties the config cache behind {@linkcode resolveImage} and resets its
 * counters. Never needed for correctness (entries are keyed by digest).
 *
 * @example
 * ```ts
 * import { clearImageCache } from "@wfe/containerd";
 *
 * clearImageCache();
 * ```
 */
export function clearImageCache(): void {
  cache.clear();
  cacheBytes = 0;
  counters.hits = 0;
  counters.misses = 0;
}

function cacheGet(digest: string): CachedConfig | undefined {
  const entry = cache.get(digest);
  if (entry) {
    cache.delete(digest); // most recently used goes last
    cache.set(digest, entry);
  }
  return entry;
}

function cachePut(digest: string, entry: CachedConfig): void {
  if (entry.bytes > CACHE_MAX_BYTES || cache.has(digest)) return;
  cache.set(digest, entry);
  cacheBytes += entry.bytes;
  for (const [key, old] of cache) {
    if (cache.size <= CACHE_MAX_ENTRIES && cacheBytes <= CACHE_MAX_BYTES) break;
    cache.delete(key);
    cacheBytes -= old.bytes;
  }
}

// ---------------------------------------------------------------------------------------------
// resolving

/** Options of {@linkcode resolveImage}. */
export interface ResolveImageOptions {
  /**
   * The platform to resolve for, `os/arch[/variant]`.
   * @default {hostPlatform()} (e.g. `linux/amd64`)
   */
  platform?: string;
  /** Cancels the lookups. */
  signal?: AbortSignal;
}

/** A descriptor reduced to what locates a blob. */
export interface BlobRef {
  /** The blob's media type. */
  mediaType: string;
  /** The blob's digest, `sha256:<hex>`. */
  digest: string;
  /** The blob's size in bytes. */
  size: number;
}

/** What {@linkcode resolveImage} found. */
export interface ResolvedImage {
  /** The stored image name that was found (the reference as given, or its normalised form). */
  name: string;
  /** The image record's target: an index, a Docker manifest list or a manifest. */
  target: BlobRef;
  /** Digest of the manifest chosen for the platform. */
  manifestDigest: string;
  /** The manifest. */
  manifest: OciManifest;
  /** Digest of the image config. */
  configDigest: string;
  /** The image config: runtime defaults, platform, diff IDs. */
  config: OciImageConfig;
  /** The layer blobs, bottom first. */
  layers: BlobRef[];
  /** The layers' diff IDs (sha256 of each uncompressed tar), bottom first. */
  diffIds: string[];
  /** The chain ID of all layers: the committed snapshot to use as a rootfs parent. */
  chainId: string;
  /** The image's platform, from its config. */
  platform: OciPlatform;
}

interface Found {
  name: string;
  image: Image;
}

async function findImage(
  client: ContainerdClient,
  ref: string,
  signal: AbortSignal | undefined,
): Promise<Found | ContainerdError> {
  const names = imageNameCandidates(ref);
  let last: ContainerdError | undefined;
  for (const name of names) {
    try {
      const { image } = await client.images.get({ name }, { signal });
      if (image) return { name: image.name || name, image };
    } catch (err) {
      if (!isNotFound(err)) throw err;
      last = err as ContainerdError;
    }
  }
  const tried = names.map((n) => `'${n}'`).join(", ");
  return new ContainerdError({
    code: last?.code ?? GrpcCode.NOT_FOUND,
    method: "Images.Get",
    details: `image not found in namespace '${client.namespace}' (tried ${tried})`,
    cause: last,
  });
}

/**
 * Finds the stored image for a reference, trying the names of
 * {@linkcode imageNameCandidates}.
 *
 * @param client A connected client (its namespace is searched).
 * @param ref An image reference or stored image name.
 * @param options Cancels the lookups.
 * @returns The stored name found, or `undefined` when no candidate exists.
 * @throws {TypeError} When `ref` is empty.
 * @throws {ContainerdError} When a lookup fails other than NOT_FOUND.
 *
 * @example
 * ```ts
 * import { connect, imageExists } from "@wfe/containerd";
 *
 * await using client = await connect();
 * const name = await imageExists(client, "alpine"); // "docker.io/library/alpine:latest"?
 * ```
 */
export async function imageExists(
  client: ContainerdClient,
  ref: string,
  options: { signal?: AbortSignal } = {},
): Promise<string | undefined> {
  options.signal?.throwIfAborted();
  const found = await findImage(client, ref, options.signal);
  return found instanceof ContainerdError ? undefined : found.name;
}

function blobRef(d: Descriptor | OciDescriptor): BlobRef {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}

async function readDocument(
  client: ContainerdClient,
  what: string,
  desc: BlobRef,
  signal: AbortSignal | undefined,
): Promise<Uint8Array> {
  const bytes = await readAllContent(client, desc.digest, {
    maxBytes: MAX_DOCUMENT_BYTES,
    verify: true,
    signal,
  });
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
  client: ContainerdClient,
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
  const bytes = await readDocument(client, "index", desc, signal);
  const index = parseIndex(bytes, desc.digest, { mediaType: desc.mediaType });
  offers.push(`index ${desc.digest}: ${describeOffers(index)}`);
  const out: Candidate[] = [];
  for (const entry of matchingManifests(index, want)) {
    const sub = mediaTypeKind(entry.mediaType);
    if (sub === "manifest") {
      out.push({ desc: entry, platformChecked: entry.platform !== undefined });
    } else if (sub === "index") {
      out.push(...await manifestCandidates(client, entry, want, signal, depth + 1, offers));
    } // other entries (attestations, artifacts with odd types) cannot be run
  }
  return out;
}

async function loadConfig(
  client: ContainerdClient,
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
  const cached = cacheGet(desc.digest);
  if (cached) {
    counters.hits++;
    return cached;
  }
  counters.misses++;
  const bytes = await readDocument(client, "config", desc, signal);
  const config = parseImageConfig(bytes, desc.digest, { mediaType: desc.mediaType });
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length === 0) {
    throw new TypeError(`config ${desc.digest}: rootfs.diff_ids is empty: the image has no layers`);
  }
  const entry: CachedConfig = {
    config,
    chainId: await computeChainId(diffIds),
    bytes: bytes.length,
  };
  cachePut(desc.digest, entry);
  return entry;
}

function configPlatform(config: OciImageConfig): OciPlatform {
  const { os, architecture, variant } = config;
  return variant ? { os, architecture, variant } : { os, architecture };
}

function checkLayers(manifest: OciManifest, manifestDigest: string, config: CachedConfig): void {
  manifest.layers.forEach((layer, i) => {
    if (mediaTypeKind(layer.mediaType) !== "layer") {
      throw new TypeError(
        `manifest ${manifestDigest}: layers[${i}].mediaType '${layer.mediaType}' is not a ` +
          "layer type containerd can apply",
      );
    }
  });
  const diffIds = config.config.rootfs.diff_ids.length;
  if (manifest.layers.length !== diffIds) {
    throw new TypeError(
      `manifest ${manifestDigest} has ${manifest.layers.length} layer(s) but its config ` +
        `${manifest.config.digest} has ${diffIds} diff ID(s)`,
    );
  }
}

/**
 * Resolves an image for one platform: Images.Get (the reference as given,
 * then its normalised Docker form), then the target: an index or manifest
 * list is narrowed to the best manifest for the platform (nested indexes are
 * followed), the manifest and config are read (at most
 * {@linkcode MAX_DOCUMENT_BYTES} each, digests verified) and validated, and
 * the chain ID of the layers is computed. Configs and their chain IDs are
 * memoized by config digest, so resolving the same image again reads only
 * the image record and the manifest.
 *
 * A target that is a manifest (no index) must be runnable on the platform
 * too: its config's platform is checked.
 *
 * @param client A connected client (its namespace is searched).
 * @param ref An image reference or stored image name, e.g. `alpine`,
 *   `docker.io/library/alpine:3.18` or `wfe.test/busybox:one-layer`.
 * @param options The platform (default: the host's) and a signal.
 * @returns The image's name, target, manifest, config, layers, diff IDs,
 *   chain ID and platform.
 * @throws {ContainerdError} NOT_FOUND (5) when no candidate name exists (the
 *   message lists the names tried) or no manifest fits the platform (the
 *   message lists the platforms offered); other codes from the server.
 * @throws {TypeError} When `ref` is empty, the platform cannot be parsed, or
 *   the content is malformed: the message names the image, the blob's digest
 *   and the problem (e.g. the manifest's layer count differs from the
 *   config's diff IDs).
 * @throws {SyntaxError} When a document is not JSON.
 * @throws {RangeError} When a document is larger than {@linkcode MAX_DOCUMENT_BYTES}.
 *
 * @example
 * ```ts
 * import { connect, resolveImage } from "@wfe/containerd";
 *
 * await using client = await connect();
 * const image = await resolveImage(client, "alpine:3.18", { platform: "linux/arm64" });
 * console.log(image.name, image.chainId, image.config.config?.Cmd);
 * ```
 */
export async function resolveImage(
  client: ContainerdClient,
  ref: string,
  options: ResolveImageOptions = {},
): Promise<ResolvedImage> {
  const { signal } = options;
  signal?.throwIfAborted();
  const want = options.platform !== undefined ? parsePlatform(options.platform) : hostPlatform();
  const found = await findImage(client, ref, signal);
  if (found instanceof ContainerdError) throw found;
  const { name, image } = found;
  try {
    return await resolveFound(client, name, image, want, signal);
  } catch (err) {
    if (err instanceof TypeError || err instanceof SyntaxError || err instanceof RangeError) {
      const Ctor = err.constructor as new (message: string, options?: ErrorOptions) => Error;
      throw new Ctor(`Cannot resolve image '${name}': ${err.message}`, { cause: err });
    }
    throw err;
  }
}

async function resolveFound(
  client: ContainerdClient,
  name: string,
  image: Image,
  want: OciPlatform,
  signal: AbortSignal | undefined,
): Promise<ResolvedImage> {
  const target = image.target;
  if (!target || !target.digest) throw new TypeError("the image record has no target");
  const offers: string[] = [];
  const targetDesc: OciDescriptor = blobRef(target);
  const candidates = await manifestCandidates(client, targetDesc, want, signal, 0, offers);
  const acceptable = compatiblePlatforms(want);
  const rejected: string[] = [];
  for (const { desc, platformChecked } of candidates) {
    const bytes = await readDocument(client, "manifest", desc, signal);
    const manifest = parseManifest(bytes, desc.digest, { mediaType: desc.mediaType });
    const config = await loadConfig(client, manifest, desc.digest, signal);
    const platform = configPlatform(config.config);
    if (!platformChecked && !acceptable.some((p) => matchPlatform(p, platform))) {
      rejected.push(`manifest ${desc.digest} is ${formatPlatform(platform)}`);
      continue;
    }
    checkLayers(manifest, desc.digest, config);
    return {
      name,
      target: blobRef(target),
      manifestDigest: desc.digest,
      manifest,
      configDigest: manifest.config.digest,
      config: config.config,
      layers: manifest.layers.map(blobRef),
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
