/**
 * Content-read throughput: reads one 256 MiB blob through this client and
 * through `ctr content get` on the same containerd, alternating runs, and
 * reports the medians, their ratio (ctr time / our time: above 1.0 means we
 * are faster) and the client's RSS growth while reading.
 *
 * ```sh
 * deno task bench                      # starts the harness's private containerd
 * deno task bench --runs 7 --mib 256   # more runs, another size
 * WFE_CONTAINERD_ADDR=/run/containerd/containerd.sock deno task bench   # an existing daemon
 * ```
 *
 * Both sides connect, read the whole blob and write it to /dev/null; ctr's
 * time is the wall time of the `ctr` process (its start-up included), ours the
 * wall time of connect + read + close inside this process.
 *
 * @module
 */

import { connect, readContent, withLease, writeContent } from "../api.ts";
import { startHarness } from "../tests/harness.ts";
import { flag, median } from "./_util.ts";

const MiB = 1024 * 1024;

const runs = flag("runs", 5);
const sizeMiB = flag("mib", 256);
const namespace = "wfe-bench";

const external = Deno.env.get("WFE_CONTAINERD_ADDR");
const harness = external ? undefined : await startHarness();
const address = external ?? `unix://${harness!.address}`;
const socket = address.replace(/^unix:\/\//, "");

try {
  // The blob: random bytes, written once under a lease that the bench deletes at the end.
  const data = new Uint8Array(sizeMiB * MiB);
  for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
  await using setup = await connect(address, { namespace });
  await withLease(setup, async (leased) => {
    const { digest } = await writeContent(leased, data);
    console.log(`blob ${digest} (${sizeMiB} MiB) on containerd ${setup.serverVersion.version}`);

    const devNull = await Deno.open("/dev/null", { write: true });
    const ours: number[] = [];
    const ctrs: number[] = [];
    let rssGrowth = 0;
    for (let run = 0; run < runs; run++) {
      // ours
      const baseline = Deno.memoryUsage().rss;
      let peak = baseline;
      let t = performance.now();
      {
        await using client = await connect(address, { namespace });
        let n = 0;
        for await (const chunk of readContent(client, digest)) {
          await devNull.write(chunk);
          n += chunk.length;
          if ((n & (16 * MiB - 1)) < chunk.length) peak = Math.max(peak, Deno.memoryUsage().rss);
        }
        if (n !== data.length) throw new Error(`read ${n} bytes, expected ${data.length}`);
      }
      ours.push(performance.now() - t);
      rssGrowth = Math.max(rssGrowth, peak - baseline);

      // ctr
      t = performance.now();
      const out = await new Deno.Command("ctr", {
        args: ["--address", socket, "--namespace", namespace, "content", "get", digest],
        stdout: "null",
        stderr: "piped",
      }).output();
      ctrs.push(performance.now() - t);
      if (!out.success) throw new Error(`ctr failed: ${new TextDecoder().decode(out.stderr)}`);
      console.log(
        `run ${run + 1}/${runs}: ours ${ours[run].toFixed(0)} ms, ctr ${ctrs[run].toFixed(0)} ms`,
      );
    }
    devNull.close();
    const mbps = (ms: number): string => (sizeMiB / (ms / 1000)).toFixed(0);
    const o = median(ours);
    const c = median(ctrs);
    console.log(`ours: median ${o.toFixed(0)} ms (${mbps(o)} MiB/s)`);
    console.log(`ctr:  median ${c.toFixed(0)} ms (${mbps(c)} MiB/s)`);
    console.log(`ratio (ctr time / our time): ${(c / o).toFixed(2)}`);
    console.log(
      `client RSS growth while reading (max over runs): ${(rssGrowth / MiB).toFixed(1)} MiB`,
    );
  }, { syncDelete: true });
} finally {
  await harness?.stop();
}
