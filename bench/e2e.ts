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
import type { ContainerdClient } from "../lib/grpc/connection.ts";
import type { StepConfig } from "../lib/step/config.ts";
import { type HarnessInfo, startHarness } from "../tests/harness.ts";
import {
  benchStep,
  coldUserSteps,
  forgetUserFiles,
  manyCtr,
  manySteps,
  pruneLeftovers,
  removalMs,
  runningTasks,
  SHIM_GROUP_LABEL,
  userImage,
} from "./_e2e_load.ts";
import {
  childStep,
  CLI_FLAGS,
  cliRun,
  ctrRun,
  lag,
  type Row,
  type Sample,
  timed,
} from "./_e2e_measure.ts";
import { flag, median } from "./_util.ts";

const runs = flag("runs", 10);
const bigRuns = flag("big-runs", 3);
const only = (() => {
  const i = Deno.args.indexOf("--only");
  return i >= 0 ? Deno.args[i + 1].split(",") : undefined;
})();
const ROOT = new URL("..", import.meta.url).pathname;
const GIB = flag("size-mib", 1024) * 1024 * 1024;

function rows(h: HarnessInfo, client: ContainerdClient): Row[] {
  const timedStep = async (extra: Partial<StepConfig>) => {
    const t = performance.now();
    await runStep(benchStep(h, extra), { client });
    return { ms: performance.now() - t };
  };
  const yes = `yes | head -c ${GIB}`;
  const zeros = `head -c ${GIB} /dev/zero`;
  let users = "";
  /** Imports the user-lookup image once, for the rows that need it (nothing to clean up). */
  const usersImage = async (): Promise<() => Promise<void>> => {
    users ||= await userImage(h);
    return async () => {};
  };
  const userFlags = (user: string) => ["--image", users, "--user", user];
  return [
    {
      name: "warm-step",
      what: "one `echo hi` step (runStep, shared client) vs `ctr run --rm`",
      runs,
      ours: () => timedStep({ run: "echo hi" }),
      ctr: () => ctrRun(h, ["/bin/sh", "-c", "echo hi"]),
    },
    {
      name: "warm-100-running",
      what: "the warm step with 100 other tasks running on the daemon vs `ctr run --rm`",
      runs,
      setup: () => runningTasks(h, 100),
      ours: () => timedStep({ run: "echo hi" }),
      ctr: () => ctrRun(h, ["/bin/sh", "-c", "echo hi"]),
    },
    {
      name: "conc4-100",
      what: "100 `echo hi` steps, 4 at a time (runStep, one client) vs 100 `ctr run --rm`",
      runs: bigRuns,
      ours: async () => ({ ms: await manySteps(h, client, 100, 4) }),
      ctr: async () => ({ ms: await manyCtr(h, 100, 4) }),
    },
    {
      name: "conc4-100-grouped",
      what: `as conc4-100, our steps labelled ${SHIM_GROUP_LABEL} (one shim per group)`,
      runs: bigRuns,
      ours: async () => ({ ms: await manySteps(h, client, 100, 4, { [SHIM_GROUP_LABEL]: "b" }) }),
      ctr: async () => ({ ms: await manyCtr(h, 100, 4) }),
    },
    {
      name: "remove-unstarted",
      what: "removeContainer of a task created and never started (the abort / failed-start path) " +
        "vs of a task that ran and exited (default 10 s grace period)",
      runs,
      ours: async () => ({ ms: await removalMs(h, client, false) }),
      ctr: async () => ({ ms: await removalMs(h, client, true) }),
    },
    {
      name: "prune-200",
      what: "prune() of 200 running steps a killed client left, grace period 0 (baseline: " +
        "the same with a 500 ms grace period; `sleep` as PID 1 ignores SIGTERM)",
      runs: 1,
      ours: async () => ({ ms: await pruneLeftovers(h, client, 200, 0) }),
      ctr: async () => ({ ms: await pruneLeftovers(h, client, 200, 500) }),
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
      ours: () => timed(Deno.execPath(), ["run", "-A", ...CLI_FLAGS, "cli.ts", "--version"]),
      ctr: () => timed("ctr", ["--version"]),
    },
    {
      name: "user-name",
      what: "cold CLI `run --user tester -- true` vs `--user 1000:1000`, 80 MiB base layer " +
        "with /etc last (the lookup is recorded on the image after its first run)",
      runs,
      setup: usersImage,
      ours: () => cliRun(h, ["true"], userFlags("tester")),
      ctr: () => cliRun(h, ["true"], userFlags("1000:1000")),
    },
    {
      name: "user-first",
      what: "as user-name, the recorded lookup dropped before each run (layers read top down)",
      runs: Math.min(runs, 5),
      setup: usersImage,
      ours: async () => {
        await forgetUserFiles(client, users);
        return await cliRun(h, ["true"], userFlags("tester"));
      },
      ctr: () => cliRun(h, ["true"], userFlags("1000:1000")),
    },
    {
      name: "user-8-cold",
      what: "8 concurrent steps as `tester` in a new process, lookup not recorded yet, vs one " +
        "warm step as `tester`",
      runs: Math.min(runs, 5),
      setup: usersImage,
      ours: async () => ({ ms: await coldUserSteps(h, client, users, 8) }),
      ctr: () => timedStep({ image: users, user: "tester", run: "id -u" }),
    },
    {
      name: "user-8-numeric",
      what: "the floor of user-8-cold: the same 8 concurrent steps as `1000:1000` (no lookup), " +
        "vs one warm step as `tester`",
      runs: Math.min(runs, 5),
      setup: usersImage,
      ours: async () => ({ ms: await coldUserSteps(h, client, users, 8, "1000:1000") }),
      ctr: () => timedStep({ image: users, user: "tester", run: "id -u" }),
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
// Ctrl-C: stop the private daemon (and what runs on it) before leaving.
Deno.addSignalListener("SIGINT", () => void h.stop().finally(() => Deno.exit(130)));
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
    const cleanup = await row.setup?.();
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
    await cleanup?.();
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
  // Aligns the new table's columns as `deno fmt` (and so `deno task check`) wants them.
  await new Deno.Command(Deno.execPath(), { args: ["fmt", `${ROOT}BENCHMARKS.md`] }).output();
}
