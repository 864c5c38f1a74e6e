/**
 * Image archives as blob providers: OCI image layouts (`oci-layout`,
 * `index.json`, `blobs/`) and `docker save` archives (`manifest.json`,
 * `repositories`), plain or gzip'd, read from a file by offset so that a
 * layer is never held in memory. For `docker save` archives the Docker v2
 * manifests are synthesised byte for byte as containerd's importer writes
 * them, so an image gets the same digest as with `ctr images import`.
 *
 * @module
 */

import { concat } from "../_util/bytes.ts";
import { Sha256Stream } from "../content/digest.ts";
import { IMAGE_NAME_ANNOTATION, REF_NAME_ANNOTATION } from "../labels.ts";
import type { BlobProvider, OpenBlobOptions, ReadBlobOptions } from "../image/provider.ts";
import { MediaType } from "../oci/media_types.ts";
import { normalizeImageName } from "../oci/reference.ts";
import type { OciDescriptor } from "../oci/types.ts";
import { normalizePath } from "./_paths.ts";
import { readTar } from "./tar.ts";

/** One image an archive holds: the names it should get and its target. */
export interface ArchivedImage {
  /** The image names: from `io.containerd.image.name`, a full `ref.name`, or `RepoTags`. */
  names: string[];
  /** The target descriptor (a manifest or an index), with its annotations. */
  target: OciDescriptor;
}

/** An opened archive. */
export interface ImageArchive extends AsyncDisposable {
  /** `oci` for an OCI image layout, `docker` for a `docker save` archive. */
  format: "oci" | "docker";
  /** The images in it, in archive order. */
  images: ArchivedImage[];
  /** Reads its blobs (verified against their descriptors). */
  provider: BlobProvider;
  /** Closes the file and removes any temporary copy. */
  close(): Promise<void>;
}

/** Options of {@linkcode openImageArchive}. */
export interface OpenImageArchiveOptions {
  /**
   * Names images whose `org.opencontainers.image.ref.name` is only a tag:
   * `<baseName>:<tag>`. Without it such images get no name.
   */
  baseName?: string;
}

interface Entry {
  offset: number;
  size: number;
}

const MAX_JSON = 20 * 1024 * 1024;
const decoder = new TextDecoder();

function isGzip(head: Uint8Array): boolean {
  return head[0] === 0x1f && head[1] === 0x8b;
}

