/**
 * OCI and Docker image documents: media types, typed shapes, parsers that
 * validate what they read (naming the blob's digest and the field that is
 * wrong), and platform matching with containerd's normalisation.
 *
 * @module
 */

import { isDigest } from "./digest.ts";

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

const INDEX_TYPES: readonly string[] = [MediaType.ociIndex, MediaType.dockerManifestList];
const MANIFEST_TYPES: readonly string[] = [MediaType.ociManifest, MediaType.dockerManifest];
const CONFIG_TYPES: readonly string[] = [MediaType.ociConfig, MediaType.dockerConfig];
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
const SCHEMA1_TYPES: readonly string[] = [
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
 * import { mediaTypeKind } from "@wfe/containerd";
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
 * @returns `"none"`, `"gzip"` or `"zstd"`; `undefined` when it is not a layer
 *   media type this module knows.
 *
 * @example
 * ```ts
 * import { layerCompression } from "@wfe/containerd";
 *
 * layerCompression("application/vnd.oci.image.layer.v1.tar+zstd"); // "zstd"
 * ```
 */
export function layerCompression(mediaType: string): LayerCompression | undefined {
  return LAYER_COMPRESSION.get(mediaType);
}

/** A platform as OCI documents spell it (an index entry's `platform`, a config's fields). */
export interface OciPlatform {
  /** Operating system, e.g. `linux`. */
  os: string;
  /** CPU architecture in Go's spelling, e.g. `amd64`, `arm64`, `arm`. */
  architecture: string;
  /** CPU variant, e.g. `v7` for arm, `v8` for arm64. */
  variant?: string;
  /** Operating system version (Windows images). */
  "os.version"?: string;
  /** Required operating system features (Windows images). */
  "os.features"?: string[];
}

/** A reference to a blob: what it is, its digest and size. */
export interface OciDescriptor {
  /** The blob's media type. */
  mediaType: string;
  /** The blob's digest, `sha256:<hex>`. */
  digest: string;
  /** The blob's size in bytes. */
  size: number;
  /** Where else the blob can be downloaded from. */
  urls?: string[];
  /** Free-form annotations. */
  annotations?: Record<string, string>;
  /** The platform of the manifest this descriptor points to (index entries). */
  platform?: OciPlatform;
  /** The artifact type of the manifest this descriptor points to. */
  artifactType?: string;
}

/** An OCI image index or a Docker manifest list. */
export interface OciIndex {
  /** Always 2. */
  schemaVersion: 2;
  /** The index's own media type, when the document states it. */
  mediaType?: string;
  /** The artifact type, for artifact indexes. */
  artifactType?: string;
  /** The manifests, usually one per platform. */
  manifests: OciDescriptor[];
  /** A manifest this index refers to (referrers API). */
  subject?: OciDescriptor;
  /** Free-form annotations. */
  annotations?: Record<string, string>;
}

/** An OCI image manifest or a Docker schema 2 manifest. */
export interface OciManifest {
  /** Always 2. */
  schemaVersion: 2;
  /** The manifest's own media type, when the document states it. */
  mediaType?: string;
  /** The artifact type, for artifact manifests. */
  artifactType?: string;
  /** The image config blob. */
  config: OciDescriptor;
  /** The layer blobs, bottom layer first. */
  layers: OciDescriptor[];
  /** A manifest this manifest refers to (referrers API). */
  subject?: OciDescriptor;
  /** Free-form annotations. */
  annotations?: Record<string, string>;
}

/** The runtime defaults of an image (the `config` object of an image config). */
export interface OciContainerConfig {
  /** User to run as: `name`, `uid`, `uid:gid`, `name:group`. */
  User?: string;
  /** Ports the image listens on, e.g. `{ "80/tcp": {} }`. */
  ExposedPorts?: Record<string, unknown>;
  /** Environment, `KEY=value` entries. */
  Env?: string[];
  /** Program and leading arguments. */
  Entrypoint?: string[];
  /** Default arguments (after `Entrypoint`), or the command when there is no entrypoint. */
  Cmd?: string[];
  /** Paths that should be volumes, e.g. `{ "/data": {} }`. */
  Volumes?: Record<string, unknown>;
  /** Working directory. */
  WorkingDir?: string;
  /** Labels. */
  Labels?: Record<string, string>;
  /** Signal that stops the container, e.g. `SIGTERM`. */
  StopSignal?: string;
}

/** One entry of an image config's history. */
export interface OciHistory {
  /** When the step ran (RFC 3339). */
  created?: string;
  /** The command of the step. */
  created_by?: string;
  /** Who made the step. */
  author?: string;
  /** A comment. */
  comment?: string;
  /** True when the step produced no layer. */
  empty_layer?: boolean;
}

/** An OCI or Docker image config. */
export interface OciImageConfig {
  /** When the image was created (RFC 3339). */
  created?: string;
  /** Who made the image. */
  author?: string;
  /** CPU architecture, e.g. `amd64`. */
  architecture: string;
  /** Operating system, e.g. `linux`. */
  os: string;
  /** CPU variant, e.g. `v8`. */
  variant?: string;
  /** Operating system version (Windows images). */
  "os.version"?: string;
  /** Required operating system features (Windows images). */
  "os.features"?: string[];
  /** Runtime defaults: user, env, entrypoint, command, working directory, ... */
  config?: OciContainerConfig;
  /** The layers' diff IDs. */
  rootfs: {
    /** Always `layers`. */
    type: "layers";
    /** sha256 of each uncompressed layer tar, bottom layer first. */
    diff_ids: string[];
  };
  /** How the image was built. */
  history?: OciHistory[];
}

/** Options of {@linkcode parseIndex}, {@linkcode parseManifest} and {@linkcode parseImageConfig}. */
export interface ParseOptions {
  /**
   * The media type of the descriptor that pointed at the blob. When given it
   * must be a media type of the right kind, and a `mediaType` stated in the
   * document must equal it.
   */
  mediaType?: string;
}

// ---------------------------------------------------------------------------------------------
// validation helpers

type Json = Record<string, unknown>;

function show(value: unknown): string {
  if (typeof value === "string") {
    return `'${value.length > 80 ? value.slice(0, 77) + "..." : value}'`;
  }
  if (value === undefined) return "undefined";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? text.slice(0, 77) + "..." : text;
}

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/** Builds errors that name the document (`manifest sha256:...`) and the field. */
class Checker {
  constructor(readonly subject: string) {}

  fail(path: string, problem: string): never {
    throw new TypeError(`${this.subject}: ${path} ${problem}`);
  }

  object(value: unknown, path: string): Json {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      if (value === undefined) this.fail(path, "is missing");
      this.fail(path, `is ${kindOf(value)}, expected an object`);
    }
    return value as Json;
  }

  array(value: unknown, path: string): unknown[] {
    if (!Array.isArray(value)) {
      if (value === undefined) this.fail(path, "is missing");
      this.fail(path, `is ${kindOf(value)}, expected an array`);
    }
    return value;
  }

  string(value: unknown, path: string): string {
    if (typeof value !== "string") {
      if (value === undefined) this.fail(path, "is missing");
      this.fail(path, `is ${kindOf(value)}, expected a string`);
    }
    return value;
  }

  nonEmpty(value: unknown, path: string): string {
    const s = this.string(value, path);
    if (s === "") this.fail(path, "is empty");
    return s;
  }

  optionalString(obj: Json, key: string, path: string): void {
    if (obj[key] !== undefined) this.string(obj[key], path);
  }

  stringArray(value: unknown, path: string): string[] {
    const list = this.array(value, path);
    list.forEach((item, i) => this.string(item, `${path}[${i}]`));
    return list as string[];
  }

  stringRecord(value: unknown, path: string): Record<string, string> {
    const obj = this.object(value, path);
    for (const [k, v] of Object.entries(obj)) this.string(v, `${path}[${JSON.stringify(k)}]`);
    return obj as Record<string, string>;
  }

  digest(value: unknown, path: string): string {
    const s = this.string(value, path);
    if (!isDigest(s)) this.fail(path, `is not a digest: ${show(s)}`);
    return s;
  }

  size(value: unknown, path: string): number {
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
      if (value === undefined) this.fail(path, "is missing");
      this.fail(path, `is ${show(value)}, expected an integer >= 0`);
    }
    return value;
  }

  platform(value: unknown, path: string): OciPlatform {
    const p = this.object(value, path);
    this.nonEmpty(p.os, `${path}.os`);
    this.nonEmpty(p.architecture, `${path}.architecture`);
    this.optionalString(p, "variant", `${path}.variant`);
    this.optionalString(p, "os.version", `${path}["os.version"]`);
    if (p["os.features"] !== undefined) {
      this.stringArray(p["os.features"], `${path}["os.features"]`);
    }
    return p as unknown as OciPlatform;
  }

  descriptor(value: unknown, path: string): OciDescriptor {
    const d = this.object(value, path);
    this.nonEmpty(d.mediaType, `${path}.mediaType`);
    this.digest(d.digest, `${path}.digest`);
    this.size(d.size, `${path}.size`);
    if (d.urls !== undefined) this.stringArray(d.urls, `${path}.urls`);
    if (d.annotations !== undefined) this.stringRecord(d.annotations, `${path}.annotations`);
    if (d.platform !== undefined) this.platform(d.platform, `${path}.platform`);
    this.optionalString(d, "artifactType", `${path}.artifactType`);
    return d as unknown as OciDescriptor;
  }
}

