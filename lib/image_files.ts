/**
 * Reading single files (such as `/etc/passwd`) out of an image's layers in containerd's content
 * store, without mounting anything, so it works against a remote daemon.
 *
 * Each layer blob is streamed with `readContent`, decompressed (gzip) when its media type says
 * so and parsed as tar (ustar, GNU long names, PAX records). Layers apply bottom-up with OCI
 * whiteouts (`.wh.<name>` deletes, `.wh..wh..opq` makes a directory opaque), so a file reads as
 * it appears in the final root filesystem; symbolic links (also in parent directories) and hard
 * links are followed inside the image. Only the requested files' bytes are held in memory, and
 * results are memoized per manifest digest and path (manifests are content-addressed, so the
 * cache is never stale).
 *
 * @module
 */

import type { ContainerdClient } from "./connection.ts";
import { readContent } from "./content.ts";
import { assertDigest } from "./digest.ts";
import { ContainerdError } from "./errors.ts";

/** The default cap on the size of one file read by {@linkcode readImageFiles}: 1 MiB. */
export const DEFAULT_MAX_FILE_BYTES: number = 1024 * 1024;

/** A layer of an image manifest (the fields of an OCI descriptor that are needed here). */
export interface LayerDescriptor {
  /** The layer's media type, e.g. `application/vnd.oci.image.layer.v1.tar+gzip`. */
  mediaType: string;
  /** The layer blob's `sha256:` digest. */
  digest: string;
  /** The layer blob's size in bytes. */
  size: number;
}

/** An image as {@linkcode readImageFiles} needs it: its manifest digest and layers. */
export interface ImageLayers {
  /** The manifest's digest; results are memoized under it. */
  manifestDigest: string;
  /** The manifest's layers, bottom first. */
  layers: readonly LayerDescriptor[];
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

/** What a tar header describes. */
export type TarEntryType =
  | "file"
  | "hardlink"
  | "symlink"
  | "dir"
  | "char"
  | "block"
  | "fifo"
  | "other";

/** One tar entry's header, after GNU long-name and PAX records are applied. */
export interface TarHeader {
  /** The entry's path as written in the archive (e.g. `./etc/passwd` or `etc/`). */
  path: string;
  /** The kind of entry. */
  type: TarEntryType;
  /** The raw type flag character (`"0"`, `"5"`, `"S"`, ...). */
  typeflag: string;
  /** The target of a symbolic or hard link (empty for other entries). */
  linkname: string;
  /** The size of the entry's data in the archive. */
  size: number;
  /** The permission bits. */
  mode: number;
  /** True for GNU sparse files (old `S` entries or PAX `GNU.sparse.*` records). */
  sparse: boolean;
}

/** A tar entry yielded by {@linkcode readTar}. */
export interface TarItem extends TarHeader {
  /**
   * Reads the entry's data. Call it at most once, before asking the iterator for the next
   * entry; entries whose data is not read are skipped.
   */
  bytes(): Promise<Uint8Array>;
}

const BLOCK = 512;
const MAX_META_BYTES = 1024 * 1024; // GNU long names and PAX records
const MAX_SYMLINK_HOPS = 40;
const MAX_PASSES = 8;
const decoder = new TextDecoder();

// ---------------------------------------------------------------------------------------------
// tar

/** Reads exact byte counts from a stream of chunks. */
class ByteReader {
  #iter: AsyncIterator<Uint8Array>;
  #buf: Uint8Array = new Uint8Array(0);
  #pos = 0;
  /** Bytes consumed so far. */
  offset = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#iter = source[Symbol.asyncIterator]();
  }

