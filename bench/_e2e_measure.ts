/**
 * Measuring for bench/e2e.ts: timed processes (wall time, peak RSS), `ctr run --rm`, our CLI,
 * runStep in a child process, and line lag.
 *
 * @module
 */

import { connect, runStep } from "../api.ts";
import type { HarnessInfo } from "../tests/harness.ts";
import { stepFlags } from "../tests/cli/_cli.ts";
import { ctrRunArgs } from "./_e2e_load.ts";

const ROOT = new URL("..", import.meta.url).pathname;
/** The runtime flags the README's install command and `deno task cli` give the CLI. */
export const CLI_FLAGS = ["--v8-flags=--max-semi-space-size=2"];

/** One measurement: wall time and, when known, peak RSS. */
export interface Sample {
  ms: number;
  rssKiB?: number;
}

/** A row: our way and a baseline (ctr's way, unless `what` says otherwise) of the same thing. */
export interface Row {
  name: string;
  what: string;
  runs: number;
  ours: () => Promise<Sample>;
  ctr: () => Promise<Sample>;
  /** Runs once before the row's runs; returns the clean-up. */
  setup?: () => Promise<() => Promise<void>>;
}

/** Runs a process with stdout drained, timing it; peak RSS via /usr/bin/time. */
export async function timed(cmd: string, args: string[]): Promise<Sample> {
  const rssFile = await Deno.makeTempFile();
  try {
    const t = performance.now();
    const child = new Deno.Command("/usr/bin/time", {
      args: ["-f", "%M", "-o", rssFile, cmd, ...args],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const drain = child.stdout.pipeTo(new WritableStream());
    const errText = new Response(child.stderr).text();
    const status = await child.status;
    await drain;
    const ms = performance.now() - t;
    if (!status.success) {
      throw new Error(`${cmd} ${args.join(" ")}: exit ${status.code}: ${await errText}`);
    }
    return { ms, rssKiB: Number((await Deno.readTextFile(rssFile)).trim().split("\n").pop()) };
  } finally {
    await Deno.remove(rssFile);
  }
}

/** `ctr run --rm` of a command, output drained. */
export function ctrRun(h: HarnessInfo, command: string[], image = h.images.oneLayer.name) {
  return timed("ctr", [
    "--address",
    h.address,
    "--namespace",
    h.namespace,
    ...ctrRunArgs(h, image, command),
  ]);
}

/** Our CLI: `deno run -A cli.ts run [flags] -- command`, output drained. */
export function cliRun(h: HarnessInfo, command: string[], flags: string[] = []): Promise<Sample> {
  return timed(Deno.execPath(), [
    "run",
    "-A",
    ...CLI_FLAGS,
    "cli.ts",
    "--address",
    `unix://${h.address}`,
    "--namespace",
    h.namespace,
    "run",
    ...stepFlags(h),
    ...flags,
    "--",
    ...command,
  ]);
}

/** runStep in a child process (bench/_e2e_child.ts). */
export async function childStep(h: HarnessInfo, command: string, mode = ""): Promise<Sample> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "bench/_e2e_child.ts", JSON.stringify(h), command, mode],
    cwd: ROOT,
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`bench/_e2e_child.ts failed (exit ${out.code})`);
  const r = JSON.parse(new TextDecoder().decode(out.stdout));
  return { ms: r.ms, rssKiB: r.hwmKiB };
}

/** Line lag: a step prints the time (adjtimex) ~200 times; we note when each line arrives. */
export async function lag(h: HarnessInfo, ours: boolean): Promise<Sample> {
  const script = "for i in $(seq 200); do adjtimex | grep tv_; usleep 5000; done";
  const lags: number[] = [];
  let sec = 0;
  const onLine = (line: string) => {
    const now = Date.now();
    const m = /time\.tv_(sec|usec):\s+(\d+)/.exec(line);
    if (!m) return;
    if (m[1] === "sec") sec = Number(m[2]);
    else lags.push(now - (sec * 1000 + Number(m[2]) / 1000));
  };
  if (ours) {
    await using client = await connect(`unix://${h.address}`, { namespace: h.namespace });
    await runStep({
      image: h.images.oneLayer.name,
      run: script,
      snapshotter: h.snapshotter,
      runcOptions: { root: h.runcRoot },
    }, { client, onStdout: onLine });
  } else {
    const child = new Deno.Command("ctr", {
      args: [
        "--address",
        h.address,
        "--namespace",
        h.namespace,
        ...ctrRunArgs(h, h.images.oneLayer.name, ["/bin/sh", "-c", script]),
      ],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    let rest = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const line of parts) onLine(line);
    }
    await child.status;
  }
  lags.sort((a, b) => a - b);
  return { ms: lags[Math.floor(lags.length * 0.95)] }; // p95 lag in ms
}
