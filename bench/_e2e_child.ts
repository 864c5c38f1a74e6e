/**
 * One runStep in its own process for bench/e2e.ts, so that its peak RSS is the client's alone.
 * argv: the harness facts (JSON), the shell command, and `lines` to pass an onStdout callback.
 * `MAX_OUTPUT=<bytes>` sets maxOutputBytes. Prints `{"ms": <runStep wall time>, "hwmKiB": <peak
 * RSS>, "stdoutBytes": <n>, "lines": <n>}`.
 *
 * @module
 */

import { connect, runStep } from "../api.ts";
import type { HarnessInfo } from "../tests/harness.ts";

const [info, command, mode] = Deno.args;
const h: HarnessInfo = JSON.parse(info);
await using client = await connect(`unix://${h.address}`, { namespace: h.namespace });
let lines = 0;
const started = performance.now();
const result = await runStep({
  image: h.images.oneLayer.name,
  run: command,
  snapshotter: h.snapshotter,
  runcOptions: { root: h.runcRoot },
  maxOutputBytes: Deno.env.get("MAX_OUTPUT") ? Number(Deno.env.get("MAX_OUTPUT")) : undefined,
}, { client, onStdout: mode === "lines" ? () => void lines++ : undefined });
const ms = performance.now() - started;
const hwm = /VmHWM:\s+(\d+)/.exec(Deno.readTextFileSync("/proc/self/status"))![1];
console.log(JSON.stringify({ ms, hwmKiB: Number(hwm), stdoutBytes: result.stdout.length, lines }));
