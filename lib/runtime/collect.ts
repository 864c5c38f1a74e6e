/**
 * Collecting files out of a container, remote-safe: containerd's differ
 * writes what the container changed (its snapshot against the image) as a
 * tar layer in the content store; this side reads it and extracts only the
 * requested paths, never outside their destinations.
 *
 * @module
 */

import { errorMessage } from "../_util/errors.ts";
import { basename, isUnder, normalizePath } from "../archive/_paths.ts";
import { readTar } from "../archive/tar.ts";
import { readContent } from "../content/read.ts";
import type { ContainerdClient } from "../grpc/connection.ts";
import { deleteBlob, INPUTS_MEDIA_TYPE } from "./inputs.ts";

/** A path to copy out of the container and where it goes on this side. */
export interface CollectSpec {
  /** Absolute path in the container (a file or directory). */
  path: string;
  /** Path on this side that becomes the copy; it must not exist yet, its parent must. */
  to: string;
}

/** What one {@linkcode CollectSpec} copied. */
export interface Collected {
  /** The path in the container. */
  path: string;
  /** Where it was copied. */
  to: string;
  /** False when the container did not create or change anything at `path`. */
  found: boolean;
  /** The files and links written, as paths on this side. */
  files: string[];
}

/**
 * Checks the shape of `collect`.
 *
 * @throws {TypeError} Naming the field and value.
 */
export function validateCollect(value: unknown, field = "collect"): CollectSpec[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    throw new TypeError(`Cannot use ${field}: expected an array, got ${typeof value}`);
  }
  const seen = new Set<string>();
  return value.map((item, i) => {
    const name = `${field}[${i}]`;
    const { path, to } = (item ?? {}) as CollectSpec;
    if (typeof path !== "string" || !path.startsWith("/") || path.includes("\0")) {
      throw new TypeError(
        `Cannot use ${name}.path ${JSON.stringify(path)}: expected an absolute path`,
      );
    }
    if (normalizePath(path) === "/") {
      throw new TypeError(`Cannot use ${name}.path '${path}': collect a directory below /`);
    }
    if (typeof to !== "string" || to === "" || to.includes("\0")) {
      throw new TypeError(`Cannot use ${name}.to ${JSON.stringify(to)}: expected a path`);
    }
    if (seen.has(to)) throw new TypeError(`Cannot use ${name}.to '${to}': given twice`);
    seen.add(to);
    return { path: normalizePath(path), to };
  });
}

