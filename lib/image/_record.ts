/**
 * The last steps of storing an image: its record, and the leases that
 * failed attempts kept.
 *
 * @module
 */

import type { ContainerdClient } from "../grpc/connection.ts";
import { isAlreadyExists } from "../grpc/errors.ts";
import { LABELS } from "../labels.ts";
import type { OciDescriptor } from "../oci/types.ts";

/**
 * Deletes the leases that failed earlier attempts to store the same image
 * kept (they hold resumable ingests until the image is complete).
 */
export async function dropStaleLeases(
  client: ContainerdClient,
  name: string,
  current: string,
): Promise<void> {
  const { leases } = await client.leases.list({});
  for (const lease of leases) {
    if (lease.id === current || lease.labels[LABELS.pull] !== name) continue;
    await client.leases.delete({ id: lease.id }).catch(() => {});
  }
}

/** Creates the image record, or points an existing one at the new target. */
export async function saveImageRecord(
  client: ContainerdClient,
  name: string,
  target: OciDescriptor,
  signal: AbortSignal | undefined,
): Promise<void> {
  const { mediaType, digest, size, annotations } = target;
  const image = { name, target: { mediaType, digest, size, annotations: annotations ?? {} } };
  try {
    await client.images.create({ image }, { signal });
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
    await client.images.update({ image, updateMask: { paths: ["target"] } }, { signal });
  }
}
