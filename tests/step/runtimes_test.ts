/**
 * Runtime choice: steps and services under crun and under gVisor (runsc), both through the runc
 * shim's binaryName, each proven to have really run there; against the harness's containerd.
 *
 * @module
 */

import assert from "node:assert/strict";
import { execInService } from "../../lib/service/exec.ts";
import { cleanupService } from "../../lib/service/manage.ts";
import { runService } from "../../lib/service/start.ts";
import { runStep } from "../../lib/step/run.ts";
import { assertNothingLeft, stepConfig, withTempDir } from "../daemon_helpers.ts";
import { containerdTest, type HarnessInfo, lookPath } from "../harness.ts";

/** `<runtime> --root <the shim's root for this namespace> state <id>`: its JSON, or undefined. */
async function runtimeState(
  h: HarnessInfo,
  binary: string,
  id: string,
): Promise<{ status: string } | undefined> {
  const out = await new Deno.Command(binary, {
    args: ["--root", `${h.runcRoot}/${h.namespace}`, "state", id],
    stdout: "piped",
    stderr: "null",
  }).output();
  return out.success ? JSON.parse(new TextDecoder().decode(out.stdout)) : undefined;
}

containerdTest(
  "a step under crun: crun holds its state while it runs, runc does not",
  async (h) => {
    const crun = lookPath("crun");
    assert.ok(crun, "crun is not installed (lima/provision.sh with WFE_PROVISION_EXTRA=crun)");
    let seen: [unknown, unknown] | undefined;
    let id = "";
    const result = await runStep(
      stepConfig(h, {
        run: "echo running; sleep 1; echo done",
        memory: "64m",
        runcOptions: { root: h.runcRoot, binaryName: crun },
      }),
      {
        onStdout: (line) => {
          if (line !== "running") return;
          // The step's container id: the only task of this step's name is ours.
          const dir = `${h.runcRoot}/${h.namespace}`;
          id = [...Deno.readDirSync(dir)].map((e) => e.name).find((n) =>
            n.startsWith("wfe-step-")
          )!;
          seen = [undefined, undefined];
          Promise.all([runtimeState(h, crun, id), runtimeState(h, "runc", id)]).then((s) =>
            seen = s
          );
        },
      },
    );
    assert.equal(result.stdout, "running\ndone\n");
    assert.equal(result.containerId, id);
    assert.ok(seen, "the step's first line never came");
    assert.equal((seen[0] as { status: string } | undefined)?.status, "running");
    assert.equal(seen[1], undefined, "runc knows the container: it did not run under crun");
    await assertNothingLeft(h, result.containerId);
  },
);

containerdTest(
  "a step under gVisor (runsc via the runc shim's binaryName) sees gVisor's kernel",
  async (h) => {
    const runsc = lookPath("runsc");
    assert.ok(runsc, "runsc is not installed (lima/provision.sh with WFE_PROVISION_EXTRA=runsc)");
    await withTempDir("wfe-gvisor-", async (dir) => {
      // The runc shim passes no runsc flags: a two-line wrapper picks gVisor's network mode.
      const wrapper = `${dir}/runsc-network-none`;
      await Deno.writeTextFile(wrapper, `#!/bin/sh\nexec ${runsc} --network=none "$@"\n`);
      await Deno.chmod(wrapper, 0o755);
      await Deno.chmod(dir, 0o755);
      const result = await runStep(stepConfig(h, {
        run: "dmesg | head -1; cat /proc/version",
        runcOptions: { root: h.runcRoot, binaryName: wrapper },
        timeoutMs: 60_000,
      }));
      assert.match(result.stdout, /^\[ *0\.0+\] Starting gVisor\.\.\.\n/);
      // The host's kernel is another one: the step saw gVisor's.
      const host = await Deno.readTextFile("/proc/version");
      assert.notEqual(result.stdout.split("\n")[1], host.trim());
      await assertNothingLeft(h, result.containerId);
    });
  },
);

containerdTest("a service under crun starts, answers exec, and is cleaned up", async (h) => {
  const crun = lookPath("crun")!;
  const id = `svc-crun-${crypto.randomUUID().slice(0, 8)}`;
  const addr = `unix://${h.address}`;
  await runService(addr, id, h.images.oneLayer.name, {}, {
    namespace: h.namespace,
    snapshotter: h.snapshotter,
    runcOptions: { root: h.runcRoot, binaryName: crun },
    entrypoint: ["sleep", "1000"],
    readiness: false,
  });
  try {
    assert.equal((await runtimeState(h, crun, id))?.status, "running");
    const r = await execInService(addr, id, ["echo", "exec under crun"], {
      namespace: h.namespace,
    });
    assert.deepEqual([r.exitCode, r.stdout], [0, "exec under crun\n"]);
  } finally {
    await cleanupService(addr, id, { namespace: h.namespace, gracePeriodMs: 500 });
  }
  await assertNothingLeft(h, id);
});
