/**
 * Where a warm step's time goes: every RPC of one `echo hi` step with its start (ms after the
 * step began) and duration, and the time between RPCs (client work) summed.
 *
 * ```sh
 * deno run -A bench/step_trace.ts [--runs 5] [--first]
 * ```
 *
 * `--first` also shows the process's first step (cold: JIT, first resolution, connection).
 *
 * RPC durations are wall times seen by the client (containerd, shim and runc work plus the
 * round trip); the step's wall time minus the union of RPC intervals is time spent in the
 * client (spec building, capture files, promise scheduling).
 *
 * @module
 */

import type { ContainerdClient } from "../lib/grpc/connection.ts";
import { connect } from "../lib/grpc/connection.ts";
import { runStep } from "../lib/step/run.ts";
import { startHarness } from "../tests/harness.ts";
import { SERVICE_NAMES } from "../proto/gen/types.ts";
import { benchStep } from "./_e2e_load.ts";
import { flag } from "./_util.ts";

interface Call {
  name: string;
  start: number;
  end: number;
}

const SERVICES = Object.keys(SERVICE_NAMES);

/** Wraps every unary method of a client (and of its withLease views) to record its calls. */
function traced(client: ContainerdClient, calls: Call[], t0: () => number): ContainerdClient {
  const record = client as unknown as Record<string, Record<string, unknown>>;
  for (const service of SERVICES) {
    const methods = record[service];
    for (const [name, fn] of Object.entries(methods)) {
      if (typeof fn !== "function") continue;
      methods[name] = (...args: unknown[]) => {
        const start = performance.now() - t0();
        const result = (fn as (...a: unknown[]) => unknown).apply(methods, args);
        if (result instanceof Promise) {
          const done = () =>
            calls.push({ name: `${service}.${name}`, start, end: performance.now() - t0() });
          result.then(done, done);
        }
        return result;
      };
    }
  }
  const withLease = client.withLease.bind(client);
  client.withLease = (id) => traced(withLease(id), calls, t0);
  return client;
}

const runs = flag("runs", 5);
const h = await startHarness();
try {
  let began = 0;
  const calls: Call[] = [];
  await using client = traced(
    await connect(`unix://${h.address}`, { namespace: h.namespace }),
    calls,
    () => began,
  );
  began = performance.now();
  await runStep(benchStep(h, { run: "true" }), { client }); // warm-up
  if (Deno.args.includes("--first")) {
    const total = performance.now() - began;
    console.log(`first step: ${total.toFixed(1)} ms`);
    for (const c of calls.sort((a, b) => a.start - b.start)) {
      console.log(
        `  ${c.start.toFixed(1).padStart(6)} +${
          (c.end - c.start).toFixed(1).padStart(6)
        } ms  ${c.name}`,
      );
    }
  }
  for (let i = 0; i < runs; i++) {
    calls.length = 0;
    began = performance.now();
    await runStep(benchStep(h, { run: "echo hi" }), { client });
    const total = performance.now() - began;
    calls.sort((a, b) => a.start - b.start);
    // Time covered by at least one RPC.
    let covered = 0;
    let reach = 0;
    for (const c of calls) {
      covered += Math.max(0, c.end - Math.max(c.start, reach));
      reach = Math.max(reach, c.end);
    }
    console.log(
      `run ${i + 1}: ${total.toFixed(1)} ms, in RPCs ${covered.toFixed(1)} ms, ` +
        `client only ${(total - covered).toFixed(1)} ms`,
    );
    if (i === runs - 1) {
      for (const c of calls) {
        console.log(
          `  ${c.start.toFixed(1).padStart(6)} +${
            (c.end - c.start).toFixed(1).padStart(6)
          } ms  ${c.name}`,
        );
      }
    }
  }
} finally {
  await h.stop();
}