/** Checks that no destination exists yet and that each one's directory does. */
export async function checkCollectTargets(
  specs: readonly CollectSpec[],
  field = "collect",
): Promise<void> {
  for (const [i, spec] of specs.entries()) {
    try {
      await Deno.lstat(spec.to);
      throw new TypeError(`Cannot use ${field}[${i}].to '${spec.to}': it already exists`);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    const parent = localParent(spec.to);
    const info = await Deno.stat(parent).catch(() => undefined);
    if (!info?.isDirectory) {
      throw new TypeError(`Cannot use ${field}[${i}].to '${spec.to}': no directory '${parent}'`);
    }
  }
}

/** Where a snapshot is, to diff it against its parent. */
export interface SnapshotRef {
  /** Snapshotter. */
  snapshotter: string;
  /** The container's (active) snapshot key. */
  key: string;
  /** Its parent: the image's chain ID. */
  parent: string;
}

/**
 * Copies the requested paths out of a snapshot: Diff.Diff of the snapshot
 * against a view of its parent writes what changed as a tar blob (through
 * `leased`, a client holding a lease); the blob is read, the requested paths
 * extracted (links kept as links, nothing written through a link), and the
 * blob and view removed. Works on a running container's snapshot too.
 *
 * @returns One entry per spec, in order.
 */
export async function collectFromSnapshot(
  leased: ContainerdClient,
  snapshot: SnapshotRef,
  specs: readonly CollectSpec[],
  tag: string,
): Promise<Collected[]> {
  const { snapshotter, key } = snapshot;
  const viewKey = `${tag}-collect-view`;
  const { mounts: left } = await leased.snapshots.view({
    snapshotter,
    key: viewKey,
    parent: snapshot.parent,
  });
  try {
    const { mounts: right } = await leased.snapshots.mounts({ snapshotter, key });
    const { diff } = await leased.diff.diff({
      left,
      right,
      mediaType: INPUTS_MEDIA_TYPE,
      ref: `${tag}-collect`,
    });
    try {
      return await extract(readContent(leased, diff!.digest), specs);
    } finally {
      await deleteBlob(leased, diff!.digest);
    }
  } finally {
    await leased.snapshots.remove({ snapshotter, key: viewKey }).catch(() => {});
  }
}

function localParent(path: string): string {
  const i = path.replace(/\/+$/, "").lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

/** Extracts the requested paths of a layer tar into private staging dirs, then moves them in place. */
async function extract(
  tar: AsyncIterable<Uint8Array>,
  specs: readonly CollectSpec[],
): Promise<Collected[]> {
  const staging = await Promise.all(
    specs.map((s) => Deno.makeTempDir({ dir: localParent(s.to), prefix: ".wfe-collect-" })),
  );
  try {
    const results: Collected[] = specs.map((s) => ({ ...s, found: false, files: [] }));
    const links = new Set<string>(); // links written, as local paths: never written through
    const written = new Map<string, string>(); // container path -> local path (for hard links)
    for await (const item of readTar(tar)) {
      const path = normalizePath(`/${item.path}`);
      const name = basename(path);
      if (name.startsWith(".wh.")) continue; // deletions and opaque markers
      let firstCopy: string | undefined;
      for (const [i, spec] of specs.entries()) {
        if (path !== spec.path && !isUnder(path, spec.path)) continue;
        const local = `${staging[i]}/copy${path.slice(spec.path.length)}`;
        if ([...links].some((l) => local === l || local.startsWith(`${l}/`))) continue;
        const parent = localParent(local);
        if (parent !== staging[i]) await Deno.mkdir(parent, { recursive: true, mode: 0o700 });
        results[i].found = true;
        if (item.type === "dir") {
          await Deno.mkdir(local, { recursive: true });
          await Deno.chmod(local, (item.mode & 0o777) | 0o700);
        } else if (item.type === "file") {
          // The data can be read once: a second spec that holds the file copies the first copy.
          if (firstCopy) await Deno.copyFile(firstCopy, local);
          else await writeStream(local, item.chunks(), item.mode & 0o777);
          firstCopy = local;
          await Deno.chmod(local, item.mode & 0o777); // the umask is not ours to apply
          written.set(path, local);
          results[i].files.push(spec.to + local.slice(`${staging[i]}/copy`.length));
        } else if (item.type === "symlink") {
          await Deno.symlink(item.linkname, local);
          links.add(local);
          results[i].files.push(spec.to + local.slice(`${staging[i]}/copy`.length));
        } else if (item.type === "hardlink") {
          const target = written.get(normalizePath(`/${item.linkname}`));
          if (target) {
            await Deno.link(target, local);
            results[i].files.push(spec.to + local.slice(`${staging[i]}/copy`.length));
          }
        }
      }
    }
    for (const [i, result] of results.entries()) {
      if (!result.found) continue;
      try {
        await Deno.rename(`${staging[i]}/copy`, result.to);
      } catch (err) {
        throw new Error(`Cannot collect '${result.path}' to '${result.to}': ${errorMessage(err)}`, {
          cause: err,
        });
      }
    }
    return results;
  } finally {
    for (const dir of staging) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Writes a new file (never an existing one) from chunks. */
async function writeStream(
  path: string,
  chunks: AsyncIterable<Uint8Array>,
  mode: number,
): Promise<void> {
  using file = await Deno.open(path, { write: true, createNew: true, mode });
  for await (const chunk of chunks) {
    for (let at = 0; at < chunk.length;) at += await file.write(chunk.subarray(at));
  }
}
