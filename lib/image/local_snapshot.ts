/**
 * Reading a few files of an unpacked image straight from the snapshot
 * directories, for a daemon on this machine: a read-only view of the image's
 * top snapshot gives its layer directories (overlay `lowerdir`s, top first,
 * or one bind source), and the files are looked up the way overlayfs would
 * show them. Anything this cannot decide without extended attributes (an
 * upper `/etc` that lacks the file: opaque or not) returns `undefined`, and
 * the caller reads the layers from the content store instead.
 *
 * @module
 */

import { withLease } from "../content/lease.ts";
import type { ContainerdClient } from "../grpc/connection.ts";
import type { Mount } from "../../proto/gen/types.ts";

/** The largest file read (as the layer reader's default). */
const MAX_FILE_BYTES = 1024 * 1024;

/** The layer directories of a read-only view, top first, or undefined for other mount types. */
export function layerDirs(mounts: readonly Mount[]): string[] | undefined {
  if (mounts.length !== 1) return undefined;
  const [m] = mounts;
  if (m.type === "bind" && m.source.startsWith("/")) return [m.source];
  if (m.type !== "overlay") return undefined;
  if (m.options.some((o) => o.startsWith("upperdir="))) return undefined; // not a view
  const lower = m.options.find((o) => o.startsWith("lowerdir="));
  const dirs = lower?.slice("lowerdir=".length).split(":");
  return dirs && dirs.every((d) => d.startsWith("/")) ? dirs : undefined;
}

type Lookup = { found: Uint8Array } | { absent: true } | { undecided: true };

/** An overlay whiteout: a character device 0:0. */
function isWhiteout(info: Deno.FileInfo): boolean {
  return info.isCharDevice === true && (info.rdev ?? 0) === 0;
}

async function lstatOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/** Looks `etc/<name>` up through the layer directories, top first. */
async function lookup(dirs: readonly string[], name: string): Promise<Lookup> {
  for (const dir of dirs) {
    const etc = await lstatOrNull(`${dir}/etc`);
    if (etc === null) continue;
    if (isWhiteout(etc)) return { absent: true };
    if (!etc.isDirectory) return { undecided: true }; // a link or a file: leave it to the layers
    const file = await lstatOrNull(`${dir}/etc/${name}`);
    if (file === null) return { undecided: true }; // /etc may be opaque here: unknown
    if (isWhiteout(file)) return { absent: true };
    if (!file.isFile || file.size > MAX_FILE_BYTES) return { undecided: true };
    using handle = await Deno.open(`${dir}/etc/${name}`, { read: true });
    const opened = await handle.stat();
    if (opened.ino !== file.ino || opened.dev !== file.dev || !opened.isFile) {
      return { undecided: true };
    }
    const buf = new Uint8Array(opened.size);
    let at = 0;
    while (at < buf.length) {
      const n = await handle.read(buf.subarray(at));
      if (n === null) break;
      at += n;
    }
    return { found: buf.subarray(0, at) };
  }
  return { absent: true };
}

/**
 * `/etc/passwd` and `/etc/group` of the unpacked image whose top snapshot is
 * `chainId`, read from the snapshot directories of a daemon on this machine,
 * or `undefined` when that is not possible (remote daemon, another mount
 * type, no permission, or a case only the layers can decide).
 */
export async function readLocalPasswdGroup(
  client: ContainerdClient,
  snapshotter: string,
  chainId: string,
  signal?: AbortSignal,
): Promise<{ passwd?: string; group?: string } | undefined> {
  if (client.address.transport !== "unix" || chainId === "") return undefined;
  try {
    return await withLease(client, async (leased, leaseId) => {
      const key = `${leaseId}-users-view`;
      const { mounts } = await leased.snapshots.view(
        { snapshotter, key, parent: chainId },
        { signal },
      );
      try {
        const dirs = layerDirs(mounts);
        if (!dirs) return undefined;
        const out: { passwd?: string; group?: string } = {};
        for (const name of ["passwd", "group"] as const) {
          const found = await lookup(dirs, name);
          if ("undecided" in found) return undefined;
          if ("found" in found) out[name] = new TextDecoder().decode(found.found);
        }
        return out;
      } finally {
        await leased.snapshots.remove({ snapshotter, key }).catch(() => {});
      }
    }, { expireAfterMs: 60_000, syncDelete: false });
  } catch {
    signal?.throwIfAborted();
    return undefined; // e.g. no permission on containerd's root: read the layers
  }
}
