/**
 * Hand-made tar pieces and in-memory layers for the tests of lib/archive and lib/image
 * (writeTar in oci_archive.ts writes plain ustar only).
 *
 * @module
 */

import { concat as concatAll } from "../../lib/_util/bytes.ts";
import { type LayerSource, readLayeredFiles } from "../../lib/archive/layered.ts";
import { readTar, type TarItem } from "../../lib/archive/tar.ts";
import { type TarEntry, tarHeaderChecksum } from "../oci_archive.ts";

export const enc = new TextEncoder();
export const dec = new TextDecoder();

// ---------------------------------------------------------------------------------------------
// helpers: hand-made tar pieces (writeTar writes plain ustar only)

export interface RawHeader {
  name: string;
  type: string;
  size?: number;
  linkname?: string;
  prefix?: string;
  /** GNU magic ("ustar  \0") instead of POSIX ("ustar\0" "00"). */
  gnu?: boolean;
}

export function header(o: RawHeader): Uint8Array {
  const h = new Uint8Array(512);
  const put = (offset: number, s: string) => h.set(enc.encode(s), offset);
  put(0, o.name);
  put(100, "0000644\0");
  put(108, "0000000\0");
  put(116, "0000000\0");
  put(124, (o.size ?? 0).toString(8).padStart(11, "0") + "\0");
  put(136, "14524523000\0");
  put(156, o.type);
  if (o.linkname) put(157, o.linkname);
  if (o.gnu) {
    put(257, "ustar  \0");
  } else {
    put(257, "ustar\0");
    put(263, "00");
  }
  if (o.prefix) put(345, o.prefix);
  put(148, tarHeaderChecksum(h).toString(8).padStart(6, "0") + "\0 ");
  return h;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  return concatAll(parts);
}

export function padded(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(data.length / 512) * 512);
  out.set(data);
  return out;
}

/** A header plus its padded data. */
export function raw(o: RawHeader, data: Uint8Array | string = new Uint8Array()): Uint8Array {
  const bytes = typeof data === "string" ? enc.encode(data) : data;
  return concat(header({ ...o, size: o.size ?? bytes.length }), padded(bytes));
}

/** PAX records with correct self-including lengths. */
export function paxData(records: Record<string, string>): Uint8Array {
  let text = "";
  for (const [k, v] of Object.entries(records)) {
    const body = ` ${k}=${v}\n`;
    const bodyLength = enc.encode(body).length;
    let length = bodyLength + 1;
    while (String(length).length + bodyLength !== length) {
      length = String(length).length + bodyLength;
    }
    text += `${length}${body}`;
  }
  return enc.encode(text);
}

export const END = new Uint8Array(1024);

/** Splits bytes into small chunks so headers and data straddle chunk boundaries. */
export function chunked(bytes: Uint8Array, size = 97): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

export async function entries(tar: Uint8Array): Promise<{ item: TarItem; data: string }[]> {
  const out: { item: TarItem; data: string }[] = [];
  for await (const item of readTar(chunked(tar))) {
    out.push({ item, data: item.type === "file" ? dec.decode(await item.bytes()) : "" });
  }
  return out;
}

/** In-memory layers that count how often they are opened. */
export function layersOf(...tars: Uint8Array[]): { sources: LayerSource[]; opens: () => number } {
  let opens = 0;
  const sources = tars.map((tar, i) => ({
    name: `layer${i}`,
    open: () => {
      opens++;
      return chunked(tar, 211);
    },
  }));
  return { sources, opens: () => opens };
}

export async function readText(
  tars: Uint8Array[],
  paths: string[],
  maxFileBytes?: number,
): Promise<Record<string, string | undefined>> {
  const { sources } = layersOf(...tars);
  const files = await readLayeredFiles(sources, paths, { maxFileBytes, imageName: "test" });
  return Object.fromEntries(paths.map((p) => {
    const v = files.get(p);
    return [p, v === undefined ? undefined : dec.decode(v)];
  }));
}

export function file(path: string, content: string): TarEntry {
  return { type: "file", path, content };
}

export function whiteout(path: string): TarEntry {
  const i = path.lastIndexOf("/");
  return { type: "file", path: `${path.slice(0, i)}/.wh.${path.slice(i + 1)}`, content: "" };
}

// ---------------------------------------------------------------------------------------------
// readTar
