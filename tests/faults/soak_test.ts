/**
 * A soak: 200 steps, 8 at a time, of six kinds (success with an output, exit 1, timeout, OOM,
 * missing image, abort). Every result is what its kind says, no step sees another's output,
 * nothing is left, and the client's RSS stays flat.
 *
 * @module
 */

import assert from "node:assert/strict";
import { pooledMap } from "../../lib/_util/async.ts";
import { connect } from "../../lib/grpc/connection.ts";
import { ContainerdError, isNotFound } from "../../lib/grpc/errors.ts";
import { StepError, StepTimeoutError } from "../../lib/step/errors.ts";
import { runStep } from "../../lib/step/run.ts";
import { stepConfig } from "../daemon_helpers.ts";
import { containerdTest } from "../harness.ts";
import { audit, NOTHING } from "./_audit.ts";

const STEPS = 200;

/** This process's open file descriptors. */
function openFds(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

/** RSS after a full collection when the runner exposes gc (tests/run_tests.ts does). */
function rss(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return Deno.memoryUsage().rss;
}
const KINDS = ["success", "exit1", "timeout", "oom", "missing", "abort"] as const;

containerdTest(
  `soak: ${STEPS} mixed steps, 8 at a time, every result as expected, nothing left, no heap or file leak`,
  async (h) => {
    const token = `soak${crypto.randomUUID().slice(0, 8)}`;
    const ioDir = await Deno.makeTempDir({ prefix: "wfe-soak-" });
    await using client = await connect(`unix://${h.address}`, { namespace: h.namespace });
    const counts: Record<string, number> = {};
    let done = 0;
    let rssAfter20 = 0;
    let rssAfterHalf = 0;
    let fdsAfter20 = 0;
    let heapAfter20 = 0;
    try {
      await pooledMap(Array.from({ length: STEPS }, (_, i) => i), 8, async (i) => {
        const kind = KINDS[i % KINDS.length];
        const name = `${token}-${i}`;
        const base = stepConfig(h, { stepName: name });
        const run = (extra: Parameters<typeof stepConfig>[1], signal?: AbortSignal) =>
          runStep({ ...base, ...extra }, { client, ioDir, gracePeriodMs: 200, signal });
        const fail = (what: string, got: unknown) => {
          throw new Error(
            `step ${i} (${kind}): ${what}: ${
              got instanceof Error ? got.message : JSON.stringify(got)
            }`,
          );
        };
        if (kind === "success") {
          const r = await run({ run: `echo "##wfe[output token=T${i}]"; echo out-${i}` });
          if (r.exitCode !== 0 || r.outputs.token !== `T${i}`) fail("outputs", r.outputs);
          if (r.stdout !== `##wfe[output token=T${i}]\nout-${i}\n`) {
            fail("stdout crossed", r.stdout);
          }
        } else if (kind === "exit1") {
          const err = await run({ run: `echo err-${i} >&2; exit 1` }).then(
            () => undefined,
            (e) => e,
          );
          if (!(err instanceof StepError) || err.exitCode !== 1) fail("expected exit 1", err);
          if (
            !err.stderrTail.includes(`err-${i}`) ||
            /err-\d+/.exec(err.stderrTail)![0] !== `err-${i}`
          ) {
            fail("stderr crossed", err.stderrTail);
          }
        } else if (kind === "timeout") {
          const err = await run({ run: "sleep 5", timeoutMs: 300 }).then(() => undefined, (e) => e);
          if (!(err instanceof StepTimeoutError)) fail("expected a timeout", err);
        } else if (kind === "oom") {
          const err = await run({
            memory: "16m",
            run: "dd if=/dev/zero of=/dev/shm/fill bs=1M count=64",
          }).then(() => undefined, (e) => e);
          if (!(err instanceof StepError) || err.exitCode !== 137) {
            fail("expected an OOM kill (137)", err);
          }
        } else if (kind === "missing") {
          const err = await run({ image: `wfe.test/missing-${i}:none`, pull: "never" })
            .then(() => undefined, (e) => e);
          if (!(err instanceof ContainerdError) || !isNotFound(err)) {
            fail("expected NOT_FOUND", err);
          }
        } else {
          const stop = new AbortController();
          const reason = new Error(`abort ${i}`);
          setTimeout(() => stop.abort(reason), 150);
          const err = await run({ run: "sleep 5" }, stop.signal).then(() => undefined, (e) => e);
          if (err !== reason) fail("expected the abort reason", err);
        }
        counts[kind] = (counts[kind] ?? 0) + 1;
        if (++done === 20) {
          rssAfter20 = rss();
          heapAfter20 = Deno.memoryUsage().heapUsed;
          fdsAfter20 = openFds();
        }
        if (done === STEPS / 2) rssAfterHalf = rss();
      });
      assert.deepEqual(
        counts,
        Object.fromEntries(
          KINDS.map((k, j) => [k, Math.floor((STEPS - j - 1) / KINDS.length) + 1]),
        ),
      );
      // Leaks show in the JS heap after a full collection and in open files; RSS (logged below)
      // moves with the allocators by tens of MiB either way (e.g. 300, 237, 255 MiB in one run).
      const rssEnd = rss();
      const heapEnd = Deno.memoryUsage().heapUsed;
      const mib = (n: number) => (n / 1048576).toFixed(1);
      assert.ok(
        heapEnd - heapAfter20 < 5 * 1024 * 1024,
        `JS heap after GC: ${mib(heapAfter20)} MiB after 20 steps, ${mib(heapEnd)} MiB at the end`,
      );
      assert.ok(
        openFds() <= fdsAfter20 + 2,
        `open files: ${fdsAfter20} after 20 steps, ${openFds()} at the end`,
      );
      console.error(
        `soak: RSS after 20 steps ${mib(rssAfter20)} MiB, after ${STEPS / 2} ${
          mib(rssAfterHalf)
        } MiB, ` +
          `at the end ${mib(rssEnd)} MiB; JS heap after GC ${mib(heapAfter20)} -> ${
            mib(heapEnd)
          } MiB`,
      );
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