const decoder = new TextDecoder("utf-8", { fatal: true });

function quoteList(list: readonly string[]): string {
  return list.map((s) => `'${s}'`).join(" or ");
}

/** Decodes JSON, checks the schema version and the media type. */
function openDocument(
  bytes: Uint8Array,
  subject: string,
  allowed: readonly string[],
  options: ParseOptions,
): { doc: Json; check: Checker } {
  const check = new Checker(subject);
  if (options.mediaType !== undefined && !allowed.includes(options.mediaType)) {
    check.fail("media type", `${show(options.mediaType)} is not ${quoteList(allowed)}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new SyntaxError(`${subject}: not a JSON document: ${why}`, { cause: err });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    check.fail("the document", `is ${kindOf(value)}, expected an object`);
  }
  const doc = value as Json;
  if (doc.mediaType !== undefined) {
    const stated = check.string(doc.mediaType, "mediaType");
    if (SCHEMA1_TYPES.includes(stated)) {
      check.fail("mediaType", `is ${show(stated)}: Docker schema 1 images are not supported`);
    }
    if (options.mediaType !== undefined && stated !== options.mediaType) {
      check.fail("mediaType", `is ${show(stated)}, but the descriptor says '${options.mediaType}'`);
    }
    if (!allowed.includes(stated)) {
      check.fail("mediaType", `is ${show(stated)}, expected ${quoteList(allowed)}`);
    }
  }
  return { doc, check };
}

function checkSchemaVersion(doc: Json, check: Checker): void {
  if (doc.schemaVersion === 1 && doc.fsLayers !== undefined) {
    check.fail("schemaVersion", "is 1: Docker schema 1 images are not supported");
  }
  if (doc.schemaVersion !== 2) {
    if (doc.schemaVersion === undefined) check.fail("schemaVersion", "is missing");
    check.fail("schemaVersion", `is ${show(doc.schemaVersion)}, expected 2`);
  }
}

function checkCommon(doc: Json, check: Checker): void {
  check.optionalString(doc, "artifactType", "artifactType");
  if (doc.subject !== undefined) check.descriptor(doc.subject, "subject");
  if (doc.annotations !== undefined) check.stringRecord(doc.annotations, "annotations");
}

// ---------------------------------------------------------------------------------------------
// parsers

/**
 * Parses and validates an OCI image index or a Docker manifest list.
 *
 * @param bytes The blob's bytes (UTF-8 JSON).
 * @param digest The blob's digest; error messages name it.
 * @param options The media type of the descriptor that pointed at the blob.
 * @returns The index; every entry has a media type, a digest and a size.
 * @throws {SyntaxError} When the bytes are not UTF-8 JSON.
 * @throws {TypeError} When the document is not an index: `schemaVersion` is not
 *   2, a stated `mediaType` is not an index type, it has `config` or `layers`,
 *   or an entry is malformed. The message names the digest and the field, e.g.
 *   `index sha256:...: manifests[1].digest is not a digest: 'x'`.
 *
 * @example
 * ```ts
 * import { parseIndex } from "@wfe/containerd";
 *
 * const bytes = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, manifests: [] }));
 * const index = parseIndex(bytes, "sha256:" + "0".repeat(64));
 * console.log(index.manifests.length); // 0
 * ```
 */
export function parseIndex(
  bytes: Uint8Array,
  digest: string,
  options: ParseOptions = {},
): OciIndex {
  const { doc, check } = openDocument(bytes, `index ${digest}`, INDEX_TYPES, options);
  checkSchemaVersion(doc, check);
  for (const key of ["config", "layers"]) {
    if (doc[key] !== undefined) check.fail(key, "is present: an index has no config or layers");
  }
  const manifests = check.array(doc.manifests, "manifests");
  manifests.forEach((m, i) => check.descriptor(m, `manifests[${i}]`));
  checkCommon(doc, check);
  return doc as unknown as OciIndex;
}

/**
 * Parses and validates an OCI image manifest or a Docker schema 2 manifest.
 * It does not require the config to be an image config (artifacts have other
 * config types); {@linkcode resolveImage} does.
 *
 * @param bytes The blob's bytes (UTF-8 JSON).
 * @param digest The blob's digest; error messages name it.
 * @param options The media type of the descriptor that pointed at the blob.
 * @returns The manifest; config and layers have a media type, digest and size.
 * @throws {SyntaxError} When the bytes are not UTF-8 JSON.
 * @throws {TypeError} When the document is not a manifest: `schemaVersion` is
 *   not 2, a stated `mediaType` is not a manifest type (or is Docker schema 1),
 *   it has `manifests`, or the config or a layer is malformed. The message
 *   names the digest and the field, e.g.
 *   `manifest sha256:...: layers[2].digest is not a digest: 'x'`.
 *
 * @example
 * ```ts
 * import { parseManifest } from "@wfe/containerd";
 *
 * const digest = "sha256:" + "a".repeat(64);
 * const bytes = new TextEncoder().encode(JSON.stringify({
 *   schemaVersion: 2,
 *   mediaType: "application/vnd.oci.image.manifest.v1+json",
 *   config: { mediaType: "application/vnd.oci.image.config.v1+json", digest, size: 2 },
 *   layers: [],
 * }));
 * console.log(parseManifest(bytes, "sha256:" + "b".repeat(64)).config.digest === digest); // true
 * ```
 */
export function parseManifest(
  bytes: Uint8Array,
  digest: string,
  options: ParseOptions = {},
): OciManifest {
  const { doc, check } = openDocument(bytes, `manifest ${digest}`, MANIFEST_TYPES, options);
  checkSchemaVersion(doc, check);
  if (doc.manifests !== undefined) {
    check.fail("manifests", "is present: a manifest has config and layers, not manifests");
  }
  check.descriptor(doc.config, "config");
  const layers = check.array(doc.layers, "layers");
  layers.forEach((l, i) => check.descriptor(l, `layers[${i}]`));
  checkCommon(doc, check);
  return doc as unknown as OciManifest;
}

const STRING_FIELDS = ["User", "WorkingDir", "StopSignal"] as const;
const LIST_FIELDS = ["Env", "Entrypoint", "Cmd"] as const;
const SET_FIELDS = ["ExposedPorts", "Volumes"] as const;

function checkContainerConfig(value: unknown, check: Checker): OciContainerConfig {
  const raw = check.object(value, "config");
  const out: Json = { ...raw };
  // Docker writes null for unset fields ("Entrypoint": null): treat null as absent.
  for (const key of [...STRING_FIELDS, ...LIST_FIELDS, ...SET_FIELDS, "Labels"]) {
    if (out[key] === null) delete out[key];
  }
  for (const key of STRING_FIELDS) check.optionalString(out, key, `config.${key}`);
  for (const key of LIST_FIELDS) {
    if (out[key] !== undefined) check.stringArray(out[key], `config.${key}`);
  }
  for (const key of SET_FIELDS) {
    if (out[key] !== undefined) check.object(out[key], `config.${key}`);
  }
  if (out.Labels !== undefined) check.stringRecord(out.Labels, "config.Labels");
  return out as OciContainerConfig;
}

/**
 * Parses and validates an OCI or Docker image config. Docker's `null` for
 * unset fields of `config` (`"Entrypoint": null`) comes back as an absent
 * field.
 *
 * @param bytes The blob's bytes (UTF-8 JSON).
 * @param digest The blob's digest; error messages name it.
 * @param options The media type of the descriptor that pointed at the blob.
 * @returns The config with `architecture`, `os` and `rootfs.diff_ids` checked.
 * @throws {SyntaxError} When the bytes are not UTF-8 JSON.
 * @throws {TypeError} When `architecture` or `os` is missing, `rootfs.type` is
 *   not `layers`, a diff ID is not a digest, or a `config` field has the wrong
 *   type. The message names the digest and the field, e.g.
 *   `config sha256:...: rootfs.diff_ids[0] is not a digest: 'x'`.
 *
 * @example
 * ```ts
 * import { parseImageConfig } from "@wfe/containerd";
 *
 * const bytes = new TextEncoder().encode(JSON.stringify({
 *   architecture: "amd64",
 *   os: "linux",
 *   config: { Cmd: ["/bin/sh"], Entrypoint: null },
 *   rootfs: { type: "layers", diff_ids: ["sha256:" + "c".repeat(64)] },
 * }));
 * const config = parseImageConfig(bytes, "sha256:" + "d".repeat(64));
 * console.log(config.config?.Cmd, config.config?.Entrypoint); // ["/bin/sh"] undefined
 * ```
 */
export function parseImageConfig(
  bytes: Uint8Array,
  digest: string,
  options: ParseOptions = {},
): OciImageConfig {
  const { doc, check } = openDocument(bytes, `config ${digest}`, CONFIG_TYPES, options);
  check.nonEmpty(doc.architecture, "architecture");
  check.nonEmpty(doc.os, "os");
  check.optionalString(doc, "variant", "variant");
  check.optionalString(doc, "os.version", `["os.version"]`);
  if (doc["os.features"] !== undefined) check.stringArray(doc["os.features"], `["os.features"]`);
  check.optionalString(doc, "created", "created");
  check.optionalString(doc, "author", "author");
  const rootfs = check.object(doc.rootfs, "rootfs");
  if (rootfs.type !== "layers") {
    check.fail("rootfs.type", `is ${show(rootfs.type)}, expected 'layers'`);
  }
  const diffIds = check.array(rootfs.diff_ids, "rootfs.diff_ids");
  diffIds.forEach((d, i) => check.digest(d, `rootfs.diff_ids[${i}]`));
  const out: Json = { ...doc };
  if (doc.config === null) delete out.config;
  else if (doc.config !== undefined) out.config = checkContainerConfig(doc.config, check);
  if (doc.history !== undefined && doc.history !== null) {
    check.array(doc.history, "history").forEach((h, i) => {
      const entry = check.object(h, `history[${i}]`);
      for (const key of ["created", "created_by", "author", "comment"]) {
        check.optionalString(entry, key, `history[${i}].${key}`);
      }
      if (entry.empty_layer !== undefined && typeof entry.empty_layer !== "boolean") {
        check.fail(
          `history[${i}].empty_layer`,
          `is ${show(entry.empty_layer)}, expected a boolean`,
        );
      }
    });
  } else delete out.history;
  return out as unknown as OciImageConfig;
}

// ---------------------------------------------------------------------------------------------
// platforms

const ARCH_FROM_DENO: Readonly<Record<string, [string, string?]>> = {
  x86_64: ["amd64"],
  aarch64: ["arm64", "v8"],
};

/**
 * The platform of this machine, in OCI spelling: `x86_64` is `amd64`,
 * `aarch64` is `arm64` with variant `v8`. The OS is `linux` on macOS too:
 * containerd runs Linux containers there inside a Linux VM of the same
 * architecture.
 *
 * @returns The host's `{ os, architecture, variant? }`.
 *
 * @example
 * ```ts
 * import { formatPlatform, hostPlatform } from "@wfe/containerd";
 *
 * console.log(formatPlatform(hostPlatform())); // e.g. "linux/amd64"
 * ```
 */
export function hostPlatform(): OciPlatform {
  const os = Deno.build.os === "darwin" ? "linux" : Deno.build.os;
  const [architecture, variant] = ARCH_FROM_DENO[Deno.build.arch] ?? [Deno.build.arch];
  return variant ? { os, architecture, variant } : { os, architecture };
}

const PLATFORM_PART = /^[a-z0-9][a-z0-9._-]*$/;

/**
 * Parses a platform specifier such as `linux/amd64` or `linux/arm64/v8`.
 * Components are lower-cased and architecture aliases normalised (`x86_64` is
 * `amd64`, `aarch64` is `arm64`); the variant is kept as written.
 *
 * @param specifier `os/arch` or `os/arch/variant`.
 * @returns The platform.
 * @throws {TypeError} When the specifier does not have two or three non-empty
 *   parts of letters, digits, `.`, `_` and `-`, e.g.
 *   `Cannot parse platform 'amd64': expected os/arch[/variant]`.
 *
 * @example
 * ```ts
 * import { parsePlatform } from "@wfe/containerd";
 *
 * parsePlatform("linux/arm64/v8"); // { os: "linux", architecture: "arm64", variant: "v8" }
 * ```
 */
export function parsePlatform(specifier: string): OciPlatform {
  const parts = specifier.toLowerCase().split("/");
  if (parts.length < 2 || parts.length > 3) {
    throw new TypeError(`Cannot parse platform '${specifier}': expected os/arch[/variant]`);
  }
  const names = ["os", "architecture", "variant"];
  parts.forEach((part, i) => {
    if (!PLATFORM_PART.test(part)) {
      throw new TypeError(
        `Cannot parse platform '${specifier}': the ${names[i]} '${part}' is not valid: expected ` +
          "os/arch[/variant] of letters, digits, '.', '_' and '-'",
      );
    }
  });
  const os = parts[0] === "macos" ? "darwin" : parts[0];
  const architecture = archAlias(parts[1]);
  return parts[2] ? { os, architecture, variant: parts[2] } : { os, architecture };
}

/**
 * Formats a platform as `os/arch[/variant]`.
 *
 * @param platform The platform.
 * @returns E.g. `linux/arm/v7`.
 *
 * @example
 * ```ts
 * import { formatPlatform } from "@wfe/containerd";
 *
 * formatPlatform({ os: "linux", architecture: "arm", variant: "v7" }); // "linux/arm/v7"
 * ```
 */
export function formatPlatform(platform: OciPlatform): string {
  const base = `${platform.os}/${platform.architecture}`;
  return platform.variant ? `${base}/${platform.variant}` : base;
}

function archAlias(arch: string): string {
  switch (arch) {
    case "x86_64":
    case "x86-64":
      return "amd64";
    case "aarch64":
      return "arm64";
    case "i386":
      return "386";
    default:
      return arch;
  }
}

/**
 * Normalises a platform as containerd does before comparing: lower case,
 * `macos` is `darwin`, architecture aliases resolved, and default variants
 * made explicit-equal: amd64 `v1` and arm64 `v8` (also `8`, `v8.0`) become no
 * variant, arm without a variant (or `7`) becomes `v7`, `armhf` is `arm/v7`,
 * `armel` is `arm/v6`.
 *
 * @param platform The platform.
 * @returns A new platform in canonical form (no `variant` key when there is none).
 *
 * @example
 * ```ts
 * import { normalizePlatform } from "@wfe/containerd";
 *
 * normalizePlatform({ os: "linux", architecture: "aarch64", variant: "v8" });
 * // { os: "linux", architecture: "arm64" }
 * ```
 */
export function normalizePlatform(platform: OciPlatform): OciPlatform {
  let os = platform.os.toLowerCase();
  if (os === "macos") os = "darwin";
  let architecture = archAlias(platform.architecture.toLowerCase());
  let variant = (platform.variant ?? "").toLowerCase();
  switch (architecture) {
    case "386":
      variant = "";
      break;
    case "amd64":
      if (variant === "v1") variant = "";
      break;
    case "arm64":
      if (variant === "8" || variant === "v8" || variant === "v8.0") variant = "";
      else if (variant === "9" || variant === "9.0" || variant === "v9.0") variant = "v9";
      break;
    case "armhf":
      architecture = "arm";
      variant = "v7";
      break;
    case "armel":
      architecture = "arm";
      variant = "v6";
      break;
    case "arm":
      if (variant === "" || variant === "7") variant = "v7";
      else if (variant === "5" || variant === "6" || variant === "8") variant = `v${variant}`;
      break;
  }
  return variant ? { os, architecture, variant } : { os, architecture };
}

/**
 * Tells whether an image of platform `have` is the platform `want`, after
 * {@linkcode normalizePlatform}: `linux/arm64` is `linux/arm64/v8`,
 * `linux/amd64` is `linux/amd64/v1`, `linux/arm` is `linux/arm/v7`. It does not
 * accept merely compatible platforms (arm/v6 for an arm/v7 host); see
 * {@linkcode matchingManifests} for that.
 *
 * @param want The platform wanted.
 * @param have The platform of an image or index entry.
 * @returns True when both normalise to the same os, architecture and variant.
 *
 * @example
 * ```ts
 * import { matchPlatform } from "@wfe/containerd";
 *
 * matchPlatform({ os: "linux", architecture: "arm64" }, {
 *   os: "linux",
 *   architecture: "arm64",
 *   variant: "v8",
 * }); // true
 * ```
 */
export function matchPlatform(want: OciPlatform, have: OciPlatform): boolean {
  const a = normalizePlatform(want);
  const b = normalizePlatform(have);
  return a.os === b.os && a.architecture === b.architecture &&
    (a.variant ?? "") === (b.variant ?? "");
}

/**
 * The platforms a host of `platform` can run, best first, as containerd's
 * default matcher orders them: the platform itself (normalised), then older
 * variants (amd64 v3, v2, v1; arm v7, v6, v5), then 32-bit relatives (386 for
 * amd64; arm v8 to v5 for arm64).
 *
 * @param platform The platform of the host.
 * @returns Normalised platforms, best first; the first is the platform itself.
 *
 * @example
 * ```ts
 * import { compatiblePlatforms, formatPlatform } from "@wfe/containerd";
 *
 * compatiblePlatforms({ os: "linux", architecture: "arm", variant: "v7" }).map(formatPlatform);
 * // ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]
 * ```
 */
export function compatiblePlatforms(platform: OciPlatform): OciPlatform[] {
  const p = normalizePlatform(platform);
  const out: OciPlatform[] = [p];
  const { os } = p;
  const variant = p.variant ?? "";
  const version = Number(variant.replace(/^v/, ""));
  switch (p.architecture) {
    case "amd64":
      if (variant !== "" && Number.isInteger(version)) {
        for (let v = version - 1; v >= 2; v--) {
          out.push({ os, architecture: "amd64", variant: `v${v}` });
        }
        if (version > 1) out.push({ os, architecture: "amd64" });
      }
      out.push({ os, architecture: "386" });
      break;
    case "arm":
      if (Number.isInteger(version)) {
        for (let v = version - 1; v >= 5; v--) {
          out.push({ os, architecture: "arm", variant: `v${v}` });
        }
      }
      break;
    case "arm64":
      if (variant.startsWith("v8") || variant.startsWith("v9")) {
        out.push({ os, architecture: "arm64" });
      }
      if (variant === "" || variant.startsWith("v8") || variant.startsWith("v9")) {
        for (let v = 8; v >= 5; v--) out.push({ os, architecture: "arm", variant: `v${v}` });
      }
      break;
  }
  return out;
}

/**
 * The entries of an index a host of `platform` can run, best first: exact
 * platform matches (after {@linkcode normalizePlatform}) before compatible
 * ones (older variants, 32-bit relatives), an entry whose variant is spelled
 * exactly as wanted before an equivalent spelling (`arm64/v8` before `arm64`
 * when `arm64/v8` is wanted), then index order. Entries without a platform
 * come last; the caller has to check their config.
 *
 * @param index The index.
 * @param platform The platform to run on.
 * @returns The usable entries, best first; empty when none fits.
 *
 * @example
 * ```ts
 * import { matchingManifests, type OciIndex } from "@wfe/containerd";
 *
 * const index: OciIndex = { schemaVersion: 2, manifests: [] };
 * matchingManifests(index, { os: "linux", architecture: "amd64" }); // []
 * ```
 */
export function matchingManifests(index: OciIndex, platform: OciPlatform): OciDescriptor[] {
  const vector = compatiblePlatforms(platform);
  const wantVariant = platform.variant ?? "";
  const ranked: { desc: OciDescriptor; rank: number; exact: number; position: number }[] = [];
  index.manifests.forEach((desc, position) => {
    if (!desc.platform) {
      ranked.push({ desc, rank: vector.length, exact: 1, position });
      return;
    }
    const rank = vector.findIndex((p) => matchPlatform(p, desc.platform!));
    if (rank < 0) return;
    const exact = (desc.platform.variant ?? "") === wantVariant ? 0 : 1;
    ranked.push({ desc, rank, exact, position });
  });
  ranked.sort((a, b) => a.rank - b.rank || a.exact - b.exact || a.position - b.position);
  return ranked.map((r) => r.desc);
}

/**
 * Picks the manifest of an index to run on `platform`: the best of
 * {@linkcode matchingManifests} that has a platform.
 *
 * @param index The index.
 * @param platform The platform to run on.
 * @returns The descriptor of the manifest (or of a nested index) to use.
 * @throws {Error} When no entry fits; the message lists the platforms the
 *   index offers, e.g. `no manifest for linux/riscv64 in the index: it offers
 *   linux/amd64, linux/arm64/v8`.
 *
 * @example
 * ```ts
 * import { type OciIndex, selectManifest } from "@wfe/containerd";
 *
 * const manifest = (digest: string, architecture: string, variant?: string) => ({
 *   mediaType: "application/vnd.oci.image.manifest.v1+json",
 *   digest,
 *   size: 500,
 *   platform: { os: "linux", architecture, variant },
 * });
 * const index: OciIndex = {
 *   schemaVersion: 2,
 *   manifests: [
 *     manifest("sha256:" + "1".repeat(64), "amd64"),
 *     manifest("sha256:" + "2".repeat(64), "arm64", "v8"),
 *   ],
 * };
 * selectManifest(index, { os: "linux", architecture: "arm64" }).digest; // "sha256:222..."
 * ```
 */
export function selectManifest(index: OciIndex, platform: OciPlatform): OciDescriptor {
  const best = matchingManifests(index, platform).find((d) => d.platform !== undefined);
  if (best) return best;
  throw new Error(
    `no manifest for ${formatPlatform(platform)} in the index: ${describeOffers(index)}`,
  );
}

/**
 * Describes the platforms an index offers, for error messages.
 *
 * @param index The index.
 * @returns E.g. `it offers linux/amd64, linux/arm/v7`, or `it is empty`.
 *
 * @example
 * ```ts
 * import { describeOffers } from "@wfe/containerd";
 *
 * describeOffers({ schemaVersion: 2, manifests: [] }); // "it is empty"
 * ```
 */
export function describeOffers(index: OciIndex): string {
  if (index.manifests.length === 0) return "it is empty";
  const offers = index.manifests.map((d) =>
    d.platform ? formatPlatform(d.platform) : "(no platform)"
  );
  return `it offers ${[...new Set(offers)].join(", ")}`;
}
