/**
 * Helpers of the e2e suite: `e2eTest` registers a test that needs the
 * remote topology started by `deno task e2e` (tests/e2e/run.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { connect, type ContainerdClient } from "../../lib/grpc/connection.ts";
import { isNotFound } from "../../lib/grpc/errors.ts";
import type { StepConfig } from "../../lib/step/config.ts";
import type { E2eInfo } from "./topology.ts";

/** The topology's facts, from `WFE_E2E`. */
export function e2eInfo(): E2eInfo | undefined {
  const raw = Deno.env.get("WFE_E2E");
  return raw ? JSON.parse(raw) as E2eInfo : undefined;
}

/** Registers a test against the remote topology; without one it is skipped loudly (or fails in CI). */
export function e2eTest(name: string, fn: (e: E2eInfo) => Promise<void>): void {
  const info = e2eInfo();
  if (info) {
    Deno.test({ name, fn: () => fn(info) });
    return;
  }
  if (Deno.env.get("WFE_REQUIRE_CONTAINERD") === "1") {
    Deno.test({ name, fn: () => assert.fail("run the e2e suite with `deno task e2e`") });
    return;
  }
  console.error(`skipped: ${name}: run via \`deno task e2e\``);
  Deno.test({ name, ignore: true, fn: () => {} });
}

/** A client over the topology's TCP address. */
export async function e2eClient(e: E2eInfo): Promise<ContainerdClient> {
  return await connect(e.address, { namespace: e.namespace });
}

/** A step config for the remote daemon. */
export function remoteStep(e: E2eInfo, extra: Partial<StepConfig> = {}): StepConfig {
  return {
    image: e.images.oneLayer.name,
    containerdAddr: e.address,
    namespace: e.namespace,
    snapshotter: e.snapshotter,
    runcOptions: e.runcRoot ? { root: e.runcRoot } : undefined,
    ...extra,
  };
}

/** Asserts that nothing of `containerId` is left on the remote daemon or in the shared dir. */
export async function assertNothingLeft(e: E2eInfo, containerId: string): Promise<void> {
  await using c = await e2eClient(e);
  await assert.rejects(() => c.containers.get({ id: containerId }), (x: unknown) => isNotFound(x));
  const { tasks } = await c.tasks.list({});
  assert.ok(!tasks.some((t) => t.id === containerId), "task left");
  await assert.rejects(
    () => c.snapshots.stat({ snapshotter: e.snapshotter, key: containerId }),
    (x: unknown) => isNotFound(x),
  );
  const { leases } = await c.leases.list({ filters: [`id==${containerId}-lease`] });
  assert.equal(leases.length, 0, "lease left");
  await assert.rejects(() => Deno.stat(`${e.ioDir}/wfe-io-${containerId}`), Deno.errors.NotFound);
}
