/**
 * Parsers for image indexes, manifests and configs that validate what they
 * read, naming the blob's digest and the field that is wrong.
 *
 * @module
 */

import { isDigest } from "../content/digest.ts";
import { CONFIG_TYPES, INDEX_TYPES, MANIFEST_TYPES, SCHEMA1_TYPES } from "./media_types.ts";
import type {
  OciContainerConfig,
  OciDescriptor,
  OciImageConfig,
  OciIndex,
  OciManifest,
  OciPlatform,
  ParseOptions,
} from "./types.ts";

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
 * import { parseIndex } from "@wfe/containerd/api";
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
 * import { parseManifest } from "@wfe/containerd/api";
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
 * import { parseImageConfig } from "@wfe/containerd/api";
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
