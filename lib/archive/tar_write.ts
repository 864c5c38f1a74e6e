/**
 * Tar headers for writing archives: ustar, with a PAX record for what ustar
 * cannot hold (long paths and link targets, large sizes and ids).
 *
 * @module
 */

/** What one written tar entry is. */
export interface TarWriteEntry {
  /** Path in the archive, relative (`etc/passwd`); a leading `/` is dropped. */
  path: string;
  /** The kind of entry. */
  type: "file" | "dir" | "symlink" | "hardlink";
  /** Permission bits (`0o7777` at most). */
  mode: number;
  /** Owner user id. */
  uid: number;
  /** Owner group id. */
  gid: number;
  /** Data size of a file, in bytes (0 for the rest). */
  size?: number;
  /** Modification time, seconds since the epoch. */
  mtime?: number;
  /** Target of a symbolic or hard link. */
  linkname?: string;
  /** Owner user name (written as is, informational). */
  uname?: string;
  /** Owner group name (written as is, informational). */
  gname?: string;
}

/** A tar block. */
export const TAR_BLOCK = 512;

const encoder = new TextEncoder();
const USTAR_ID_MAX = 0o7777777;
const USTAR_SIZE_MAX = 0o77777777777;
const TYPEFLAGS = { file: "0", hardlink: "1", symlink: "2", dir: "5" } as const;

/** Computes a header's checksum: the byte sum with the checksum field taken as spaces. */
export function tarHeaderChecksum(header: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i];
  return sum;
}

function putString(buf: Uint8Array, offset: number, length: number, value: string): void {
  const bytes = encoder.encode(value);
  buf.set(bytes.subarray(0, length), offset);
}

function putOctal(buf: Uint8Array, offset: number, length: number, value: number): void {
  putString(buf, offset, length, value.toString(8).padStart(length - 1, "0") + "\0");
}

/** Splits a path into ustar's prefix and name, or returns undefined when it does not fit. */
function splitUstar(path: string): { name: string; prefix: string } | undefined {
  if (encoder.encode(path).length <= 100) return { name: path, prefix: "" };
  for (let i = path.length - 1; i > 0; i--) {
    if (path[i] !== "/") continue;
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (name && encoder.encode(prefix).length <= 155 && encoder.encode(name).length <= 100) {
      return { name, prefix };
    }
  }
  return undefined;
}

/** One PAX record, `"<len> key=value\n"`, where len counts the whole record. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLength = encoder.encode(body).length;
  let digits = String(bodyLength).length;
  while (String(bodyLength + digits).length !== digits) digits++;
  return `${bodyLength + digits}${body}`;
}

function ustarBlock(
  entry: TarWriteEntry,
  typeflag: string,
  size: number,
  split: { name: string; prefix: string },
): Uint8Array {
  const h = new Uint8Array(TAR_BLOCK);
  putString(h, 0, 100, split.name);
  putOctal(h, 100, 8, entry.mode & 0o7777);
  putOctal(h, 108, 8, Math.min(entry.uid, USTAR_ID_MAX));
  putOctal(h, 116, 8, Math.min(entry.gid, USTAR_ID_MAX));
  putOctal(h, 124, 12, Math.min(size, USTAR_SIZE_MAX));
  putOctal(h, 136, 12, Math.max(0, Math.floor(entry.mtime ?? 0)));
  h[156] = typeflag.charCodeAt(0);
  putString(h, 157, 100, entry.linkname ?? "");
  putString(h, 257, 6, "ustar\0");
  putString(h, 263, 2, "00");
  putString(h, 265, 32, entry.uname ?? "");
  putString(h, 297, 32, entry.gname ?? "");
  putOctal(h, 329, 8, 0);
  putOctal(h, 337, 8, 0);
  putString(h, 345, 155, split.prefix);
  putString(h, 148, 8, tarHeaderChecksum(h).toString(8).padStart(6, "0") + "\0 ");
  return h;
}

/**
 * Encodes an entry's header: one ustar block, preceded by a PAX extended
 * header when the path, link target, size or ids do not fit ustar's fields.
 * The entry's data (for files) follows, padded with {@linkcode tarPadding}.
 *
 * @throws {RangeError} For an empty path or a negative or fractional size or id.
 */
export function encodeTarHeader(entry: TarWriteEntry): Uint8Array {
  let path = entry.path.replace(/^\/+/, "").replace(/\/+$/, "");
  if (path === "") throw new RangeError("tar: an entry needs a non-empty path");
  if (entry.type === "dir") path += "/";
  const size = entry.type === "file" ? entry.size ?? 0 : 0;
  for (const [field, value] of [["size", size], ["uid", entry.uid], ["gid", entry.gid]] as const) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`tar: ${field} ${value} of '${path}' is not a whole number >= 0`);
    }
  }
  const records: string[] = [];
  let split = splitUstar(path);
  if (!split) {
    records.push(paxRecord("path", path));
    split = { name: path.slice(-100).replace(/^[^/]*\//, ""), prefix: "" };
    if (encoder.encode(split.name).length > 100) split.name = "pax-long-name";
  }
  const linkname = entry.linkname ?? "";
  if (encoder.encode(linkname).length > 100) records.push(paxRecord("linkpath", linkname));
  if (size > USTAR_SIZE_MAX) records.push(paxRecord("size", String(size)));
  if (entry.uid > USTAR_ID_MAX) records.push(paxRecord("uid", String(entry.uid)));
  if (entry.gid > USTAR_ID_MAX) records.push(paxRecord("gid", String(entry.gid)));
  const header = ustarBlock(entry, TYPEFLAGS[entry.type], size, split);
  if (records.length === 0) return header;
  const pax = paxHeader("x", "PaxHeaders/" + split.name.slice(0, 88), records.join(""));
  const out = new Uint8Array(pax.length + TAR_BLOCK);
  out.set(pax, 0);
  out.set(header, pax.length);
  return out;
}

/** A PAX header entry (`x` for the next entry, `g` global) with its padded records. */
function paxHeader(typeflag: "x" | "g", name: string, records: string): Uint8Array {
  const data = encoder.encode(records);
  const block = ustarBlock(
    { path: name, type: "file", mode: 0o644, uid: 0, gid: 0 },
    typeflag,
    data.length,
    { name, prefix: "" },
  );
  const out = new Uint8Array(TAR_BLOCK + data.length + tarPadding(data.length).length);
  out.set(block, 0);
  out.set(data, TAR_BLOCK);
  return out;
}

/**
 * A PAX global header: records that extractors which do not know them ignore
 * (containerd skips global headers), e.g. a `comment` that makes an archive unique.
 */
export function encodeTarGlobalHeader(records: Record<string, string>): Uint8Array {
  const text = Object.entries(records).map(([k, v]) => paxRecord(k, v)).join("");
  return paxHeader("g", "pax_global_header", text);
}

/** The zero bytes that pad `size` bytes of data to a whole block. */
export function tarPadding(size: number): Uint8Array {
  return new Uint8Array((TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK);
}

/** The end of an archive: two zero blocks. */
export function tarEnd(): Uint8Array {
  return new Uint8Array(2 * TAR_BLOCK);
}
