/**
 * Helpers for tests on the harness's containerd: the leftover audit every step and service test
 * ends with, and importing the one-layer test image into another namespace.
 *
 * @module
 */

import assert from "node:assert/strict";
import { connect } from "../lib/grpc/connection.ts";
import { ContainerdError, isNotFound } from "../lib/grpc/errors.ts";
import { assertRejects } from "./asserts.ts";
import { ctr, type HarnessInfo } from "./harness.ts";

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
  await assert.rejects(() => Deno.stat(`${IO_BASE}/wfe-io-${containerId}`), Deno.errors.NotFound);
}

/** Imports the harness's one-layer image into `namespace` (unpacked in its snapshotter). */
export async function importOneLayer(h: HarnessInfo, namespace: string): Promise<void> {
  await ctr(h.address, [
    "images",
    "import",
    "--platform",
    h.images.oneLayer.platform,
    "--snapshotter",
    h.snapshotter,
    `${h.dir}/images/one-layer.tar`,
  ], { namespace });
}
