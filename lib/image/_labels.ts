/**
 * The content labels an image's blobs carry in containerd, written as its
 * own pull writes them: child references for the garbage collector and the
 * distribution source.
 *
 * @module
 */

import type { ContainerdClient } from "../grpc/connection.ts";
import { found } from "../grpc/errors.ts";
import { DISTRIBUTION_SOURCE_PREFIX, GC_REF_CONTENT_PREFIX } from "../labels.ts";
import { parseIndex, parseManifest } from "../oci/documents.ts";
import { mediaTypeKind } from "../oci/media_types.ts";
import type { OciDescriptor } from "../oci/types.ts";

/** The ingest ref of a blob, as containerd's pull names them (`layer-sha256:...`). */
export function ingestRef(desc: OciDescriptor): string {
  const kind = mediaTypeKind(desc.mediaType);
  return `${kind ?? "unknown"}-${desc.digest}`;
}

/** containerd's child labels: `.config`, `.m.<i>`, `.l.<i>`, else `.<i>`. */
export function childLabels(children: readonly OciDescriptor[]): Record<string, string> {
  const counts = new Map<string, number>();
  const labels: Record<string, string> = {};
  for (const child of children) {
    const kind = mediaTypeKind(child.mediaType);
    const base = kind === "config"
      ? "config"
      : kind === "manifest"
      ? "m."
      : kind === "layer"
      ? "l."
      : "";
    const index = counts.get(base) ?? 0;
    counts.set(base, index + 1);
    const suffix = index > 0 || base === "" || base.endsWith(".") ? `${base}${index}` : base;
    labels[`${GC_REF_CONTENT_PREFIX}${suffix}`] = child.digest;
  }
  return labels;
}

/** The children whose labels a document carries. */
export function documentChildren(desc: OciDescriptor, bytes: Uint8Array): OciDescriptor[] {
  const kind = mediaTypeKind(desc.mediaType);
  if (kind === "index") return parseIndex(bytes, desc.digest).manifests;
  if (kind === "manifest") {
    const manifest = parseManifest(bytes, desc.digest);
    return [manifest.config, ...manifest.layers];
  }
  return [];
}

/** Adds a repository to a comma-separated, sorted distribution-source label value. */
export function withRepository(current: string | undefined, repository: string): string {
  const repos = new Set((current ?? "").split(",").filter((r) => r !== ""));
  repos.add(repository);
  return [...repos].sort().join(",");
}

/** Sets labels on an existing blob, leaving the others; nothing when they are already set. */
export async function ensureLabels(
  client: ContainerdClient,
  digest: string,
  labels: Record<string, string>,
  source: { host: string; repository: string } | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  const { info } = await client.content.info({ digest }, { signal });
  const current = info?.labels ?? {};
  const want = { ...labels };
  if (source) {
    const key = `${DISTRIBUTION_SOURCE_PREFIX}${source.host}`;
    want[key] = withRepository(current[key], source.repository);
  }
  const changed = Object.keys(want).filter((k) => current[k] !== want[k]);
  if (changed.length === 0) return;
  await client.content.update({
    info: { digest, labels: want },
    updateMask: { paths: changed.map((k) => `labels.${k}`) },
  }, { signal });
}

export async function blobExists(
  client: ContainerdClient,
  digest: string,
  signal: AbortSignal | undefined,
  leaseId?: string,
): Promise<boolean> {
  // Held by the lease first: a blob that only exists could otherwise be
  // collected (its last image deleted) between this check and its use.
  if (leaseId) await holdResource(client, leaseId, digest, "content", signal);
  return await found(() => client.content.info({ digest }, { signal }));
}

/** Adds a blob (`content`) or snapshot (`snapshots/<snapshotter>`) to a lease. */
export async function holdResource(
  client: ContainerdClient,
  leaseId: string,
  id: string,
  type: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  await client.leases.addResource({ id: leaseId, resource: { id, type } }, { signal });
}
