/**
 * Expiring leases: everything created under a lease stays alive until the
 * lease is deleted; if the process dies, containerd's garbage collector
 * removes the lease when it expires.
 *
 * @module
 */

import type { ContainerdClient } from "../grpc/connection.ts";
import { isNotFound } from "../grpc/errors.ts";
import { LEASE_EXPIRE_LABEL } from "../labels.ts";

/** Options of {@linkcode withLease}. */
export interface LeaseOptions {
  /**
   * Lease id.
   * @default {"wfe-<random>"}
   */
  id?: string;
  /**
   * Expire the lease after this many milliseconds, in case the process dies first.
   * @default {86400000} (24 h, as containerd's Go client)
   */
  expireAfterMs?: number;
  /** More labels for the lease. */
  labels?: Record<string, string>;
  /**
   * Delete synchronously, running the garbage collector before returning.
   * @default {false}
   */
  syncDelete?: boolean;
  /**
   * Keep the lease when `fn` throws (it still expires), so that what was
   * written, ingests included, survives garbage collection until a retry.
   * @default {false}
   */
  keepOnError?: boolean;
}

/**
 * Creates an expiring lease, runs `fn` with a client view that attaches
 * everything it creates to the lease, and deletes the lease afterwards, also
 * when `fn` throws.
 *
 * @param client A connected client.
 * @param fn The work to do under the lease.
 * @param options Lease id, expiry, labels.
 * @returns What `fn` returns.
 *
 * @example
 * ```ts
 * import { connect, withLease, writeContent } from "@wfe/containerd/api";
 *
 * await using client = await connect();
 * await withLease(client, async (leased) => {
 *   await writeContent(leased, new TextEncoder().encode("kept until the lease ends"));
 * });
 * ```
 */
export async function withLease<T>(
  client: ContainerdClient,
  fn: (leased: ContainerdClient, leaseId: string) => Promise<T>,
  options: LeaseOptions = {},
): Promise<T> {
  const expireAfterMs = options.expireAfterMs ?? 24 * 60 * 60 * 1000;
  if (!(expireAfterMs > 0)) {
    throw new RangeError(`Cannot use expireAfterMs ${expireAfterMs}: expected a positive number`);
  }
  const id = options.id ?? `wfe-${crypto.randomUUID()}`;
  const labels = {
    ...options.labels,
    [LEASE_EXPIRE_LABEL]: new Date(Date.now() + expireAfterMs).toISOString(),
  };
  await client.leases.create({ id, labels });
  const release = async (): Promise<void> => {
    try {
      await client.leases.delete({ id, sync: options.syncDelete ?? false });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  };
  let result: T;
  try {
    result = await fn(client.withLease(id), id);
  } catch (err) {
    // The work's error matters more; an undeleted lease still expires.
    if (!options.keepOnError) await release().catch(() => {});
    throw err;
  }
  await release();
  return result;
}
