/**
 * Unpacking image layers into a snapshotter, one layer at a time, as
 * containerd's own unpacker does: the committed snapshot of each layer is
 * named by the chain ID of the layers up to it, so images that share lower
 * layers share their snapshots.
 *
 * @module
 */

import { retry } from "../_util/async.ts";
import type { ContainerdClient } from "../grpc/connection.ts";
import { ContainerdError, found, GrpcCode, isAlreadyExists } from "../grpc/errors.ts";
import { GC_REF_SNAPSHOT_PREFIX, SNAPSHOT_REF_LABEL, UNCOMPRESSED_LABEL } from "../labels.ts";
import type { OciDescriptor } from "../oci/types.ts";

/** One layer to unpack on top of `parent`. */
export interface UnpackLayer {
  /** The layer blob (already in the content store). */
  layer: OciDescriptor;
  /** Its diff ID: the digest of the uncompressed tar, from the image config. */
  diffId: string;
  /** The chain ID of the layers below, `""` for the bottom layer. */
  parent: string;
  /** The chain ID up to and including this layer: the snapshot to commit. */
  chainId: string;
}

/** Options of {@linkcode unpackLayer}. */
export interface UnpackLayerOptions {
  /** The snapshotter, e.g. `overlayfs`. */
  snapshotter: string;
  /** Cancels the calls. */
  signal?: AbortSignal;
  /** A lease to add an existing snapshot to, so it cannot be collected while in use. */
  leaseId?: string;
}

/** A key for an extraction snapshot, unique enough to never collide (containerd's format). */
function extractKey(chainId: string): string {
  const random = crypto.getRandomValues(new Uint8Array(3));
  const part = btoa(String.fromCharCode(...random)).replaceAll("+", "-").replaceAll("/", "_");
  return `extract-${Date.now()}-${part} ${chainId}`;
}

async function snapshotExists(
  client: ContainerdClient,
  snapshotter: string,
  key: string,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  return await found(() => client.snapshots.stat({ snapshotter, key }, { signal }));
}

/**
 * Unpacks one layer: nothing when the chain ID's snapshot exists; else
 * Prepare an extraction snapshot on the parent (labelled
 * `containerd.io/snapshot.ref`), Diff.Apply the layer blob onto it, check
 * the applied digest equals the diff ID, Commit it as the chain ID, and
 * label the layer blob `containerd.io/uncompressed`. The extraction
 * snapshot is removed when anything fails.
 *
 * @param client A connected client; give it a lease so the snapshots are
 *   held until an image (or something else) references them.
 * @param step The layer, its diff ID, parent and chain ID.
 * @param options The snapshotter and a signal.
 * @returns `"exists"` when the snapshot was there already, else `"unpacked"`.
 * @throws {ContainerdError} DATA_LOSS (15) when the layer's content does not
 *   match its diff ID; other codes from the server.
 */
export async function unpackLayer(
  client: ContainerdClient,
  step: UnpackLayer,
  options: UnpackLayerOptions,
): Promise<"exists" | "unpacked"> {
  const { snapshotter, signal, leaseId } = options;
  const { layer, diffId, parent, chainId } = step;
  if (leaseId) {
    await client.leases.addResource({
      id: leaseId,
      resource: { id: chainId, type: `snapshots/${snapshotter}` },
    }, { signal });
  }
  if (await snapshotExists(client, snapshotter, chainId, signal)) return "exists";
  const labels = { [SNAPSHOT_REF_LABEL]: chainId };
  let key = "";
  let mounts;
  try {
    mounts = await retry(async () => {
      key = extractKey(chainId);
      return (await client.snapshots.prepare({ snapshotter, key, parent, labels }, { signal }))
        .mounts;
    }, { attempts: 3, minDelayMs: 10, retryable: isAlreadyExists, signal });
  } catch (err) {
    if (isAlreadyExists(err) && await snapshotExists(client, snapshotter, chainId, signal)) {
      return "exists";
    }
    throw err;
  }
  try {
    const { applied } = await client.diff.apply({ diff: layer, mounts }, { signal });
    if (applied?.digest !== diffId) {
      throw new ContainerdError({
        code: GrpcCode.DATA_LOSS,
        method: "Diff.Apply",
        details: `layer ${layer.digest} unpacks to ${applied?.digest}, but the image config ` +
          `says its diff ID is ${diffId}`,
      });
    }
    try {
      await client.snapshots.commit({ snapshotter, name: chainId, key }, { signal });
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      await removeQuietly(client, snapshotter, key); // another unpack committed it first
      return "exists";
    }
  } catch (err) {
    await removeQuietly(client, snapshotter, key);
    throw err;
  }
  await client.content.update({
    info: { digest: layer.digest, labels: { [UNCOMPRESSED_LABEL]: diffId } },
    updateMask: { paths: [`labels.${UNCOMPRESSED_LABEL}`] },
  }, { signal });
  return "unpacked";
}

/**
 * Labels an image config with the top snapshot of its unpacked layers
 * (`containerd.io/gc.ref.snapshot.<snapshotter>`), so the garbage collector
 * keeps the snapshot chain as long as the image keeps the config.
 */
export async function labelUnpacked(
  client: ContainerdClient,
  configDigest: string,
  snapshotter: string,
  chainId: string,
  signal?: AbortSignal,
): Promise<void> {
  if (chainId === "") return; // no tar layers: nothing unpacked
  const key = `${GC_REF_SNAPSHOT_PREFIX}${snapshotter}`;
  await client.content.update({
    info: { digest: configDigest, labels: { [key]: chainId } },
    updateMask: { paths: [`labels.${key}`] },
  }, { signal });
}

async function removeQuietly(
  client: ContainerdClient,
  snapshotter: string,
  key: string,
): Promise<void> {
  // Without the caller's signal: the cleanup must run even after an abort.
  await client.snapshots.remove({ snapshotter, key }).catch(() => {});
}
