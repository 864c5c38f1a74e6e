/**
 * What inputs and collect cost: a plain step, the same step with a 64 MiB directory as input,
 * and a step that writes 64 MiB and collects it; medians of `--runs` runs, on a private
 * harness daemon.
 *
 * ```sh
 * deno task bench:artifacts [--runs 5] [--mib 64]
 * ```
 *
 * @module
 */

import { connect } from "../lib/grpc/connection.ts";
import { runStep } from "../lib/step/run.ts";
import { startHarness } from "../tests/harness.ts";
import { benchStep } from "./_e2e_load.ts";
import { flag } from "./_util.ts";

const runs = flag("runs", 5);
const mib = flag("mib", 64);
const h = await startHarness();
const dir = await Deno.makeTempDir({ prefix: "wfe-bench-artifacts-" });
try {
  await Deno.mkdir(`${dir}/in`);
  for (let i = 0; i < mib; i++) {
    await Deno.writeFile(`${dir}/in/f${i}`, new Uint8Array(1 << 20).fill(i));
  }
  await using client = await connect(`unix://${h.address}`, { namespace: h.namespace });
  const timed = async (extra: Parameters<typeof benchStep>[1]): Promise<number> => {
    const t = performance.now();
    await runStep(benchStep(h, { user: "0:0", ...extra }), { client });
    return performance.now() - t;
  };
  await timed({ run: "true" }); // warm-up
  const rows: Record<string, number[]> = { plain: [], input: [], collect: [] };
  for (let i = 0; i < runs; i++) {
    rows.plain.push(await timed({ run: "true" }));
    rows.input.push(await timed({ run: "true", inputs: [{ source: `${dir}/in`, target: "/in" }] }));
    await Deno.remove(`${dir}/out`, { recursive: true }).catch(() => {});
    rows.collect.push(
      await timed({
        run: `mkdir /out && head -c ${mib * 1048576} /dev/zero > /out/z`,
        collect: [{ path: "/out", to: `${dir}/out` }],
      }),
    );
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`${runs} runs, medians:`);
  console.log(`  plain step                     ${median(rows.plain).toFixed(0)} ms`);
  console.log(`  + ${mib} MiB directory input      ${median(rows.input).toFixed(0)} ms`);
  console.log(`  writes ${mib} MiB + collect      ${median(rows.collect).toFixed(0)} ms`);
} finally {
  await Deno.remove(dir, { recursive: true });
  await h.stop();
}
