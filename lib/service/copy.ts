/**
 * `copyFromService`: copies a file or directory a running service created or
 * changed out of its container, through containerd's differ (remote-safe).
 *
 * @module
 */

import { withClient } from "../grpc/connection.ts";
import {
  checkCollectTargets,
  type Collected,
  collectFromSnapshot,
  validateCollect,
} from "../runtime/collect.ts";
import { withLease } from "../content/lease.ts";
import type { ServiceClientOptions } from "./manage.ts";

/**
 * Copies `path` out of a service's container to `to` on this side: what the
 * service created or changed there since it started from its image (files
 * the image had and the service left alone are not in the copy). Works while
 * the service runs; `to` must not exist yet.
 *
 * @returns What was copied (`found: false` when the service changed nothing at `path`).
 * @throws {ContainerdError} NOT_FOUND when there is no such service.
 * @throws {TypeError} When `path` is not absolute or `to` exists.
 *
 * @example
 * ```ts
 * import { copyFromService } from "@wfe/containerd";
 *
 * const copied = await copyFromService(undefined, "svc-db", "/var/log/db", "./db-logs");
 * console.log(copied.files);
 * ```
 */
export async function copyFromService(
  addr: string | undefined,
  containerId: string,
  path: string,
  to: string,
  options: ServiceClientOptions = {},
): Promise<Collected> {
  const specs = validateCollect([{ path, to }], "copy");
  await checkCollectTargets(specs, "copy");
  return await withClient(addr, options, async (client) => {
    const { container } = await client.containers.get({ id: containerId });
    const snapshotter = container!.snapshotter;
    const key = container!.snapshotKey;
    const { info } = await client.snapshots.stat({ snapshotter, key });
    // A lease of its own holds the diff blob and the view (the service's may have expired).
    const [collected] = await withLease(
      client,
      (leased, leaseId) =>
        collectFromSnapshot(leased, { snapshotter, key, parent: info!.parent }, specs, leaseId),
      { expireAfterMs: 3600_000 },
    );
    return collected;
  });
}
