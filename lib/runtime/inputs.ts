/**
 * Inputs: files and directories from the client's side (or a tar stream),
 * packed as one tar layer, written to the content store under the
 * container's lease and applied with Diff.Apply onto its snapshot before the
 * task is created. Nothing needs a directory shared with the daemon.
 *
 * @module
 */

import { errorMessage } from "../_util/errors.ts";
import { normalizePath } from "../archive/_paths.ts";
import { readTar } from "../archive/tar.ts";
import {
  encodeTarGlobalHeader,
  encodeTarHeader,
  tarEnd,
  tarPadding,
  type TarWriteEntry,
} from "../archive/tar_write.ts";
import { writeContent } from "../content/write.ts";
import type { ContainerdClient } from "../grpc/connection.ts";
import { isNotFound } from "../grpc/errors.ts";
import type { Descriptor, Mount } from "../../proto/gen/types.ts";

/** A file, directory or tar stream to place in a container's filesystem before it starts. */
export interface Input {
  /**
   * A local file, directory or symlink (read on this side; symlinks are kept
   * as links, never followed), or the bytes of a tar archive whose entries go
   * below `target`.
   */
  source: string | Uint8Array | ReadableStream<Uint8Array>;
  /** Absolute path in the container: the file itself, or the directory the contents go to. */
  target: string;
  /** Owner user id; defaults to the container's user. */
  uid?: number;
  /** Owner group id; defaults to the container's group. */
  gid?: number;
  /** Permission bits of regular files (e.g. `0o640`); defaults to the source's. */
  mode?: number;
}

/** The media type of the packed inputs: an uncompressed OCI layer. */
export const INPUTS_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar";

const MAX_ID = 0xfffffffe;
const READ_CHUNK = 256 * 1024;

/**
 * Checks the shape of `inputs` without touching the file system.
 *
 * @throws {TypeError | RangeError} Naming the field (`inputs[1].target`) and value.
 */
export function validateInputs(value: unknown, field = "inputs"): Input[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    throw new TypeError(`Cannot use ${field}: expected an array, got ${typeof value}`);
  }
  return value.map((input, i) => {
    const name = `${field}[${i}]`;
    if (typeof input !== "object" || input === null) {
      throw new TypeError(`Cannot use ${name}: expected { source, target }`);
    }
    const { source, target, uid, gid, mode } = input as Input;
    const isBytes = source instanceof Uint8Array || source instanceof ReadableStream;
    if (!isBytes && (typeof source !== "string" || source === "" || source.includes("\0"))) {
      throw new TypeError(
        `Cannot use ${name}.source ${JSON.stringify(source)}: expected a path, or tar bytes`,
      );
    }
    if (typeof target !== "string" || !target.startsWith("/") || target.includes("\0")) {
      throw new TypeError(
        `Cannot use ${name}.target ${JSON.stringify(target)}: expected an absolute path`,
      );
    }
    if (normalizePath(target) === "/" && !isBytes) {
      throw new TypeError(`Cannot use ${name}.target '${target}': a path source needs a name`);
    }
    if (target.split("/").includes("..")) {
      throw new TypeError(`Cannot use ${name}.target '${target}': '..' is not allowed`);
    }
    for (const [key, id] of [["uid", uid], ["gid", gid]] as const) {
      if (id !== undefined && !(Number.isInteger(id) && id >= 0 && id <= MAX_ID)) {
        throw new RangeError(`Cannot use ${name}.${key} ${id}: expected 0 to ${MAX_ID}`);
      }
    }
    if (mode !== undefined && !(Number.isInteger(mode) && mode >= 0 && mode <= 0o7777)) {
      throw new RangeError(
        `Cannot use ${name}.mode ${mode}: expected permission bits 0 to 0o7777 (e.g. 0o644)`,
      );
    }
    return { source, target: normalizePath(target), uid, gid, mode };
  });
}

/** Checks that every path source exists and is a file, directory or symlink. */
export async function checkInputSources(inputs: readonly Input[], field = "inputs"): Promise<void> {
  for (const [i, input] of inputs.entries()) {
    if (typeof input.source !== "string") continue;
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(input.source);
    } catch (err) {
      throw new TypeError(
        `Cannot use ${field}[${i}].source '${input.source}': ${errorMessage(err)}`,
        { cause: err },
      );
    }
    if (!info.isFile && !info.isDirectory && !info.isSymlink) {
      throw new TypeError(
        `Cannot use ${field}[${i}].source '${input.source}': not a file, directory or symlink`,
      );
    }
  }
}

/** Owner of inputs that give no uid/gid: the container's user. */
export interface InputOwner {
  /** User id. */
  uid: number;
  /** Group id. */
  gid: number;
}

/**
 * Packs the inputs as one tar stream (entries in order; a later input wins).
 * `tag` goes in a PAX global header (ignored when applied), so that the blob
 * of one container is never the blob of another.
 */
