/**
 * Faults against real daemons: a client killed mid-step, a daemon killed mid-step and restarted,
 * process trees that ignore SIGTERM, aborts at random points. Each ends with one audit of
 * containers, tasks, active snapshots, leases, ingests, capture dirs and live shims.
 *
 * @module
 */

import assert from "node:assert/strict";
import { connect } from "../../lib/grpc/connection.ts";
import { prune } from "../../lib/prune.ts";
import { StepTimeoutError } from "../../lib/step/errors.ts";
import { runStep } from "../../lib/step/run.ts";
import { cliCommand, stepFlags } from "../cli/_cli.ts";
import {
  containerdTest,
  type HarnessInfo,
  ourShims,
  spawnDaemon,
  startHarness,
  stopDaemon,
  waitReady,
} from "../harness.ts";
import { audit, type AuditScope, NOTHING } from "./_audit.ts";
import { stepConfig, withTempDir } from "../daemon_helpers.ts";

const step = stepConfig;

function scope(h: HarnessInfo, ioDir: string, token: string): AuditScope {
  return {
    address: h.address,
    dir: h.dir,
    namespace: h.namespace,
    snapshotter: h.snapshotter,
    ioDir,
    mine: (name) => name.includes(token),
  };
}

async function until(what: string, ms: number, fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!await fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function runningTask(h: HarnessInfo, token: string): Promise<boolean> {
  await using c = await connect(`unix://${h.address}`, { namespace: h.namespace });
  return (await c.tasks.list({})).tasks.some((t) => t.id.includes(token) && t.status === 2);
}

/** A CLI process running `sleep 60` as a step named `token`. */
function sleepingCli(h: HarnessInfo, ioDir: string, token: string): Deno.ChildProcess {
  const daemon = ["--address", `unix://${h.address}`, "--namespace", h.namespace];
  return cliCommand(
    [...daemon, "--io-dir", ioDir, "run", ...stepFlags(h), "--name", token, "--", "sleep", "60"],
    { stdout: "null", stderr: "null" },
  ).spawn();
}

/** Host processes whose parent is `parent`. */
function childrenOf(parent: number): number[] {
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      if (stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1] === String(parent)) {
        pids.push(+e.name);
      }
    } catch { /* exited */ }
  }
  return pids;
}

function cmdlineOf(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ").trim();
  } catch {
    return "";
  }
}

/** Runs `fn` with a fresh IO base dir, removed afterwards. */
function withIoDir(fn: (ioDir: string) => Promise<void>): Promise<void> {
  return withTempDir("wfe-fault-", fn);
}

/** Host processes whose command line contains `marker` (a check, never a kill). */
function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${e.name}/cmdline`).includes(marker)) pids.push(+e.name);
    } catch { /* exited */ }
  }
  return pids;
}

containerdTest(
  "fault: the client SIGKILLed mid-step leaves a running step that prune() removes",
  async (h) => {
    const token = `kill${crypto.randomUUID().slice(0, 8)}`;
    await withIoDir(async (ioDir) => {
      const child = sleepingCli(h, ioDir, token);
      try {
        await until("the step's task to run", 30_000, () => runningTask(h, token));
        child.kill("SIGKILL");
      } finally {
        await child.status;
      }
      const left = await audit(scope(h, ioDir, token));
      assert.equal(left.containers.length, 1, JSON.stringify(left));
      assert.equal(left.shims.length, 1, "its shim still runs");
      await using c = await connect(`unix://${h.address}`, { namespace: h.namespace });
      const report = await prune(c, { ioDir, gracePeriodMs: 500 });
      assert.deepEqual(report.errors, []);
      assert.deepEqual(await audit(scope(h, ioDir, token)), NOTHING);
    });
  },
);

containerdTest(
  "fault: the client SIGKILLed while Tasks.Create is in flight; prune() removes all containerd knows of; the step never runs",
  async (h) => {
    const token = `kcr${crypto.randomUUID().slice(0, 8)}`;
    await withIoDir(async (ioDir) => {
      const child = sleepingCli(h, ioDir, token);
      const mine = scope(h, ioDir, token).mine;
      const stepShims = () =>
        ourShims(h.dir).filter((pid) => mine(Deno.readTextFileSync(`/proc/${pid}/cmdline`)));
      try {
        // containerd starts the shim inside Tasks.Create: kill the client the moment it exists.
        const deadline = Date.now() + 30_000;
        while (stepShims().length === 0) {
          if (Date.now() > deadline) throw new Error("no shim appeared for the step");
          await new Promise((r) => setTimeout(r, 2));
        }
        child.kill("SIGKILL");
      } finally {
        await child.status;
      }
      await new Promise((r) => setTimeout(r, 1000)); // containerd finishes or undoes the Create
      const before = await audit(scope(h, ioDir, token));
      assert.equal(before.containers.length, 1, JSON.stringify(before));
      await using c = await connect(`unix://${h.address}`, { namespace: h.namespace });
      const report = await prune(c, { ioDir, gracePeriodMs: 500 });
      assert.deepEqual(report.errors, []);
      const left = await audit(scope(h, ioDir, token));
      // containerd cancels the Create when the client's connection drops. When the cancel lands
      // while the shim is starting, that shim outlives the Create with no task on record (at
      // times holding a created, never started `runc init`), and no API call, so no prune, can
      // reach it (SECURITY.md). The step's command never runs in it.
      for (const shim of left.shims) {
        const children = childrenOf(shim);
        assert.ok(
          children.every((pid) => cmdlineOf(pid) === "runc init"),
          `shim ${shim} holds ${children.map(cmdlineOf)}`,
        );
        for (const pid of [shim, ...children]) Deno.kill(pid, "SIGKILL");
      }
      if (left.shims.length) console.error(`left: shim ${left.shims} (no task on record)`);
      assert.deepEqual({ ...left, shims: [] }, NOTHING);
    });
  },
);

