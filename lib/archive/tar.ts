/**
 * A streaming tar reader: ustar, GNU long names and PAX records, entries
 * yielded one at a time with their data read on demand.
 *
 * @module
 */

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
  /** Where the entry's data starts in the (uncompressed) archive, in bytes. */
  offset: number;
}

/** A tar entry yielded by {@linkcode readTar}. */
export interface TarItem extends TarHeader {
  /**
   * Reads the entry's data. Call it at most once, before asking the iterator for the next
   * entry; entries whose data is not read are skipped.
   */
  bytes(): Promise<Uint8Array>;
  /**
   * Reads the entry's data in pieces (of at most 1 MiB), for entries too large
   * to hold at once. The same rules as {@linkcode TarItem.bytes}: at most one
   * read of the data, before the next entry; each piece is the caller's.
   */
  chunks(): AsyncGenerator<Uint8Array, void, undefined>;
}

const BLOCK = 512;
const MAX_META_BYTES = 1024 * 1024; // GNU long names and PAX records
const CHUNK_BYTES = 1024 * 1024;

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
 * import { readTar } from "@wfe/containerd/api";
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
      let unread = 0; // what a chunked read left behind, padding included
      const item: TarItem = {
        path: rawPath,
        type,
        typeflag,
        linkname,
        size,
        mode: parseNumber(block, 100, 8, "mode"),
        sparse,
        offset: reader.offset,
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
        chunks: async function* (): AsyncGenerator<Uint8Array, void, undefined> {
          if (expired) throw new Error(`tar: ${rawPath}: data read after moving to the next entry`);
          if (consumed) throw new Error(`tar: ${rawPath}: data already read`);
          consumed = true;
          unread = padded;
          let left = size;
          while (left > 0) {
            const data = await reader.read(Math.min(CHUNK_BYTES, left));
            if (data.length === 0) throw truncated(`the data of ${rawPath}`);
            left -= data.length;
            unread -= data.length;
            yield data.slice();
          }
          unread = 0;
          if (await reader.skip(padded - size) < padded - size) {
            throw truncated(`the data of ${rawPath}`);
          }
        },
      };
      yield item;
      expired = true;
      if (!consumed) {
        consumed = true;
        if (await reader.skip(padded) < padded) throw truncated(`the data of ${rawPath}`);
      } else if (unread > 0) {
        // A chunked read stopped part way: skip the rest of the data and the padding.
        if (await reader.skip(unread) < unread) throw truncated(`the data of ${rawPath}`);
      }
    }
  } finally {
    await reader.close();
  }
}
