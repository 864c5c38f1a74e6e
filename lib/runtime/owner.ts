/**
 * Which daemon a capture directory belongs to: its server UUID (from
 * Introspection.Server) and namespace, written to `<capture dir>/owner` so
 * that `prune` on another daemon sharing the IO dir leaves it alone.
 *
 * @module
 */

import type { ContainerdClient } from "../grpc/connection.ts";

/** The file in a capture directory naming its daemon and namespace. */
export const OWNER_FILE = "owner";

/** What {@linkcode OWNER_FILE} holds. */
export interface CaptureOwner {
  /** The daemon's server UUID. */
  daemon: string;
  /** The containerd namespace. */
  namespace: string;
}

const uuids = new Map<string, Promise<string>>();

/**
 * The daemon's server UUID, asked once per address.
 *
 * @returns The UUID, `""` when the daemon does not say (then ownership is unknown).
 */
export function daemonUuid(client: ContainerdClient): Promise<string> {
  const key = client.address.target;
  let uuid = uuids.get(key);
  if (!uuid) {
    uuid = client.introspection.server({}).then((r) => r.uuid, () => "");
    uuids.set(key, uuid);
    uuid.then((u) => {
      if (u === "") uuids.delete(key); // ask again next time
    });
  }
  return uuid;
}

/** Reads a capture directory's owner; `undefined` when it has none (or it cannot be read). */
export async function readOwner(dir: string): Promise<CaptureOwner | undefined> {
  try {
    const owner = JSON.parse(await Deno.readTextFile(`${dir}/${OWNER_FILE}`));
    return typeof owner?.daemon === "string" && typeof owner.namespace === "string"
      ? { daemon: owner.daemon, namespace: owner.namespace }
      : undefined;
  } catch {
    return undefined;
  }
}
