import assert from "node:assert/strict";
import { resolveImage } from "../../lib/image/resolve.ts";
import { prune } from "../../lib/prune.ts";
import { createContainerTask } from "../../lib/runtime/container.ts";
import { newContainerId } from "../../lib/runtime/task.ts";
import { validateStepConfig } from "../../lib/step/config.ts";
import { stepSpec } from "../../lib/step/run.ts";
import { assertNothingLeft, e2eClient, e2eTest, remoteStep } from "./e2e.ts";

e2eTest("e2e: prune removes what a crashed step left on the remote daemon", async (e) => {
  await using c = await e2eClient(e);
  // What a runStep killed mid-run leaves: lease, capture files in the shared dir, snapshot,
  // container record and a running task.
  const step = validateStepConfig(remoteStep(e, { run: "sleep 60", stepName: "crashed" }));
  const image = await resolveImage(c, step.image);
  const containerId = newContainerId("crashed");
  const created = await createContainerTask(c, {
    containerId,
    kind: "step",
    name: "crashed",
    imageName: image.name,
    chainId: image.chainId,
    spec: await stepSpec(c, step, image, containerId),
    snapshotter: e.snapshotter,
    runtime: step.runtime,
    runcOptions: step.runcOptions,
    leaseExpireMs: 3600_000,
  });
  await c.tasks.start({ containerId });
  await Deno.stat(created.capture.dir); // in the shared dir, visible from this side

  const dry = await prune(c, { dryRun: true, gracePeriodMs: 500 });
  assert.ok(dry.containers.some((x) => x.id === containerId), JSON.stringify(dry.containers));
  assert.ok((await c.tasks.list({})).tasks.some((t) => t.id === containerId), "dry run removed");

  const report = await prune(c, { gracePeriodMs: 500 });
  assert.ok(report.containers.some((x) => x.id === containerId), JSON.stringify(report));
  assert.deepEqual(report.errors, []);
  await assertNothingLeft(e, containerId);
});
