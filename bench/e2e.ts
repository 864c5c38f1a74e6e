/**
 * Side by side with `ctr` on one private containerd (the test harness's), alternating runs:
 * output volume, CLI output, cold CLI start, warm steps, line lag. Prints a table of medians,
 * spreads and ratios (ours / ctr: below 1 is faster) and appends it, with the date, machine and
 * commit, to BENCHMARKS.md.
 *
 * ```sh
 * deno task bench:e2e [--runs 10] [--big-runs 3] [--only out-yes,cold-run] [--no-append]
 * ```
 *
 * Rows measured in a child process (`bench/_e2e_child.ts`: runStep's own wall time, peak RSS
 * from VmHWM) are marked "child"; ctr's peak RSS comes from `/usr/bin/time -f %M`.
 *
 * @module
 */

import { connect, runStep } from "../api.ts";
import { type HarnessInfo, startHarness } from "../tests/harness.ts";
import { flag, median } from "./_util.ts";

const runs = flag("runs", 10);
const bigRuns = flag("big-runs", 3);
const only = (() => {
  const i = Deno.args.indexOf("--only");
  return i >= 0 ? Deno.args[i + 1].split(",") : undefined;
})();
const ROOT = new URL("..", import.meta.url).pathname;
const GIB = flag("size-mib", 1024) * 1024 * 1024;

/** One measurement: wall time and, when known, peak RSS. */
interface Sample {
  ms: number;
  rssKiB?: number;
}

/** A row: our way and ctr's way of doing the same thing. */
interface Row {
  name: string;
  what: string;
  runs: number;
  ours: () => Promise<Sample>;
  ctr: () => Promise<Sample>;
}