export async function* packInputs(
  inputs: readonly Input[],
  owner: InputOwner,
  tag?: string,
): AsyncGenerator<Uint8Array, void, undefined> {
  if (tag !== undefined) yield encodeTarGlobalHeader({ comment: tag });
  for (const [i, input] of inputs.entries()) {
    const own = { uid: input.uid ?? owner.uid, gid: input.gid ?? owner.gid };
    const field = `inputs[${i}].source`;
    if (typeof input.source === "string") {
      yield* packPath(input.source, input.target, own, input.mode, field);
    } else {
      yield* repackTar(input.source, input.target, own, input.mode, field);
    }
  }
  yield tarEnd();
}

async function* packPath(
  path: string,
  target: string,
  own: InputOwner,
  mode: number | undefined,
  field: string,
): AsyncGenerator<Uint8Array> {
  const info = await Deno.lstat(path);
  const base = { path: target, ...own, mtime: Math.floor((info.mtime?.getTime() ?? 0) / 1000) };
  if (info.isSymlink) {
    yield encodeTarHeader({
      ...base,
      type: "symlink",
      mode: 0o777,
      linkname: Deno.readLinkSync(path),
    });
  } else if (info.isDirectory) {
    yield encodeTarHeader({ ...base, type: "dir", mode: (info.mode ?? 0o755) & 0o7777 });
    const names: string[] = [];
    for await (const entry of Deno.readDir(path)) names.push(entry.name);
    for (const name of names.sort()) {
      yield* packPath(`${path}/${name}`, `${target}/${name}`, own, mode, field);
    }
  } else if (info.isFile) {
    yield* packFile(path, info, {
      ...base,
      type: "file",
      mode: mode ?? (info.mode ?? 0o644) & 0o7777,
    }, field);
  } else {
    throw new TypeError(`Cannot use ${field}: '${path}' is not a file, directory or symlink`);
  }
}

/** A file's header and bytes, read through one descriptor that is checked to be the file lstat saw. */
async function* packFile(
  path: string,
  seen: Deno.FileInfo,
  entry: TarWriteEntry,
  field: string,
): AsyncGenerator<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  const info = await file.stat();
  if (info.ino !== seen.ino || info.dev !== seen.dev || !info.isFile) {
    throw new Error(`Cannot use ${field}: '${path}' was replaced while it was packed`);
  }
  const size = info.size;
  yield encodeTarHeader({ ...entry, size });
  let left = size;
  while (left > 0) {
    const buf = new Uint8Array(Math.min(READ_CHUNK, left));
    const n = await file.read(buf);
    if (n === null) {
      throw new Error(`Cannot use ${field}: '${path}' shrank while it was packed`);
    }
    left -= n;
    yield buf.subarray(0, n);
  }
  yield tarPadding(size);
}

/** The entries of a tar stream, moved below `target` and given the owner (and file mode). */
async function* repackTar(
  source: Uint8Array | ReadableStream<Uint8Array>,
  target: string,
  own: InputOwner,
  mode: number | undefined,
  field: string,
): AsyncGenerator<Uint8Array> {
  const under = (path: string) => normalizePath(`${target}/${normalizePath(`/${path}`)}`);
  for await (const item of readTar(source instanceof Uint8Array ? [source] : source)) {
    const path = under(item.path);
    const base = { path, ...own, mtime: 0 };
    if (item.type === "dir") {
      if (path !== "/") yield encodeTarHeader({ ...base, type: "dir", mode: item.mode });
    } else if (item.type === "symlink") {
      yield encodeTarHeader({ ...base, type: "symlink", mode: 0o777, linkname: item.linkname });
    } else if (item.type === "hardlink") {
      yield encodeTarHeader({
        ...base,
        type: "hardlink",
        mode: item.mode,
        linkname: under(item.linkname),
      });
    } else if (item.type === "file" && !item.sparse) {
      yield encodeTarHeader({ ...base, type: "file", mode: mode ?? item.mode, size: item.size });
      yield* item.chunks();
      yield tarPadding(item.size);
    } else {
      throw new TypeError(
        `Cannot use ${field}: tar entry '${item.path}' is a ${
          item.sparse ? "sparse file" : item.type
        }` +
          " (only files, directories and links are copied)",
      );
    }
  }
}

/**
 * Packs the inputs and writes them to the content store through `leased` (a
 * client holding the container's lease; the blob is tagged with `tag`, the
 * container id, so no other container shares it).
 */
export async function writeInputs(
  leased: ContainerdClient,
  inputs: readonly Input[],
  owner: InputOwner,
  tag: string,
  signal?: AbortSignal,
): Promise<Descriptor> {
  const written = await writeContent(leased, packInputs(inputs, owner, tag), { signal });
  return {
    mediaType: INPUTS_MEDIA_TYPE,
    digest: written.digest,
    size: written.size,
    annotations: {},
  };
}

/** Applies the written inputs onto `mounts` (the container's active snapshot), then deletes the blob. */
export async function applyInputs(
  client: ContainerdClient,
  layer: Descriptor,
  mounts: Mount[],
  signal?: AbortSignal,
): Promise<void> {
  try {
    await client.diff.apply({ diff: layer, mounts }, { signal });
  } finally {
    await deleteBlob(client, layer.digest);
  }
}

/** Deletes a blob; one that is already gone is fine. */
export async function deleteBlob(client: ContainerdClient, digest: string): Promise<void> {
  try {
    await client.content.delete({ digest });
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}
