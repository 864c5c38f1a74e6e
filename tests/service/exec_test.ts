/**
 * execInService and followServiceLogs against the harness's containerd.
 *
 * @module
 */

import assert from "node:assert/strict";
import { execInService } from "../../lib/service/exec.ts";
import { copyFromService } from "../../lib/service/copy.ts";
import { followServiceLogs } from "../../lib/service/logs.ts";
import { cleanupService } from "../../lib/service/manage.ts";
import { runService } from "../../lib/service/start.ts";
import { captureDirContainerId } from "../../lib/runtime/capture.ts";
import { assertRejects } from "../asserts.ts";
import { ContainerdError } from "../../lib/grpc/errors.ts";
import { connect } from "../../lib/grpc/connection.ts";
import { LABELS } from "../../lib/labels.ts";
import { assertNothingLeft, IO_BASE } from "../daemon_helpers.ts";
import { containerdTest, type HarnessInfo } from "../harness.ts";

function captureDirsOf(id: string): string[] {
  return [...Deno.readDirSync(IO_BASE)].map((e) => e.name)
    .filter((name) => captureDirContainerId(name) === id);
}

async function withService(
  h: HarnessInfo,
  script: string,
  fn: (id: string, addr: string) => Promise<void>,
): Promise<void> {
  const id = `svc-exec-${crypto.randomUUID().slice(0, 8)}`;
  const addr = `unix://${h.address}`;
  await runService(addr, id, h.images.oneLayer.name, { GREETING: "hi" }, {
    namespace: h.namespace,
    snapshotter: h.snapshotter,
    runcOptions: { root: h.runcRoot },
    entrypoint: ["/bin/sh", "-c", script],
    readiness: false,
  });
  try {
    await fn(id, addr);
  } finally {
    await cleanupService(addr, id, { namespace: h.namespace, gracePeriodMs: 500 });
  }
  await assertNothingLeft(h, id);
}

containerdTest(
  "execInService() returns exit code and separate streams, with env, user and cwd; 127 for a missing command",
  async (h) => {
    await withService(h, "exec sleep 1000", async (id, addr) => {
      const lines: string[] = [];
      const r = await execInService(
        addr,
        id,
        ["sh", "-c", 'echo "$GREETING $EXTRA $(id -u):$(id -g) $PWD"; echo oops >&2; exit 3'],
        {
          namespace: h.namespace,
          env: { EXTRA: "there" },
          user: "1000:1001",
          cwd: "/tmp",
          onStdout: (l) => lines.push(l),
        },
      );
      assert.equal(r.exitCode, 3);
      assert.equal(r.stdout, "hi there 1000:1001 /tmp\n");
      assert.equal(r.stderr, "oops\n");
      assert.equal(r.timedOut, false);
      assert.deepEqual(lines, ["hi there 1000:1001 /tmp"]);

      const asService = await execInService(addr, id, ["id", "-u"], { namespace: h.namespace });
      assert.deepEqual([asService.exitCode, asService.stdout], [0, "0\n"]);

      const missing = await execInService(addr, id, ["nosuch-cmd"], { namespace: h.namespace });
      assert.equal(missing.exitCode, 127);
      assert.equal(missing.stderr, "nosuch-cmd: executable file not found in $PATH\n");

      const slow = await execInService(addr, id, ["sleep", "30"], {
        namespace: h.namespace,
        timeoutMs: 300,
        gracePeriodMs: 200,
      });
      assert.equal(slow.timedOut, true);
      assert.equal(slow.exitCode, 143); // sleep dies of the SIGTERM
      const stop = new AbortController();
      setTimeout(() => stop.abort(new Error("enough")), 300);
      await assertRejects(
        () =>
          execInService(addr, id, ["sleep", "30"], {
            namespace: h.namespace,
            signal: stop.signal,
            gracePeriodMs: 200,
          }),
        Error,
        "enough",
      );
      // Only the service's own capture dir: each exec's is removed.
      assert.equal(captureDirsOf(id).length, 1);
    });
    await assertRejects(
      () =>
        execInService(`unix://${h.address}`, "svc-no-such", ["true"], { namespace: h.namespace }),
      ContainerdError,
      "not found",
    );
  },
);

containerdTest(
  "followServiceLogs() prints the last lines, then new ones until the service stops",
  async (h) => {
    const script = "echo early-1; echo early-2; echo warn >&2; sleep 0.5; " +
      "for i in 1 2 3; do echo late-$i; sleep 0.2; done; exit 4";
    await withService(h, script, async (id, addr) => {
      await new Promise((r) => setTimeout(r, 300)); // the early lines are written
      const stdout: string[] = [];
      const stderr: string[] = [];
      const ended = await followServiceLogs(addr, id, {
        namespace: h.namespace,
        tail: 1,
        onStdout: (l) => stdout.push(l),
        onStderr: (l) => stderr.push(l),
      });
      assert.deepEqual(stdout, ["early-2", "late-1", "late-2", "late-3"]);
      assert.deepEqual(stderr, ["warn"]);
      assert.equal(ended.exitStatus, 4);

      // Aborting stops following at once.
      const stop = new AbortController();
      setTimeout(() => stop.abort(), 200);
      const t = performance.now();
      const aborted = await followServiceLogs(addr, id, {
        namespace: h.namespace,
        tail: 0,
        onStdout: () => {},
        onStderr: () => {},
        signal: stop.signal,
      });
      assert.ok(performance.now() - t < 2000);
      assert.equal(aborted.exitStatus, 4); // the service had already stopped

      // Capture files this machine cannot reach: said so, naming the file.
      await using c = await connect(addr, { namespace: h.namespace });
      const { container } = await c.containers.get({ id });
      const dir = container!.labels[LABELS.ioDir];
      await Deno.rename(`${dir}/stdout`, `${dir}/stdout.away`);
      try {
        await assertRejects(
          () =>
            followServiceLogs(addr, id, { namespace: h.namespace, onStdout() {}, onStderr() {} }),
          Error,
          `its capture file ${dir}/stdout is not reachable here`,
        );
      } finally {
        await Deno.rename(`${dir}/stdout.away`, `${dir}/stdout`);
      }
    });
  },
);

containerdTest(
  "copyFromService() copies what a running service wrote; nothing at a path is found: false",
  async (h) => {
    const script = "mkdir -p /data/logs && echo one > /data/logs/a.log && exec sleep 1000";
    await withService(h, script, async (id, addr) => {
      const dir = await Deno.makeTempDir({ prefix: "wfe-svc-cp-" });
      try {
        await new Promise((r) => setTimeout(r, 300));
        const copied = await copyFromService(addr, id, "/data", `${dir}/data`, {
          namespace: h.namespace,
        });
        assert.deepEqual([copied.found, copied.files], [true, [`${dir}/data/logs/a.log`]]);
        assert.equal(await Deno.readTextFile(`${dir}/data/logs/a.log`), "one\n");
        const none = await copyFromService(addr, id, "/nothing", `${dir}/none`, {
          namespace: h.namespace,
        });
        assert.deepEqual([none.found, none.files], [false, []]);
        // The service still runs.
        const r = await execInService(addr, id, ["cat", "/data/logs/a.log"], {
          namespace: h.namespace,
        });
        assert.equal(r.stdout, "one\n");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
