/**
 * Helpers for tests on the harness's containerd: the leftover audit every step and service test
 * ends with, and importing the one-layer test image into another namespace.
 *
 * @module
 */

import assert from "node:assert/strict";
import { connect, type ContainerdClient } from "../lib/grpc/connection.ts";
import { captureDirContainerId } from "../lib/runtime/capture.ts";
import { ContainerdError, isNotFound } from "../lib/grpc/errors.ts";
import { assertRejects } from "./asserts.ts";
import { ctr, type HarnessInfo } from "./harness.ts";
import type { StepConfig } from "../lib/step/config.ts";

/** Where capture directories go when a test does not choose: `WFE_IO_DIR`, `TMPDIR`, `/tmp`. */
export const IO_BASE: string = Deno.env.get("WFE_IO_DIR") || Deno.env.get("TMPDIR") || "/tmp";

/** Asserts that no container, task, snapshot, lease or capture dir of `containerId` is left. */
export async function assertNothingLeft(h: HarnessInfo, containerId: string): Promise<void> {
  await using c = await connect(`unix://${h.address}`, { namespace: h.namespace });
  const noContainer = await assertRejects(
    () => c.containers.get({ id: containerId }),
    ContainerdError,
  );
  assert.ok(isNotFound(noContainer), "container left");
  const { tasks } = await c.tasks.list({});
  assert.ok(!tasks.some((t) => t.id === containerId), "task left");
  const noSnapshot = await assertRejects(
    () => c.snapshots.stat({ snapshotter: h.snapshotter, key: containerId }),
    ContainerdError,
  );
  assert.ok(isNotFound(noSnapshot), "snapshot left");
  const { leases } = await c.leases.list({ filters: [`id==${containerId}-lease`] });
  assert.equal(leases.length, 0, "lease left");
  const dirs = [...Deno.readDirSync(IO_BASE)].map((e) => e.name)
    .filter((name) => captureDirContainerId(name) === containerId);
  assert.deepEqual(dirs, [], "capture dir left");
}

/** The digests of all blobs in the harness namespace's content store, sorted. */
export async function contentDigests(h: HarnessInfo): Promise<string[]> {
  await using c = await connect(`unix://${h.address}`, { namespace: h.namespace });
  const digests: string[] = [];
  for await (const res of c.content.list({})) digests.push(...res.info.map((i) => i.digest));
  return digests.sort();
}

/** `ctr images import` of an archive file, unpacked in the harness's snapshotter. */
async function ctrImport(
  h: HarnessInfo,
  file: string,
  platform: string,
  namespace: string,
  timeoutMs?: number,
): Promise<void> {
  await ctr(h.address, [
    "images",
    "import",
    "--platform",
    platform,
    "--snapshotter",
    h.snapshotter,
    file,
  ], { namespace, timeoutMs });
}

/** Imports the harness's one-layer image into `namespace` (unpacked in its snapshotter). */
export async function importOneLayer(h: HarnessInfo, namespace: string): Promise<void> {
  await ctrImport(h, `${h.dir}/images/one-layer.tar`, h.images.oneLayer.platform, namespace);
}

/**
 * Imports a built image archive with `ctr images import` (through a temp file, removed after)
 * into `namespace`, default the harness's.
 */
export async function importBuilt(
  h: HarnessInfo,
  image: { archive: Uint8Array; platform: string },
  options: { namespace?: string; timeoutMs?: number } = {},
): Promise<void> {
  await withTempDir("wfe-import-", async (dir) => {
    const file = `${dir}/image.tar`;
    await Deno.writeFile(file, image.archive);
    await ctrImport(h, file, image.platform, options.namespace ?? h.namespace, options.timeoutMs);
  });
}

/** Runs `fn` with a fresh temp directory (name starting with `prefix`), removed afterwards. */
export async function withTempDir<T>(
  prefix: string,
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A fresh namespace on the harness's daemon, removed (with what is in it) afterwards. */
export async function scratchNamespace(h: HarnessInfo): Promise<
  { name: string; client: ContainerdClient } & AsyncDisposable
> {
  const name = `wfe-pull-${crypto.randomUUID().slice(0, 8)}`;
  const client = await connect(`unix://${h.address}`, { namespace: name });
  return {
    name,
    client,
    async [Symbol.asyncDispose]() {
      await clearNamespace(client, h.snapshotter);
      await client.close();
    },
  };
}

/** Deletes images, leases, snapshots and ingests of the client's namespace, then the namespace. */
export async function clearNamespace(client: ContainerdClient, snapshotter: string): Promise<void> {
  const { images } = await client.images.list({});
  for (const image of images) await client.images.delete({ name: image.name, sync: true });
  const { leases } = await client.leases.list({});
  for (const lease of leases) await client.leases.delete({ id: lease.id, sync: true });
  for (let round = 0; round < 10; round++) {
    const keys: string[] = [];
    for await (const res of client.snapshots.list({ snapshotter })) {
      for (const info of res.info) keys.push(info.name);
    }
    if (keys.length === 0) break;
    for (const key of keys) await client.snapshots.remove({ snapshotter, key }).catch(() => {});
  }
  const { statuses } = await client.content.listStatuses({});
  for (const status of statuses) await client.content.abort({ ref: status.ref });
  await client.namespaces.delete({ name: client.namespace }).catch(() => {});
}

/** A step on the harness's daemon: its one-layer image, namespace, snapshotter and runc root. */
export function stepConfig(h: HarnessInfo, extra: Partial<StepConfig> = {}): StepConfig {
  return {
    image: h.images.oneLayer.name,
    containerdAddr: `unix://${h.address}`,
    namespace: h.namespace,
    snapshotter: h.snapshotter,
    runcOptions: { root: h.runcRoot },
    ...extra,
  };
}
