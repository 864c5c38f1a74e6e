/**
 * End-to-end speed: one short step (`echo hi`) through `runStep` vs the same
 * container through `ctr run --rm`, on the same private containerd,
 * alternating runs; reports medians and their ratio (ctr / ours: above 1.0
 * means runStep is faster).
 *
 * ```sh
 * deno run -A bench/step_vs_ctr.ts [--runs 15]
 * ```
 *
 * runStep's time is in-process wall time of the call (connect, image
 * resolution, spec, lease, snapshot, container, task, wait, output read,
 * teardown); ctr's is the wall time of the `ctr run --rm` process.
 *
 * @module
 */

import { connect, runStep } from "../api.ts";
import { ctr, startHarness } from "../tests/harness.ts";
import { ctrRunArgs } from "./_e2e_load.ts";
import { flag, median } from "./_util.ts";

const runs = flag("runs", 15);
const h = await startHarness();
try {
  await using client = await connect(`unix://${h.address}`, { namespace: h.namespace });
  const config = {
    image: h.images.oneLayer.name,
    run: "echo hi",
    snapshotter: h.snapshotter,
    runcOptions: { root: h.runcRoot },
  };
  await runStep(config, { client }); // warm-up: image resolution is memoized per process
  const ours: number[] = [];
  const theirs: number[] = [];
  for (let i = 0; i < runs; i++) {
    let t = performance.now();
    const result = await runStep(config, { client });
    ours.push(performance.now() - t);
    if (result.stdout !== "hi\n") throw new Error(`runStep printed ${result.stdout}`);
    t = performance.now();
    const out = await ctr(
      h.address,
      ctrRunArgs(h, h.images.oneLayer.name, [
        "/bin/sh",
        "-c",
        "echo hi",
      ]),
      { namespace: h.namespace },
    );
    theirs.push(performance.now() - t);
    if (out !== "hi\n") throw new Error(`ctr printed ${out}`);
  }
  const o = median(ours);
  const c = median(theirs);
  console.log(`runStep:     median ${o.toFixed(0)} ms over ${runs} runs`);
  console.log(`ctr run --rm: median ${c.toFixed(0)} ms over ${runs} runs`);
  console.log(`ratio (ctr / runStep): ${(c / o).toFixed(2)}`);
} finally {
  await h.stop();
}
