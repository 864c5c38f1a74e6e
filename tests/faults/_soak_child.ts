/**
 * The soak's client, run as its own process so its RSS is the client's alone: reads the
 * harness facts and the step count from argv, runs the steps 8 at a time and prints one JSON
 * line of results and memory figures on stdout. Spawned by soak_test.ts.
 *
 * @module
 */

import { pooledMap } from "../../lib/_util/async.ts";
import { connect } from "../../lib/grpc/connection.ts";
import { ContainerdError, isNotFound } from "../../lib/grpc/errors.ts";
import { StepError, StepTimeoutError } from "../../lib/step/errors.ts";
import { runStep } from "../../lib/step/run.ts";
import { stepConfig } from "../daemon_helpers.ts";
import type { HarnessInfo } from "../harness.ts";

/** The kinds of step, taken in turn. */
export const KINDS = ["success", "exit1", "timeout", "oom", "missing", "abort"] as const;

/** What the child prints. */
export interface SoakReport {
  counts: Record<string, number>;
  failures: string[];
  /** [after 20 steps, after half, at the end], each after a full collection. */
  rss: number[];
  heap: number[];
  fds: number[];
}

function openFds(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

function sample(r: SoakReport): void {
  (globalThis as { gc?: () => void }).gc?.();
  const m = Deno.memoryUsage();
  r.rss.push(m.rss);
  r.heap.push(m.heapUsed);
  r.fds.push(openFds());
}

async function one(
  h: HarnessInfo,
  client: Awaited<ReturnType<typeof connect>>,
  ioDir: string,
  token: string,
  i: number,
): Promise<string | undefined> {
  const kind = KINDS[i % KINDS.length];
  const base = stepConfig(h, { stepName: `${token}-${i}` });
  const run = (extra: Parameters<typeof stepConfig>[1], signal?: AbortSignal) =>
    runStep({ ...base, ...extra }, { client, ioDir, gracePeriodMs: 200, signal });
  const show = (got: unknown) => got instanceof Error ? got.message : JSON.stringify(got);
  const settle = (p: Promise<unknown>) => p.then(() => undefined, (e) => e);
  if (kind === "success") {
    const r = await run({ run: `echo "##wfe[output token=T${i}]"; echo out-${i}` });
    if (r.exitCode !== 0 || r.outputs.token !== `T${i}`) return `outputs ${show(r.outputs)}`;
    if (r.stdout !== `##wfe[output token=T${i}]\nout-${i}\n`) return `stdout ${show(r.stdout)}`;
  } else if (kind === "exit1") {
    const err = await settle(run({ run: `echo err-${i} >&2; exit 1` }));
    if (!(err instanceof StepError) || err.exitCode !== 1) return `expected exit 1: ${show(err)}`;
    if (/err-\d+/.exec(err.stderrTail)?.[0] !== `err-${i}`) return `stderr ${err.stderrTail}`;
  } else if (kind === "timeout") {
    const err = await settle(run({ run: "sleep 5", timeoutMs: 300 }));
    if (!(err instanceof StepTimeoutError)) return `expected a timeout: ${show(err)}`;
  } else if (kind === "oom") {
    const err = await settle(
      run({ memory: "16m", run: "dd if=/dev/zero of=/dev/shm/fill bs=1M count=64" }),
    );
    if (!(err instanceof StepError) || err.exitCode !== 137) return `expected 137: ${show(err)}`;
  } else if (kind === "missing") {
    const err = await settle(run({ image: `wfe.test/missing-${i}:none`, pull: "never" }));
    if (!(err instanceof ContainerdError) || !isNotFound(err)) return `NOT_FOUND: ${show(err)}`;
  } else {
    const stop = new AbortController();
    const reason = new Error(`abort ${i}`);
    setTimeout(() => stop.abort(reason), 150);
    const err = await settle(run({ run: "sleep 5" }, stop.signal));
    if (err !== reason) return `expected the abort reason: ${show(err)}`;
  }
  return undefined;
}

/** Runs `steps` mixed steps, 8 at a time, sampling memory after 20, half and all of them. */
export async function soak(
  h: HarnessInfo,
  ioDir: string,
  token: string,
  steps: number,
): Promise<SoakReport> {
  const report: SoakReport = { counts: {}, failures: [], rss: [], heap: [], fds: [] };
  await using client = await connect(`unix://${h.address}`, { namespace: h.namespace });
  let done = 0;
  await pooledMap(Array.from({ length: steps }, (_, i) => i), 8, async (i) => {
    const kind = KINDS[i % KINDS.length];
    const failure = await one(h, client, ioDir, token, i).catch((e) => `threw ${e}`);
    if (failure) report.failures.push(`step ${i} (${kind}): ${failure}`);
    report.counts[kind] = (report.counts[kind] ?? 0) + 1;
    if (++done === 20 || done === steps / 2) sample(report);
  });
  sample(report);
  return report;
}

if (import.meta.main) {
  const [info, ioDir, token, steps] = Deno.args;
  const report = await soak(JSON.parse(info), ioDir, token, Number(steps));
  console.log(JSON.stringify(report));
}