/** Copies a stream into a private temporary file, gunzipping it when it is gzip'd. */
async function spool(
  source: ReadableStream<Uint8Array>,
): Promise<{ path: string; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "wfe-import-" }); // mode 0700
  const path = `${dir}/archive.tar`;
  const reader = source.getReader();
  const first = await reader.read();
  const data = new ReadableStream<Uint8Array>({
    start(controller) {
      if (!first.done) controller.enqueue(first.value);
    },
    async pull(controller) {
      const next = await reader.read();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
  const stream = !first.done && isGzip(first.value)
    ? data.pipeThrough(new DecompressionStream("gzip") as TransformStream<Uint8Array, Uint8Array>)
    : data;
  const file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  await stream.pipeTo(file.writable);
  return { path, dir };
}

/**
 * Opens an image archive: an OCI image layout or a `docker save` archive,
 * as a tar file, a gzip'd tar file or a stream of either (streams and gzip'd
 * files are first copied, uncompressed, to a private temporary file).
 *
 * @param source A file path, or the archive's bytes as a stream.
 * @param options How to name images whose reference is only a tag.
 * @returns The archive's images and a provider of its blobs; close it after use.
 * @throws {TypeError} When the archive is neither format, or names a blob it
 *   does not contain.
 *
 * @example
 * ```ts
 * import { openImageArchive } from "@wfe/containerd/api";
 *
 * await using archive = await openImageArchive("app.tar");
 * for (const image of archive.images) console.log(image.names, image.target.digest);
 * ```
 */
export async function openImageArchive(
  source: string | ReadableStream<Uint8Array>,
  options: OpenImageArchiveOptions = {},
): Promise<ImageArchive> {
  let path: string;
  let tempDir: string | undefined;
  if (typeof source === "string") {
    const head = new Uint8Array(2);
    using probe = await Deno.open(source);
    await probe.read(head);
    if (isGzip(head)) {
      ({ path, dir: tempDir } = await spool((await Deno.open(source)).readable));
    } else {
      path = source;
    }
  } else {
    ({ path, dir: tempDir } = await spool(source));
  }
  const close = async () => {
    if (tempDir) await Deno.remove(tempDir, { recursive: true }).catch(() => {});
  };
  try {
    const entries = new Map<string, Entry>();
    const links = new Map<string, string>();
    const json = new Map<string, unknown>();
    const { readable } = await Deno.open(path);
    for await (const item of readTar(readable)) {
      const name = normalizePath(item.path).replace(/^\//, "");
      if (item.type === "symlink") {
        const dir = name.includes("/") ? name.slice(0, name.lastIndexOf("/")) : "";
        links.set(name, normalizePath(`${dir}/${item.linkname}`).replace(/^\//, ""));
      } else if (item.type === "file") {
        entries.set(name, { offset: item.offset, size: item.size });
        if (["index.json", "oci-layout", "manifest.json"].includes(name)) {
          if (item.size > MAX_JSON) throw new TypeError(`${name} is larger than ${MAX_JSON} bytes`);
          json.set(name, JSON.parse(decoder.decode(await item.bytes())));
        }
      }
    }
    for (const [name, target] of links) {
      const entry = entries.get(target);
      if (entry) entries.set(name, entry);
    }
    const files = new FileBlobs(path, entries);
    const archive = json.has("oci-layout")
      ? ociLayout(json.get("index.json"), files, options)
      : json.has("manifest.json")
      ? await dockerSave(json.get("manifest.json"), files)
      : undefined;
    if (!archive) {
      throw new TypeError(
        "not an image archive: it has neither oci-layout and index.json (OCI image layout) " +
          "nor manifest.json (docker save)",
      );
    }
    return { ...archive, close, [Symbol.asyncDispose]: close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The blobs of an archive file, by path, plus blobs made in memory. */
class FileBlobs {
  readonly synthetic = new Map<string, Uint8Array>();
  constructor(readonly path: string, readonly entries: Map<string, Entry>) {}

  /** The entry of a blob: `blobs/<alg>/<hex>` in OCI layouts, any path in docker archives. */
  locate(desc: OciDescriptor, byPath = new Map<string, string>()): Entry {
    const path = byPath.get(desc.digest) ?? `blobs/${desc.digest.replace(":", "/")}`;
    const entry = this.entries.get(path);
    if (!entry) throw new TypeError(`the archive has no blob ${desc.digest} (${path})`);
    if (entry.size !== desc.size) {
      throw new TypeError(
        `blob ${desc.digest} has ${entry.size} bytes, its descriptor says ${desc.size}`,
      );
    }
    return entry;
  }

  async *read(entry: Entry, from = 0): AsyncGenerator<Uint8Array> {
    // A handle per read: layers are read concurrently.
    using file = await Deno.open(this.path);
    let position = entry.offset + from;
    const end = entry.offset + entry.size;
    await file.seek(position, Deno.SeekMode.Start);
    while (position < end) {
      const buf = new Uint8Array(Math.min(1024 * 1024, end - position));
      let filled = 0;
      while (filled < buf.length) {
        const n = await file.read(buf.subarray(filled));
        if (n === null) throw new TypeError("the archive ends inside a blob");
        filled += n;
      }
      position += filled;
      yield buf;
    }
  }

  provider(description: string, byPath?: Map<string, string>): BlobProvider {
    const open = async function* (
      this: FileBlobs,
      desc: OciDescriptor,
      { offset = 0, signal, verify = true }: OpenBlobOptions,
    ): AsyncGenerator<Uint8Array> {
      const made = this.synthetic.get(desc.digest);
      const hash = offset === 0 && verify ? new Sha256Stream() : undefined;
      const chunks = made ? [made.subarray(offset)] : this.read(this.locate(desc, byPath), offset);
      for await (const chunk of chunks) {
        signal?.throwIfAborted();
        hash?.update(chunk);
        yield chunk;
      }
      const actual = hash?.digest();
      if (actual && actual !== desc.digest) {
        throw new TypeError(`blob ${desc.digest} in the archive hashes to ${actual}`);
      }
    }.bind(this);
    return {
      description,
      openBlob: open,
      async readBlob(desc: OciDescriptor, { maxBytes, signal }: ReadBlobOptions) {
        if (desc.size > maxBytes) {
          throw new RangeError(
            `Cannot read ${desc.digest}: ${desc.size} bytes, more than ${maxBytes}`,
          );
        }
        const parts: Uint8Array[] = [];
        for await (const part of open(desc, { signal })) parts.push(part);
        return concat(parts);
      },
    };
  }
}

type ArchiveParts = Pick<ImageArchive, "format" | "images" | "provider">;

function ociLayout(
  index: unknown,
  files: FileBlobs,
  options: OpenImageArchiveOptions,
): ArchiveParts {
  const manifests = (index as { manifests?: unknown })?.manifests;
  if (!Array.isArray(manifests)) {
    throw new TypeError("OCI image layout: index.json has no manifests array");
  }
  const images = manifests.map((m: OciDescriptor, i): ArchivedImage => {
    if (typeof m?.digest !== "string" || typeof m.mediaType !== "string" || !(m.size >= 0)) {
      throw new TypeError(`OCI image layout: index.json manifests[${i}] is not a descriptor`);
    }
    const annotations = m.annotations ?? {};
    const full = annotations[IMAGE_NAME_ANNOTATION];
    const ref = annotations[REF_NAME_ANNOTATION];
    let name: string | undefined;
    if (full) name = full;
    else if (ref && /[/:@]/.test(ref)) name = normalizeImageName(ref);
    else if (ref && options.baseName) name = `${options.baseName}:${ref}`;
    return { names: name ? [name] : [], target: m };
  });
  return { format: "oci", images, provider: files.provider("OCI image layout archive") };
}

interface DockerEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

async function hashEntry(
  files: FileBlobs,
  entry: Entry,
): Promise<{ digest: string; head: Uint8Array }> {
  const hash = new Sha256Stream();
  let head = new Uint8Array(0);
  for await (const chunk of files.read(entry)) {
    if (head.length === 0) head = chunk.slice(0, 4);
    hash.update(chunk);
  }
  return { digest: hash.digest(), head };
}

async function dockerSave(list: unknown, files: FileBlobs): Promise<ArchiveParts> {
  if (!Array.isArray(list)) throw new TypeError("docker archive: manifest.json is not an array");
  const byPath = new Map<string, string>();
  const images: ArchivedImage[] = [];
  const described = new Map<string, OciDescriptor>();
  const describe = async (path: string, what: string): Promise<OciDescriptor> => {
    const key = normalizePath(path).replace(/^\//, "");
    const known = described.get(key);
    if (known) return known;
    const entry = files.entries.get(key);
    if (!entry) throw new TypeError(`docker archive: ${what} ${path} is not in the archive`);
    const { digest, head } = await hashEntry(files, entry);
    byPath.set(digest, key);
    const desc: OciDescriptor = {
      mediaType: isGzip(head) ? MediaType.dockerLayerGzip : MediaType.dockerLayer,
      digest,
      size: entry.size,
    };
    described.set(key, desc);
    return desc;
  };
  for (const [i, item] of (list as DockerEntry[]).entries()) {
    if (typeof item?.Config !== "string" || !Array.isArray(item.Layers)) {
      throw new TypeError(`docker archive: manifest.json[${i}] has no Config or Layers`);
    }
    const config = { ...await describe(item.Config, "config"), mediaType: MediaType.dockerConfig };
    const layers = [];
    for (const layer of item.Layers) layers.push(await describe(layer, "layer"));
    // The same bytes containerd's importer marshals (Go's field order, no spaces).
    const d = (x: OciDescriptor) => ({ mediaType: x.mediaType, digest: x.digest, size: x.size });
    const bytes = new TextEncoder().encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.dockerManifest,
      config: d(config),
      layers: layers.map(d),
    }));
    const hash = new Sha256Stream();
    hash.update(bytes);
    const digest = hash.digest();
    files.synthetic.set(digest, bytes);
    const target: OciDescriptor = {
      mediaType: MediaType.dockerManifest,
      digest,
      size: bytes.length,
    };
    const tags = item.RepoTags ?? [];
    if (tags.length === 0) images.push({ names: [], target });
    for (const tag of tags) {
      // One image per tag, its target annotated as containerd's importer does.
      const name = normalizeImageName(tag);
      const refName = /:([^:/]+)$/.exec(name)?.[1] ?? name;
      images.push({
        names: [name],
        target: {
          ...target,
          annotations: { [IMAGE_NAME_ANNOTATION]: name, [REF_NAME_ANNOTATION]: refName },
        },
      });
    }
  }
  return { format: "docker", images, provider: files.provider("docker archive", byPath) };
}
