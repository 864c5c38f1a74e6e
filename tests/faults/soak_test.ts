/**
 * A soak: 200 steps, 8 at a time, of six kinds (success with an output, exit 1, timeout, OOM,
 * missing image, abort), driven by a client in its own process (_soak_child.ts) so the memory
 * figures are the client's alone. Every result is what its kind says, no step sees another's
 * output, nothing is left, and the client's JS heap and open files stay flat.
 *
 * @module
 */

import assert from "node:assert/strict";
import { containerdTest } from "../harness.ts";
import { audit, NOTHING } from "./_audit.ts";
import { KINDS, type SoakReport } from "./_soak_child.ts";

const STEPS = 200;
const CHILD = new URL("./_soak_child.ts", import.meta.url).pathname;
const mib = (n: number) => (n / 1048576).toFixed(1);

containerdTest(
  `soak: ${STEPS} mixed steps, 8 at a time, every result as expected, nothing left, no heap or file leak`,
  async (h) => {
    const token = `soak${crypto.randomUUID().slice(0, 8)}`;
    const ioDir = await Deno.makeTempDir({ prefix: "wfe-soak-" });
    try {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--v8-flags=--expose-gc",
          CHILD,
          JSON.stringify(h),
          ioDir,
          token,
          String(STEPS),
        ],
        stdout: "piped",
        stderr: "inherit",
      }).output();
      assert.equal(out.code, 0, "the soak client exited with an error");
      const r: SoakReport = JSON.parse(new TextDecoder().decode(out.stdout));
      assert.deepEqual(r.failures, []);
      assert.deepEqual(
        r.counts,
        Object.fromEntries(
          KINDS.map((k, j) => [k, Math.floor((STEPS - j - 1) / KINDS.length) + 1]),
        ),
      );
      const [rss20, rssHalf, rssEnd] = r.rss;
      const [heap20, , heapEnd] = r.heap;
      console.error(
        `soak client: RSS ${mib(rss20)} MiB after 20 steps, ${mib(rssHalf)} after ${STEPS / 2}, ${
          mib(rssEnd)
        } at the end; JS heap after GC ${mib(heap20)} -> ${mib(heapEnd)} MiB`,
      );
      // A leak shows in the JS heap after a full collection and in open files. RSS grows while
      // V8 sizes its heap and the runtime its thread pool (about 95 -> 170 MiB over the first
      // 200 steps, then flat to step 1000), so it gets a ceiling, not a 20 MiB band.
      assert.ok(
        heapEnd - heap20 < 5 * 1024 * 1024,
        `JS heap after GC: ${mib(heap20)} MiB after 20 steps, ${mib(heapEnd)} MiB at the end`,
      );
      assert.ok(r.fds[2] <= r.fds[0] + 2, `open files: ${r.fds[0]} -> ${r.fds[2]}`);
      assert.ok(rssEnd < 256 * 1048576, `client RSS ${mib(rssEnd)} MiB at the end`);
      assert.deepEqual(
        await audit({
          address: h.address,
          dir: h.dir,
          namespace: h.namespace,
          snapshotter: h.snapshotter,
          ioDir,
          mine: (n) => n.includes(token),
        }),
        NOTHING,
      );
    } finally {
      await Deno.remove(ioDir, { recursive: true });
    }
  },
);