/** Runs a process with stdout drained, timing it; peak RSS via /usr/bin/time. */
async function timed(cmd: string, args: string[]): Promise<Sample> {
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

let ctrSeq = 0;
/** `ctr run --rm` of a shell command, output drained. */
function ctrRun(h: HarnessInfo, command: string[]): Promise<Sample> {
  return timed("ctr", [
    "--address",
    h.address,
    "--namespace",
    h.namespace,
    "run",
    "--rm",
    "--runc-root",
    h.runcRoot,
    "--snapshotter",
    h.snapshotter,
    h.images.oneLayer.name,
    `bench-e2e-${Deno.pid}-${ctrSeq++}`,
    ...command,
  ]);
}

/** Our CLI: `deno run -A cli.ts run ...`, output drained. */
function cliRun(h: HarnessInfo, command: string[]): Promise<Sample> {
  return timed(Deno.execPath(), [
    "run",
    "-A",
    "cli.ts",
    "--address",
    `unix://${h.address}`,
    "--namespace",
    h.namespace,
    "run",
    "--image",
    h.images.oneLayer.name,
    "--snapshotter",
    h.snapshotter,
    "--runc-root",
    h.runcRoot,
    "--",
    ...command,
  ]);
}

/** runStep in a child process (bench/_e2e_child.ts). */
async function childStep(h: HarnessInfo, command: string, mode = ""): Promise<Sample> {
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
async function lag(h: HarnessInfo, ours: boolean): Promise<Sample> {
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
        "run",
        "--rm",
        "--runc-root",
        h.runcRoot,
        "--snapshotter",
        h.snapshotter,
        h.images.oneLayer.name,
        `bench-lag-${Deno.pid}-${ctrSeq++}`,
        "/bin/sh",
        "-c",
        script,
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

function rows(h: HarnessInfo, client: Awaited<ReturnType<typeof connect>>): Row[] {
  const step = (run: string) =>
    runStep({
      image: h.images.oneLayer.name,
      run,
      snapshotter: h.snapshotter,
      runcOptions: { root: h.runcRoot },
    }, { client });
  const warm = async () => {
    const t = performance.now();
    await step("echo hi");
    return { ms: performance.now() - t };
  };
  const yes = `yes | head -c ${GIB}`;
  const zeros = `head -c ${GIB} /dev/zero`;
  return [
    {
      name: "warm-step",
      what: "one `echo hi` step (runStep, shared client) vs `ctr run --rm`",
      runs,
      ours: warm,
      ctr: () => ctrRun(h, ["/bin/sh", "-c", "echo hi"]),
    },
    {
      name: "out-yes",
      what: "1 GiB of `yes` lines (runStep in a child) vs `ctr run --rm`, output discarded",
      runs: bigRuns,
      ours: () => childStep(h, yes),
      ctr: () => ctrRun(h, ["/bin/sh", "-c", yes]),
    },
    {
      name: "out-zero",
      what: "1 GiB of zero bytes (runStep in a child) vs `ctr run --rm`",
      runs: bigRuns,
      ours: () => childStep(h, zeros),
      ctr: () => ctrRun(h, ["/bin/sh", "-c", zeros]),
    },
    {
      name: "lines-256m",
      what: "256 MiB of `yes` lines with an onStdout callback vs the same step without",
      runs: bigRuns,
      ours: () => childStep(h, `yes | head -c ${GIB / 4}`, "lines"),
      ctr: () => childStep(h, `yes | head -c ${GIB / 4}`),
    },
    {
      name: "cli-seq",
      what: "CLI `run -- seq 1000000` vs `ctr run --rm ... seq 1000000`, stdout drained",
      runs,
      ours: () => cliRun(h, ["seq", "1000000"]),
      ctr: () => ctrRun(h, ["seq", "1000000"]),
    },
    {
      name: "cold-run",
      what: "CLI `run -- true` (a new process) vs `ctr run --rm ... true`",
      runs,
      ours: () => cliRun(h, ["true"]),
      ctr: () => ctrRun(h, ["true"]),
    },
    {
      name: "version",
      what: "CLI `--version` vs `ctr --version`",
      runs,
      ours: () => timed(Deno.execPath(), ["run", "-A", "cli.ts", "--version"]),
      ctr: () => timed("ctr", ["--version"]),
    },
    {
      name: "lag-p95",
      what: "p95 delay of a line (onStdout vs ctr's pipe), ms; time column = lag",
      runs: Math.min(runs, 3),
      ours: () => lag(h, true),
      ctr: () => lag(h, false),
    },
  ];
}

const fmt = (n: number) => n >= 100 ? n.toFixed(0) : n.toFixed(1);
const spread = (v: number[]) => `${fmt(Math.min(...v))}-${fmt(Math.max(...v))}`;
const rss = (s: Sample[]) => {
  const v = s.map((x) => x.rssKiB).filter((x): x is number => x !== undefined);
  return v.length ? `${(median(v) / 1024).toFixed(0)} MiB` : "-";
};

const h = await startHarness();
const lines: string[] = [];
try {
  await using client = await connect(`unix://${h.address}`, { namespace: h.namespace });
  await runStep({
    image: h.images.oneLayer.name,
    run: "true",
    snapshotter: h.snapshotter,
    runcOptions: { root: h.runcRoot },
  }, { client }); // warm-up
  lines.push(
    "| row | runs | ours median (spread) | ctr median (spread) | ratio | ours RSS | ctr RSS |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  );
  const what: string[] = [];
  for (const row of rows(h, client)) {
    if (only && !only.includes(row.name)) continue;
    const ours: Sample[] = [];
    const theirs: Sample[] = [];
    for (let i = 0; i < row.runs; i++) {
      // Alternate which goes first.
      if (i % 2 === 0) {
        ours.push(await row.ours());
        theirs.push(await row.ctr());
      } else {
        theirs.push(await row.ctr());
        ours.push(await row.ours());
      }
    }
    const o = ours.map((s) => s.ms);
    const c = theirs.map((s) => s.ms);
    const line = `| ${row.name} | ${row.runs} | ${fmt(median(o))} ms (${spread(o)}) | ${
      fmt(median(c))
    } ms (${spread(c)}) | ${(median(o) / median(c)).toFixed(2)} | ${rss(ours)} | ${rss(theirs)} |`;
    console.log(line);
    lines.push(line);
    what.push(`- ${row.name}: ${row.what}`);
  }
  lines.push("", ...what);
} finally {
  await h.stop();
}
if (!Deno.args.includes("--no-append")) {
  const git = new Deno.Command("git", { args: ["rev-parse", "--short", "HEAD"], cwd: ROOT });
  const commit = new TextDecoder().decode((await git.output()).stdout).trim();
  const cpus = navigator.hardwareConcurrency;
  const header = `\n### bench:e2e ${new Date().toISOString().slice(0, 10)}, commit ${commit}, ` +
    `${Deno.build.os} ${Deno.osRelease()}, ${cpus} CPUs, Deno ${Deno.version.deno}\n\n`;
  await Deno.writeTextFile(`${ROOT}BENCHMARKS.md`, header + lines.join("\n") + "\n", {
    append: true,
  });
}
