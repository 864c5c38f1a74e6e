/**
 * Bad step inputs are refused before anything is created, each error naming the field and value.
 *
 * @module
 */

import assert from "node:assert/strict";
import { connect } from "../../lib/grpc/connection.ts";
import type { StepConfig } from "../../lib/step/config.ts";
import { runStep } from "../../lib/step/run.ts";
import { assertRejects } from "../asserts.ts";
import { containerdTest, type HarnessInfo } from "../harness.ts";

function base(h: HarnessInfo, extra: Record<string, unknown>): StepConfig {
  return {
    image: h.images.oneLayer.name,
    run: "true",
    containerdAddr: `unix://${h.address}`,
    namespace: h.namespace,
    snapshotter: h.snapshotter,
    runcOptions: { root: h.runcRoot },
    ...extra,
  } as StepConfig;
}

/** [what is wrong, the config change, the error class, text the message must contain]. */
const CASES: [string, Record<string, unknown>, ErrorConstructor, string][] = [
  [
    "env as a string",
    { env: "A=1" },
    TypeError,
    "Cannot use env: expected an object of NAME: value pairs, got string",
  ],
  [
    "env as an array",
    { env: ["A=1"] },
    TypeError,
    "Cannot use env: expected an object of NAME: value pairs, got an array",
  ],
  [
    "workflowData as null",
    { workflowData: null },
    TypeError,
    "Cannot use workflowData: expected an object of NAME: value pairs, got null",
  ],
  [
    "env key with a newline",
    { env: { "A\nB": "1" } },
    TypeError,
    "Cannot use env key 'A\nB': keys must be non-empty and contain no '=', NUL or line break",
  ],
  ["env key with a CR", { env: { "A\rB": "1" } }, TypeError, "contain no '=', NUL or line break"],
  [
    "workflowData key with a newline",
    { workflowData: { "x\ny": 1 } },
    TypeError,
    "Cannot use workflowData key 'X\nY'",
  ],
  ["env key with =", { env: { "A=B": "1" } }, TypeError, "Cannot use env key 'A=B'"],
  [
    "env value that is a number",
    { env: { A: 1 } },
    TypeError,
    "Cannot use env.A: expected a string value, got number",
  ],
  [
    "volume target /",
    { volumes: [{ source: "/tmp", target: "/" }] },
    TypeError,
    "Cannot use volumes[0].target '/': it would cover the container's root or its /proc, /sys or /dev",
  ],
  [
    "volume target /proc",
    { volumes: [{ source: "/tmp", target: "/proc" }] },
    TypeError,
    "Cannot use volumes[0].target '/proc'",
  ],
  [
    "volume target under /proc",
    { volumes: [{ source: "/tmp", target: "/proc/sys/kernel" }] },
    TypeError,
    "Cannot use volumes[0].target '/proc/sys/kernel'",
  ],
  [
    "volume target /sys/",
    { volumes: [{ source: "/tmp", target: "/sys/" }] },
    TypeError,
    "Cannot use volumes[0].target '/sys/'",
  ],
  [
    "volume target /dev/shm",
    { volumes: [{ source: "/tmp", target: "/dev/shm" }] },
    TypeError,
    "Cannot use volumes[0].target '/dev/shm'",
  ],
  [
    "relative volume target",
    { volumes: [{ source: "/tmp", target: "data" }] },
    TypeError,
    "Cannot use volumes[0].target 'data': expected an absolute path",
  ],
  [
    "volumes as an object",
    { volumes: { source: "/tmp" } },
    TypeError,
    "Cannot use volumes: expected an array, got object",
  ],
  [
    "missing volume source",
    { volumes: [{ source: "/nonexistent/wfe-src", target: "/data" }] },
    TypeError,
    "Cannot use volumes[0].source '/nonexistent/wfe-src': it does not exist on this host",
  ],
  [
    "image with upper case",
    { image: "Wfe.Test/Busybox:1" },
    TypeError,
    "Cannot use image 'Wfe.Test/Busybox:1': ",
  ],
  [
    "image with a space",
    { image: "busybox latest" },
    TypeError,
    "Cannot use image 'busybox latest': ",
  ],
  [
    "image with a bad digest",
    { image: "busybox@sha256:xyz" },
    TypeError,
    "Cannot use image 'busybox@sha256:xyz': ",
  ],
  ["image with an empty tag", { image: "busybox:" }, TypeError, "Cannot use image 'busybox:': "],
  [
    "seccomp as a number",
    { seccomp: 5 },
    TypeError,
    "Cannot use seccomp 5: expected 'default', 'unconfined' or the path of a JSON profile",
  ],
  [
    "seccomp file missing",
    { seccomp: "/nonexistent/profile.json" },
    TypeError,
    "Cannot use seccomp '/nonexistent/profile.json': ",
  ],
];

containerdTest(
  `runStep() refuses ${CASES.length} bad inputs before creating anything, naming field and value`,
  async (h) => {
    await using c = await connect(`unix://${h.address}`, { namespace: h.namespace });
    const before = (await c.containers.list({})).containers.length;
    const leasesBefore = (await c.leases.list({})).leases.length;
    for (const [what, change, Class, text] of CASES) {
      try {
        await assertRejects(() => runStep(base(h, change)), Class, text);
      } catch (err) {
        throw new Error(`${what}: ${(err as Error).message}`, { cause: err });
      }
    }
    assert.equal((await c.containers.list({})).containers.length, before, "no container created");
    assert.equal((await c.leases.list({})).leases.length, leasesBefore, "no lease created");
  },
);
