/**
 * An image's `/etc/passwd` and `/etc/group` for user lookups, read once per
 * image and daemon rather than once per step:
 *
 * - concurrent lookups of one image share one read (single flight);
 * - the result is kept in this process (by namespace and config digest);
 * - and in containerd's content store, for other processes and clients of a
 *   remote daemon: a small JSON blob, referenced from the image config's
 *   content labels by {@linkcode USER_FILES_LABEL}, a garbage-collection
 *   reference, so it lives exactly as long as the config does.
 *
 * Only the first lookup of an image on a daemon reads layers, from the top
 * layer down (see `readFilesTopDown`).
 *
 * @module
 */

import { LruCache } from "../_util/cache.ts";
import { withLease } from "../content/lease.ts";
import { readAllContent } from "../content/read.ts";
import { writeContent } from "../content/write.ts";
import type { ContainerdClient } from "../grpc/connection.ts";
import type { UserFiles } from "../runtime/user.ts";
import { readImagePasswdGroup } from "./files.ts";
import { readLocalPasswdGroup } from "./local_snapshot.ts";
import type { ResolvedManifest } from "./manifest.ts";

/**
 * The config blob's label that names the blob holding the image's user files
 * (`{"passwd": "...", "group": "..."}`); a `containerd.io/gc.ref.content.`
 * label, so containerd's garbage collector keeps that blob with the config.
 */
export const USER_FILES_LABEL = "containerd.io/gc.ref.content.wfe.users";

/** The largest user-files blob read back (both files are capped at 1 MiB each). */
const MAX_BLOB_BYTES = 3 * 1024 * 1024;

const memo = new LruCache<string, UserFiles>({
  maxEntries: 64,
  maxBytes: 8 * 1024 * 1024,
  maxEntryBytes: MAX_BLOB_BYTES,
  sizeOf: (f) => (f.passwd?.length ?? 0) + (f.group?.length ?? 0),
});
const inflight = new Map<string, Promise<UserFiles>>();

/** What {@linkcode imageUserFiles} needs of an image. */
export type UserFilesImage =
  & Pick<
    ResolvedManifest,
    "manifestDigest" | "configDigest" | "layers"
  >
  & { name?: string; chainId?: string };

/** Options of {@linkcode imageUserFiles}. */
export interface ImageUserFilesOptions {
  /** Cancels the reads. */
  signal?: AbortSignal;
  /**
   * The snapshotter the image is unpacked in: with a daemon on this machine,
   * the files are read from the snapshot directories (no layer is read).
   */
  snapshotter?: string;
}

/**
 * Returns an image's `/etc/passwd` and `/etc/group` texts (a file the image
 * lacks is absent): from this process's memory, else from the blob recorded
 * on the image config, else from the unpacked snapshot (a daemon on this
 * machine, `snapshotter` given), else from the layers (then recorded, best effort).
 *
 * @param client A connected client (its namespace holds the image).
 * @param image The image's manifest and config digests and layers.
 * @param options Cancels the reads; the snapshotter for a local read.
 * @returns The two files' texts.
 * @throws As `readImagePasswdGroup` when the layers must be read.
 *
 * @example
 * ```ts
 * import { connect, imageUserFiles, resolveImage, resolveUser } from "@wfe/containerd/api";
 *
 * await using client = await connect();
 * const image = await resolveImage(client, "wfe.test/busybox:one-layer");
 * const files = await imageUserFiles(client, image);
 * console.log(resolveUser("nobody", files, image.name).uid); // 65534
 * ```
 */
export function imageUserFiles(
  client: ContainerdClient,
  image: UserFilesImage,
  options: ImageUserFilesOptions = {},
): Promise<UserFiles> {
  const key = `${client.address.target}\0${client.namespace}\0${image.configDigest}`;
  const known = memo.get(key);
  if (known) return Promise.resolve(known.value);
  let pending = inflight.get(key);
  if (!pending) {
    pending = load(client, image, options).then((files) => {
      memo.set(key, files);
      return files;
    }).finally(() => inflight.delete(key));
    inflight.set(key, pending);
  }
  return pending;
}

async function load(
  client: ContainerdClient,
  image: UserFilesImage,
  options: ImageUserFilesOptions,
): Promise<UserFiles> {
  const { signal, snapshotter } = options;
  const recorded = await readRecorded(client, image.configDigest, signal);
  if (recorded) return recorded;
  const local = snapshotter && image.chainId
    ? await readLocalPasswdGroup(client, snapshotter, image.chainId, signal)
    : undefined;
  const files = local ?? await readImagePasswdGroup(client, image, { signal });
  await record(client, image.configDigest, files).catch(() => {});
  return files;
}

/** The files recorded on the config, or `undefined` when there are none (or they are unusable). */
async function readRecorded(
  client: ContainerdClient,
  configDigest: string,
  signal: AbortSignal | undefined,
): Promise<UserFiles | undefined> {
  try {
    const { info } = await client.content.info({ digest: configDigest }, { signal });
    const blob = info?.labels[USER_FILES_LABEL];
    if (!blob) return undefined;
    const bytes = await readAllContent(client, blob, { maxBytes: MAX_BLOB_BYTES, signal });
    const parsed = JSON.parse(new TextDecoder().decode(bytes));
    const files: UserFiles = {};
    for (const name of ["passwd", "group"] as const) {
      const text = parsed?.[name];
      if (text === undefined) continue;
      if (typeof text !== "string") return undefined;
      files[name] = text;
    }
    return files;
  } catch {
    signal?.throwIfAborted();
    return undefined;
  }
}

/** Writes the files as a blob and labels the config with its digest. */
async function record(
  client: ContainerdClient,
  configDigest: string,
  files: UserFiles,
): Promise<void> {
  const bytes = new TextEncoder().encode(JSON.stringify(files));
  // The lease holds the new blob until the label on the config does.
  await withLease(client, async (leased) => {
    const { digest } = await writeContent(leased, bytes);
    await leased.content.update({
      info: { digest: configDigest, labels: { [USER_FILES_LABEL]: digest } },
      updateMask: { paths: [`labels.${USER_FILES_LABEL}`] },
    });
  }, { expireAfterMs: 10 * 60_000 });
}
