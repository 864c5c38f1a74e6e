/**
 * Chain IDs: the names under which containerd (and every OCI runtime) stores
 * the snapshot of an image's layers applied one on top of the other.
 *
 * The rule, from the OCI image spec: the chain ID of one layer is its diff ID;
 * the chain ID of layers 0..n is `"sha256:" + hex(sha256(chainID(0..n-1) + " " +
 * diffID(n)))`.
 *
 * @module
 */

import { assertDigest, toHex } from "../content/digest.ts";

const encoder = new TextEncoder();

function checkDiffIds(diffIds: readonly string[]): void {
  if (diffIds.length === 0) {
    throw new TypeError("Cannot compute a chain ID of no layers: expected at least one diff ID");
  }
  diffIds.forEach((diffId, i) => assertDigest(diffId, `diffIds[${i}]`));
}

async function next(parent: string, diffId: string): Promise<string> {
  const bytes = encoder.encode(`${parent} ${diffId}`);
  const hash = await crypto.subtle.digest("SHA-256", bytes);
  return `sha256:${toHex(new Uint8Array(hash))}`;
}

/**
 * Computes the chain ID of a stack of layers: the name of the committed
 * snapshot that holds all of them, and the parent of a container's rootfs.
 *
 * @param diffIds The layers' diff IDs (sha256 of each uncompressed layer tar,
 *   the image config's `rootfs.diff_ids`), bottom layer first.
 * @returns The chain ID, `sha256:<hex>`; for one layer, its diff ID.
 * @throws {TypeError} When `diffIds` is empty or an entry is not a
 *   `sha256:<64 hex>` digest (the message names the index).
 *
 * @example
 * ```ts
 * import { chainId } from "@wfe/containerd/api";
 *
 * const top = await chainId([
 *   "sha256:a5b6c7d8e9f0a5b6c7d8e9f0a5b6c7d8e9f0a5b6c7d8e9f0a5b6c7d8e9f0a5b6",
 *   "sha256:0f1e2d3c4b5a0f1e2d3c4b5a0f1e2d3c4b5a0f1e2d3c4b5a0f1e2d3c4b5a0f1e",
 * ]);
 * console.log(top); // the snapshot to use as the parent of a container's rootfs
 * ```
 */
export async function chainId(diffIds: readonly string[]): Promise<string> {
  checkDiffIds(diffIds);
  let id = diffIds[0];
  for (let i = 1; i < diffIds.length; i++) id = await next(id, diffIds[i]);
  return id;
}

/**
 * Computes the chain ID of every prefix of a stack of layers: entry `i` names
 * the snapshot of layers 0..i. Unpacking an image walks this list: layer `i`
 * is applied on top of snapshot `i - 1` and committed as snapshot `i`.
 *
 * @param diffIds The layers' diff IDs, bottom layer first.
 * @returns One chain ID per layer, bottom first; the last is
 *   {@linkcode chainId}`(diffIds)`.
 * @throws {TypeError} When `diffIds` is empty or an entry is not a
 *   `sha256:<64 hex>` digest (the message names the index).
 *
 * @example
 * ```ts
 * import { chainIds } from "@wfe/containerd/api";
 *
 * const ids = await chainIds([
 *   "sha256:a5b6c7d8e9f0a5b6c7d8e9f0a5b6c7d8e9f0a5b6c7d8e9f0a5b6c7d8e9f0a5b6",
 *   "sha256:0f1e2d3c4b5a0f1e2d3c4b5a0f1e2d3c4b5a0f1e2d3c4b5a0f1e2d3c4b5a0f1e",
 * ]);
 * console.log(ids.length); // 2: the first is the first diff ID
 * ```
 */
export async function chainIds(diffIds: readonly string[]): Promise<string[]> {
  checkDiffIds(diffIds);
  const ids = [diffIds[0]];
  for (let i = 1; i < diffIds.length; i++) ids.push(await next(ids[i - 1], diffIds[i]));
  return ids;
}