containerdTest(
  "fault: a timeout kills a process tree that ignores SIGTERM, children included",
  async (h) => {
    const token = `term${crypto.randomUUID().slice(0, 8)}`;
    const marker = `1010.${Math.floor(Math.random() * 1e6)}`;
    await withIoDir(async (ioDir) => {
      const started = performance.now();
      const err = await runStep(
        step(h, {
          stepName: token,
          timeoutMs: 500,
          run: `trap '' TERM; for i in 1 2 3; do (trap '' TERM; exec sleep ${marker}) & done; ` +
            `sleep ${marker}`,
        }),
        { ioDir, gracePeriodMs: 500 },
      ).then(() => undefined, (e) => e);
      assert.ok(err instanceof StepTimeoutError, String(err));
      assert.equal(err.exitCode, 137);
      assert.ok(performance.now() - started < 10_000, "ended promptly");
      assert.deepEqual(processesWith(`sleep\0${marker}`), [], "no process of the tree is left");
      assert.deepEqual(await audit(scope(h, ioDir, token)), NOTHING);
    });
  },
);

containerdTest(
  "fault: 20 aborts at random points each end cleanly and leave nothing",
  async (h) => {
    const token = `abrt${crypto.randomUUID().slice(0, 8)}`;
    await withIoDir(async (ioDir) => {
      const outcomes = { resolved: 0, aborted: 0 };
      for (let i = 0; i < 20; i++) {
        const stop = new AbortController();
        const reason = new Error(`abort ${i}`);
        setTimeout(() => stop.abort(reason), Math.floor(Math.random() * 400));
        const result = await runStep(step(h, { stepName: `${token}-${i}`, run: "sleep 0.2" }), {
          ioDir,
          signal: stop.signal,
          gracePeriodMs: 100,
        }).then(() => "resolved" as const, (e) => e);
        if (result === "resolved") outcomes.resolved++;
        else {
          assert.equal(result, reason, `attempt ${i}: ${result}`);
          outcomes.aborted++;
        }
      }
      assert.ok(outcomes.aborted > 0, JSON.stringify(outcomes));
      assert.deepEqual(await audit(scope(h, ioDir, token)), NOTHING);
    });
  },
);

containerdTest(
  "fault: the daemon SIGKILLed mid-step; runStep fails fast naming what is left, the next step after a restart removes it",
  async () => {
    const own = await startHarness(); // a private daemon: this test kills it
    let restarted: Awaited<ReturnType<typeof spawnDaemon>> | undefined;
    const token = `dmn${crypto.randomUUID().slice(0, 8)}`;
    const ioDir = await Deno.makeTempDir({ prefix: "wfe-fault-" });
    try {
      const run = runStep(step(own, { stepName: token, run: "sleep 60" }), { ioDir });
      run.catch(() => {});
      await until("the step's task to run", 30_000, () => runningTask(own, token));
      Deno.kill(own.pid, "SIGKILL");
      const started = performance.now();
      const err = await run.then(() => undefined, (e) => e as Error);
      assert.ok(err instanceof Error, "runStep failed");
      assert.ok(
        performance.now() - started < 15_000,
        `failed fast (${performance.now() - started} ms)`,
      );
      assert.match(
        err.message,
        new RegExp(`left behind by wfe-${token}-[0-9a-f]+ \\(could not remove: `),
      );
      assert.match(err.message, /the next step on this daemon and namespace retries/);
      assert.match(err.message, /prune\(\)\) removes it once the daemon answers/);

      restarted = await spawnDaemon(own.dir, false);
      await waitReady(restarted);
      const left = await audit({ ...scope(own, ioDir, token), address: restarted.address });
      assert.equal(left.containers.length, 1, JSON.stringify(left));
      // The next step on that daemon (the client's channel reconnects) removes what was left.
      const next = await runStep(step(own, { stepName: "after-restart", run: "echo ok" }), {
        ioDir,
      });
      assert.equal(next.stdout, "ok\n");
      assert.deepEqual(
        await audit({ ...scope(own, ioDir, token), address: restarted.address }),
        NOTHING,
      );
      await using c = await connect(`unix://${restarted.address}`, { namespace: own.namespace });
      const report = await prune(c, { ioDir, gracePeriodMs: 500 });
      assert.deepEqual(report.errors, []);
      assert.deepEqual(report.containers, [], "nothing left for prune");
      assert.deepEqual(
        await audit({ ...scope(own, ioDir, token), address: restarted.address }),
        NOTHING,
      );
    } finally {
      if (restarted) await stopDaemon(restarted, { keepDir: true });
      await own.stop();
      await Deno.remove(ioDir, { recursive: true });
    }
  },
);