  async #fill(): Promise<boolean> {
    while (this.#pos >= this.#buf.length) {
      const next = await this.#iter.next();
      if (next.done) return false;
      this.#buf = next.value;
      this.#pos = 0;
    }
    return true;
  }

  /** Reads `n` bytes; fewer only at the end of the stream. */
  async read(n: number): Promise<Uint8Array> {
    if (this.#pos + n <= this.#buf.length) {
      const out = this.#buf.subarray(this.#pos, this.#pos + n);
      this.#pos += n;
      this.offset += n;
      return out;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      if (!await this.#fill()) break;
      const take = Math.min(n - filled, this.#buf.length - this.#pos);
      out.set(this.#buf.subarray(this.#pos, this.#pos + take), filled);
      this.#pos += take;
      filled += take;
    }
    this.offset += filled;
    return filled === n ? out : out.subarray(0, filled);
  }

  /** Skips `n` bytes; returns how many were skipped (fewer only at the end of the stream). */
  async skip(n: number): Promise<number> {
    let skipped = 0;
    while (skipped < n) {
      if (!await this.#fill()) break;
      const take = Math.min(n - skipped, this.#buf.length - this.#pos);
      this.#pos += take;
      skipped += take;
    }
    this.offset += skipped;
    return skipped;
  }

  /** Stops the underlying stream (cancelling it when it is not finished). */
  async close(): Promise<void> {
    await this.#iter.return?.();
  }
}

function cString(block: Uint8Array, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return decoder.decode(end === -1 ? field : field.subarray(0, end));
}

/** Parses a numeric header field: octal text, or GNU base-256 when the high bit is set. */
function parseNumber(block: Uint8Array, offset: number, length: number, what: string): number {
  const field = block.subarray(offset, offset + length);
  if (field[0] & 0x80) {
    if (field[0] === 0xff) throw new Error(`tar: negative ${what} in base-256 encoding`);
    let value = field[0] & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i];
    if (!Number.isSafeInteger(value)) throw new Error(`tar: ${what} too large`);
    return value;
  }
  const text = decoder.decode(field).replace(/\0.*$/s, "").trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw new Error(`tar: invalid ${what} field '${text}'`);
  return parseInt(text, 8);
}

function isZeroBlock(block: Uint8Array): boolean {
  for (const b of block) if (b !== 0) return false;
  return true;
}

function checksumMatches(block: Uint8Array): boolean {
  const stored = parseNumber(block, 148, 8, "checksum");
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

/** Parses PAX extended header records (`"<len> <key>=<value>\n"`). */
function parsePax(data: Uint8Array): Map<string, string> {
  const records = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // NUL padding
    const space = data.indexOf(0x20, pos);
    if (space === -1) throw new Error("tar: malformed PAX record (no length)");
    const lengthText = decoder.decode(data.subarray(pos, space));
    const length = /^[0-9]+$/.test(lengthText) ? Number(lengthText) : NaN;
    if (!(length > space - pos + 1) || pos + length > data.length) {
      throw new Error(`tar: malformed PAX record length '${lengthText}'`);
    }
    const record = data.subarray(space + 1, pos + length);
    if (record[record.length - 1] !== 0x0a) {
      throw new Error("tar: malformed PAX record (no newline)");
    }
    const eq = record.indexOf(0x3d);
    if (eq === -1) throw new Error("tar: malformed PAX record (no '=')");
    records.set(
      decoder.decode(record.subarray(0, eq)),
      decoder.decode(record.subarray(eq + 1, record.length - 1)),
    );
    pos += length;
  }
  return records;
}

function entryType(typeflag: string, name: string): TarEntryType {
  switch (typeflag) {
    case "0":
    case "\0":
    case "7":
    case "S":
      return name.endsWith("/") ? "dir" : "file";
    case "1":
      return "hardlink";
    case "2":
      return "symlink";
    case "3":
      return "char";
    case "4":
      return "block";
    case "5":
      return "dir";
    case "6":
      return "fifo";
    default:
      return "other";
  }
}

const HEADER_ONLY: ReadonlySet<TarEntryType> = new Set([
  "hardlink",
  "symlink",
  "dir",
  "char",
  "block",
  "fifo",
]);

/**
 * Parses a tar stream entry by entry: POSIX ustar (with the name prefix), GNU tar (long names
 * `L`, long link names `K`, old sparse headers `S`, base-256 sizes) and PAX (`x` records for
 * `path`, `linkpath` and `size`; global `g` records are skipped). Header checksums are verified.
 * The stream is cancelled when the iteration stops early or the end-of-archive block is reached.
 *
 * @param source The uncompressed tar bytes, in chunks of any size.
 * @returns The entries, in archive order.
 * @throws {Error} When a header's checksum does not match, a numeric field or PAX record is
 *   malformed, or the archive ends inside an entry.
 *
 * @example
 * ```ts
 * import { readTar } from "@wfe/containerd";
 *
 * const tar = await Deno.readFile("layer.tar");
 * for await (const entry of readTar([tar])) {
 *   if (entry.path === "etc/hostname") console.log(new TextDecoder().decode(await entry.bytes()));
 * }
 * ```
 */
export async function* readTar(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): AsyncGenerator<TarItem, void, undefined> {
  const iterable: AsyncIterable<Uint8Array> = Symbol.asyncIterator in source
    ? source as AsyncIterable<Uint8Array>
    : (async function* () {
      yield* source as Iterable<Uint8Array>;
    })();
  const reader = new ByteReader(iterable);
  const truncated = (what: string): Error =>
    new Error(`tar: the archive ends inside ${what} (at byte ${reader.offset})`);
  const readMeta = async (size: number, what: string): Promise<Uint8Array> => {
    if (size > MAX_META_BYTES) throw new Error(`tar: ${what} of ${size} bytes is too large`);
    const data = await reader.read(size);
    if (data.length < size) throw truncated(what);
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (await reader.skip(pad) < pad) throw truncated(what);
    return data.slice();
  };
  try {
    let longName: string | undefined;
    let longLink: string | undefined;
    let pax = new Map<string, string>();
    while (true) {
      const at = reader.offset;
      const block = await reader.read(BLOCK);
      if (block.length === 0) return; // no end-of-archive blocks: accept
      if (block.length < BLOCK) throw truncated("a header");
      if (isZeroBlock(block)) return;
      if (!checksumMatches(block)) {
        throw new Error(`tar: invalid header checksum at byte ${at}`);
      }
      const typeflag = String.fromCharCode(block[156]);
      const headerSize = parseNumber(block, 124, 12, "size");
      if (typeflag === "L" || typeflag === "K") {
        const text = cString(await readMeta(headerSize, "a GNU long name"), 0, headerSize);
        if (typeflag === "L") longName = text;
        else longLink = text;
        continue;
      }
      if (typeflag === "x") {
        for (const [k, v] of parsePax(await readMeta(headerSize, "a PAX header"))) pax.set(k, v);
        continue;
      }
      if (typeflag === "g") {
        await readMeta(headerSize, "a PAX global header");
        continue;
      }
      if (typeflag === "S" && block[482] !== 0) {
        // Old GNU sparse: extension blocks follow until one has isextended == 0.
        while (true) {
          const ext = await reader.read(BLOCK);
          if (ext.length < BLOCK) throw truncated("a GNU sparse header");
          if (ext[504] === 0) break;
        }
      }
      const magic = cString(block, 257, 6);
      const posix = magic === "ustar" && block[262] === 0; // GNU writes "ustar  \0"
      const name = cString(block, 0, 100);
      const prefix = posix ? cString(block, 345, 155) : "";
      const rawPath = pax.get("GNU.sparse.name") ?? pax.get("path") ?? longName ??
        (prefix ? `${prefix}/${name}` : name);
      const type = entryType(typeflag, rawPath);
      let size = headerSize;
      const paxSize = pax.get("size");
      if (paxSize !== undefined) {
        if (!/^[0-9]+$/.test(paxSize)) throw new Error(`tar: invalid PAX size '${paxSize}'`);
        size = Number(paxSize);
      }
      if (HEADER_ONLY.has(type)) size = 0;
      const sparse = typeflag === "S" || [...pax.keys()].some((k) => k.startsWith("GNU.sparse."));
      const linkname = pax.get("linkpath") ?? longLink ?? cString(block, 157, 100);
      longName = undefined;
      longLink = undefined;
      pax = new Map();

      let consumed = false;
      let expired = false;
      const padded = Math.ceil(size / BLOCK) * BLOCK;
      const item: TarItem = {
        path: rawPath,
        type,
        typeflag,
        linkname,
        size,
        mode: parseNumber(block, 100, 8, "mode"),
        sparse,
        bytes: async (): Promise<Uint8Array> => {
          if (expired) throw new Error(`tar: ${rawPath}: data read after moving to the next entry`);
          if (consumed) throw new Error(`tar: ${rawPath}: data already read`);
          consumed = true;
          const data = await reader.read(size);
          if (data.length < size) throw truncated(`the data of ${rawPath}`);
          if (await reader.skip(padded - size) < padded - size) {
            throw truncated(`the data of ${rawPath}`);
          }
          return data.slice();
        },
      };
      yield item;
      expired = true;
      if (!consumed) {
        consumed = true;
        if (await reader.skip(padded) < padded) throw truncated(`the data of ${rawPath}`);
      }
    }
  } finally {
    await reader.close();
  }
}

// ---------------------------------------------------------------------------------------------
// paths

function normalizePath(path: string): string {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return "/" + out.join("/");
}

function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

function join(dir: string, name: string): string {
  return dir === "/" ? `/${name}` : `${dir}/${name}`;
}

function isUnder(path: string, dir: string): boolean {
  return dir === "/" ? path !== "/" : path.startsWith(dir + "/");
}

/** The path and its ancestors below `/`, e.g. `/a`, `/a/b`, `/a/b/c`. */
function withAncestors(path: string): string[] {
  const out: string[] = [];
  let cur = path;
  while (cur !== "/") {
    out.push(cur);
    cur = dirname(cur);
  }
  return out.reverse();
}

// ---------------------------------------------------------------------------------------------
// layers

/** A layer as {@linkcode readLayeredFiles} reads it. */
export interface LayerSource {
  /** Names the layer in error messages, e.g. its digest. */
  name: string;
  /** Opens the layer's uncompressed tar stream (called once per pass over the layers). */
  open(): AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
}

/** Options of {@linkcode readLayeredFiles}. */
export interface ReadLayeredFilesOptions {
  /** Checked between entries; the call rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Refuse files larger than this many bytes.
   * @default {1048576} (1 MiB)
   */
  maxFileBytes?: number;
  /** Names the image in error messages. */
  imageName?: string;
}

type Kind = "absent" | "file" | "symlink" | "dir" | "other";

/** What is known about one watched path while the layers are applied. */
interface Watch {
  /** The first layer that is observed completely for this path. */
  fromLayer: number;
  /** True when the state reflects every layer read so far. */
  known: boolean;
  kind: Kind;
  /** The layer that set the state (-1: none). */
  layer: number;
  data?: Uint8Array;
  size: number;
  sparse: boolean;
  target: string;
}

function newWatch(fromLayer: number): Watch {
  return {
    fromLayer,
    known: fromLayer === 0,
    kind: "absent",
    layer: -1,
    size: 0,
    sparse: false,
    target: "",
  };
}

function setState(w: Watch, layer: number, kind: Kind): void {
  w.known = true;
  w.kind = kind;
  w.layer = layer;
  w.data = undefined;
  w.size = 0;
  w.sparse = false;
  w.target = "";
}

/** A whiteout or opaque directory in `layer` hides what lower layers put at `w`. */
function hideLower(w: Watch, layer: number): void {
  if (w.known) {
    if (w.layer < layer) setState(w, layer, "absent");
  } else if (w.fromLayer <= layer) {
    setState(w, layer, "absent");
  }
}

/** One pass over all layers, tracking the watched paths. */
async function scanLayers(
  layers: readonly LayerSource[],
  watchPaths: Iterable<string>,
  maxFileBytes: number,
  signal: AbortSignal | undefined,
): Promise<Map<string, Watch>> {
  const watches = new Map<string, Watch>();
  for (const p of watchPaths) watches.set(p, newWatch(0));
  const addWatch = (path: string, fromLayer: number) => {
    for (const p of withAncestors(path)) if (!watches.has(p)) watches.set(p, newWatch(fromLayer));
  };
  for (let i = 0; i < layers.length; i++) {
    signal?.throwIfAborted();
    const layer = layers[i];
    try {
      for await (const entry of readTar(layer.open())) {
        signal?.throwIfAborted();
        const path = normalizePath(entry.path);
        if (path === "/") continue;
        const name = basename(path);
        if (name.startsWith(".wh.")) {
          const hidden = name === ".wh..wh..opq" ? undefined : join(dirname(path), name.slice(4));
          for (const [p, w] of watches) {
            if (
              hidden === undefined ? isUnder(p, dirname(path)) : p === hidden || isUnder(p, hidden)
            ) {
              hideLower(w, i);
            }
          }
          continue;
        }
        if (entry.type !== "dir") {
          // A non-directory replaces whatever tree was below its path.
          for (const [p, w] of watches) if (isUnder(p, path)) setState(w, i, "absent");
        }
        const w = watches.get(path);
        if (!w) continue;
        switch (entry.type) {
          case "file":
            setState(w, i, "file");
            w.size = entry.size;
            w.sparse = entry.sparse;
            if (!entry.sparse && entry.size <= maxFileBytes) w.data = await entry.bytes();
            break;
          case "symlink": {
            setState(w, i, "symlink");
            w.target = entry.linkname;
            // Watch the target, and for watched paths below the link, their new place.
            const target = normalizePath(
              entry.linkname.startsWith("/")
                ? entry.linkname
                : `${dirname(path)}/${entry.linkname}`,
            );
            const below = [...watches.keys()].filter((p) => isUnder(p, path));
            addWatch(target, i + 1);
            for (const p of below) addWatch(normalizePath(target + p.slice(path.length)), i + 1);
            break;
          }
          case "dir":
            setState(w, i, "dir");
            break;
          case "hardlink": {
            const targetPath = normalizePath(entry.linkname);
            const t = watches.get(targetPath);
            if (t?.known) {
              setState(w, i, t.kind);
              w.data = t.data;
              w.size = t.size;
              w.sparse = t.sparse;
              w.target = t.target;
            } else {
              // The link names an entry nobody watched: a later pass watches it from the start.
              addWatch(targetPath, i + 1);
              setState(w, i, "absent");
              w.known = false;
            }
            break;
          }
          default:
            setState(w, i, "other");
        }
      }
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (err instanceof ContainerdError) throw err;
      const message = err instanceof Error ? err.message : String(err);
      throw new Error(`Cannot read layer ${layer.name}: ${message}`, { cause: err });
    }
  }
  return watches;
}

type Resolution =
  | { found: true; watch?: Watch; path: string }
  | { found: false; watchMore: string[] };

/** Resolves `path` through symbolic links in the watched states, as the kernel would in a chroot. */
function resolveInWatches(
  path: string,
  watches: Map<string, Watch>,
  describe: () => string,
): Resolution {
  let remaining = path.split("/").filter((c) => c !== "");
  let cur = "/";
  let hops = 0;
  while (remaining.length > 0) {
    const component = remaining[0];
    remaining = remaining.slice(1);
    if (component === ".") continue;
    if (component === "..") {
      cur = dirname(cur);
      continue;
    }
    const next = join(cur, component);
    const w = watches.get(next);
    if (!w) return { found: false, watchMore: [next] };
    const last = remaining.length === 0;
    if (!w.known) {
      // An ancestor nobody saw an entry for is an implicit directory when what lies below it
      // is known to exist.
      const below = last ? undefined : watches.get(normalizePath(`${next}/${remaining.join("/")}`));
      if (below?.known && below.kind !== "absent") {
        cur = next;
        continue;
      }
      return { found: false, watchMore: [] };
    }
    switch (w.kind) {
      case "symlink":
        if (++hops > MAX_SYMLINK_HOPS) {
          throw new Error(`Cannot read ${describe()}: too many levels of symbolic links`);
        }
        if (w.target.startsWith("/")) cur = "/";
        remaining = [...w.target.split("/").filter((c) => c !== ""), ...remaining];
        continue;
      case "file":
        if (last) return { found: true, watch: w, path: next };
        return { found: true, path: next }; // a file where a directory is needed
      case "dir":
      case "absent": // a directory without an entry of its own
        if (last) return { found: true, path: next };
        cur = next;
        continue;
      default:
        return { found: true, path: next };
    }
  }
  return { found: true, path: cur };
}

function tooLarge(path: string, resolved: string, size: number, max: number, image: string): Error {
  const via = resolved === normalizePath(path) ? "" : ` (resolved to ${resolved})`;
  return new RangeError(
    `Cannot read ${path}${via} from image ${image}: its ${size} bytes exceed maxFileBytes ${max}`,
  );
}

/**
 * Reads files as they appear in the root filesystem built from tar layers: layers apply bottom
 * first, `.wh.<name>` entries delete `<name>` (and what is below it) from lower layers,
 * `.wh..wh..opq` hides everything lower layers put in its directory, a non-directory entry
 * replaces a whole tree, symbolic links (in the file or its parent directories) are followed
 * inside the image (absolute targets from the image root, `..` stops at the root) and hard
 * links take the content of the entry they name. When a link leads to a path that was not
 * watched in a lower layer, the layers are read again (at most 8 passes).
 *
 * @param layers The layers, bottom first, each able to open its uncompressed tar stream.
 * @param paths Absolute paths to read, e.g. `/etc/passwd`.
 * @param options Signal, file size cap and the image name for messages.
 * @returns A map from each requested path (as given) to its bytes, or `undefined` when it does
 *   not exist or is not a regular file (a directory, device, dangling link).
 * @throws {RangeError} When a requested file is larger than `maxFileBytes`.
 * @throws {Error} When a layer is not a valid tar archive, a file is sparse (not supported), or
 *   links loop.
 *
 * @example
 * ```ts
 * import { readLayeredFiles } from "@wfe/containerd";
 *
 * const tar = await Deno.readFile("layer.tar");
 * const files = await readLayeredFiles([{ name: "layer.tar", open: () => [tar] }], ["/etc/passwd"]);
 * console.log(files.get("/etc/passwd")?.length);
 * ```
 */
export async function readLayeredFiles(
  layers: readonly LayerSource[],
  paths: readonly string[],
  options: ReadLayeredFilesOptions = {},
): Promise<Map<string, Uint8Array | undefined>> {
  const { signal, maxFileBytes = DEFAULT_MAX_FILE_BYTES, imageName = "(layers)" } = options;
  if (!Number.isSafeInteger(maxFileBytes) || maxFileBytes < 0) {
    throw new RangeError(`Cannot use maxFileBytes ${maxFileBytes}: expected an integer >= 0`);
  }
  for (const p of paths) {
    if (typeof p !== "string" || p === "" || p.includes("\0")) {
      throw new TypeError(`Cannot read path '${p}' from image ${imageName}: expected a file path`);
    }
  }
  signal?.throwIfAborted();
  const watchSet = new Set<string>();
  for (const p of paths) for (const a of withAncestors(normalizePath(p))) watchSet.add(a);

  for (let pass = 0; pass < MAX_PASSES; pass++) {
    const watches = await scanLayers(layers, watchSet, maxFileBytes, signal);
    const results = new Map<string, Uint8Array | undefined>();
    let again = false;
    for (const p of paths) {
      const describe = () => `${p} from image ${imageName}`;
      const r = resolveInWatches(normalizePath(p), watches, describe);
      if (!r.found) {
        again = true;
        for (const more of r.watchMore) for (const a of withAncestors(more)) watchSet.add(a);
        continue;
      }
      const w = r.watch;
      if (!w) {
        results.set(p, undefined);
      } else if (w.sparse) {
        throw new Error(`Cannot read ${describe()}: it is a sparse file (not supported)`);
      } else if (w.data === undefined || w.size > maxFileBytes) {
        throw tooLarge(p, r.path, w.size, maxFileBytes, imageName);
      } else {
        results.set(p, w.data);
      }
    }
    if (!again) return results;
    for (const key of watches.keys()) watchSet.add(key); // link targets found on the way
  }
  throw new Error(
    `Cannot read ${paths.join(", ")} from image ${imageName}: links lead through too many ` +
      `passes over the layers`,
  );
}

// ---------------------------------------------------------------------------------------------
// containerd

type Compression = "none" | "gzip" | "zstd";

/**
 * The compression of a layer media type: tar, tar+gzip (OCI, Docker, non-distributable and
 * foreign variants) or tar+zstd; undefined for anything else.
 */
function layerCompression(mediaType: string): Compression | undefined {
  const type = mediaType.split(";")[0].trim().toLowerCase();
  if (/(\+|\.)gzip$/.test(type) || type.endsWith(".tar.gz")) return "gzip";
  if (/(\+|\.)zstd$/.test(type)) return "zstd";
  if (/(\.|\/)tar$/.test(type) || type === "application/x-tar") return "none";
  return undefined;
}

function contentLayer(
  client: ContainerdClient,
  layer: LayerDescriptor,
  image: string,
  signal: AbortSignal | undefined,
): LayerSource {
  const compression = layerCompression(layer.mediaType);
  if (compression === undefined || compression === "zstd") {
    const why = compression === "zstd"
      ? "zstd-compressed layers are not supported (only tar and tar+gzip)"
      : "not a tar layer media type (expected tar or tar+gzip)";
    throw new Error(
      `Cannot read layer ${layer.digest} (${layer.mediaType}) of image ${image}: ${why}`,
    );
  }
  return {
    name: `${layer.digest} (${layer.mediaType})`,
    open: () => {
      stats.layerReads++;
      const blob = readContent(client, layer.digest, { signal });
      if (compression === "none") return blob;
      // Chunks from gRPC are plain ArrayBuffer-backed arrays.
      const chunks = blob as AsyncIterable<Uint8Array<ArrayBuffer>>;
      return ReadableStream.from(chunks).pipeThrough(new DecompressionStream("gzip"));
    },
  };
}

const CACHE_MAX_ENTRIES = 256;
const CACHE_MAX_BYTES = 4 * 1024 * 1024;
const CACHE_MAX_ENTRY_BYTES = 1024 * 1024;

/** Results by `<manifest digest>\0<path>`, least recently used first. */
const cache = new Map<string, Uint8Array | undefined>();
let cacheBytes = 0;
const stats = { layerReads: 0, cacheHits: 0, cacheMisses: 0 };

function cacheGet(key: string): { value: Uint8Array | undefined } | undefined {
  if (!cache.has(key)) return undefined;
  const value = cache.get(key);
  cache.delete(key);
  cache.set(key, value); // most recently used last
  return { value };
}

function cachePut(key: string, value: Uint8Array | undefined): void {
  const size = value?.length ?? 0;
  if (size > CACHE_MAX_ENTRY_BYTES) return;
  const old = cache.get(key);
  if (cache.has(key)) {
    cacheBytes -= old?.length ?? 0;
    cache.delete(key);
  }
  cache.set(key, value);
  cacheBytes += size;
  for (const [k, v] of cache) {
    if (cache.size <= CACHE_MAX_ENTRIES && cacheBytes <= CACHE_MAX_BYTES) break;
    cache.delete(k);
    cacheBytes -= v?.length ?? 0;
  }
}

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
 * import { imageFilesCacheStats } from "@wfe/containerd";
 *
 * console.log(imageFilesCacheStats().layerReads);
 * ```
 */
export function imageFilesCacheStats(): ImageFilesCacheStats {
  return { ...stats, entries: cache.size, bytes: cacheBytes };
}

/**
 * Empties {@linkcode readImageFiles}' cache (the counters keep counting).
 *
 * @example
 * ```ts
 * import { clearImageFilesCache } from "@wfe/containerd";
 *
 * clearImageFilesCache();
 * ```
 */
export function clearImageFilesCache(): void {
  cache.clear();
  cacheBytes = 0;
}

/**
 * Reads files from an image's layers in containerd's content store, as they appear in the image's
 * root filesystem (see {@linkcode readLayeredFiles} for whiteouts and links). Layer blobs are
 * streamed with `readContent` and gunzipped as their media type says; only the requested files
 * are kept in memory. Results are memoized per manifest digest and path in a bounded cache, so a
 * second call for the same image reads no layers.
 *
 * @param client A connected client (its namespace must hold the layer blobs).
 * @param image The manifest digest and its layer descriptors, bottom first.
 * @param paths Absolute paths, e.g. `["/etc/passwd", "/etc/group"]`.
 * @param options Signal and the per-file size cap (default 1 MiB).
 * @returns A map from each requested path to its bytes, or `undefined` when the image has no
 *   regular file there. The arrays are the caller's to keep (copies of the cached ones).
 * @throws {TypeError} When a digest or path is malformed.
 * @throws {RangeError} When a requested file is larger than `maxFileBytes`.
 * @throws {Error} When a layer's media type is not tar or tar+gzip (zstd is not supported), or
 *   a layer is not a valid tar archive.
 * @throws {ContainerdError} NOT_FOUND (5) when a layer blob is missing from the content store.
 *
 * @example
 * ```ts
 * import { connect, readAllContent, readImageFiles } from "@wfe/containerd";
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
  client: ContainerdClient,
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
    const hit = cacheGet(`${image.manifestDigest}\0${normalizePath(path)}`);
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
    const layers = image.layers.map((l) => contentLayer(client, l, imageName, signal));
    const read = await readLayeredFiles(layers, missing, { signal, maxFileBytes, imageName });
    for (const [path, value] of read) {
      cachePut(`${image.manifestDigest}\0${normalizePath(path)}`, value);
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
 * import { connect, readAllContent, readImagePasswdGroup, resolveUser } from "@wfe/containerd";
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
  client: ContainerdClient,
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
