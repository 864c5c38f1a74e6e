/**
 * Step isolation defaults against the harness's containerd: containerd's seccomp profile applied
 * (and its opt-outs), recursive read-only volumes.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runStep } from "../../lib/step/run.ts";
import { StepOutputError } from "../../lib/step/errors.ts";
import { assertRejects, assertThrows } from "../asserts.ts";
import { validateStepConfig } from "../../lib/step/config.ts";
import { assertNothingLeft, stepConfig } from "../daemon_helpers.ts";
import { containerdTest } from "../harness.ts";

const base = stepConfig;

containerdTest(
  "steps run under containerd's seccomp profile: no new user namespaces, unless seccomp is unconfined",
  async (h) => {
    const probe =
      "grep Seccomp: /proc/self/status; /bin/busybox unshare -U true && echo unshare-ok; true";
    const filtered = await runStep(base(h, { run: probe, user: "1000:1000" }));
    assert.match(filtered.stdout, /^Seccomp:\t2\n$/);
    assert.match(filtered.stderr, /unshare: unshare\(0x10000000\): Operation not permitted/);
    await assertNothingLeft(h, filtered.containerId);

    const open = await runStep(base(h, { run: probe, user: "1000:1000", seccomp: "unconfined" }));
    assert.equal(open.stdout, "Seccomp:\t0\nunshare-ok\n");
    await assertNothingLeft(h, open.containerId);
  },
);

containerdTest(
  "seccomp takes a JSON profile file; a bad one is refused naming the field and path",
  async (h) => {
    const dir = await Deno.makeTempDir({ prefix: "wfe-seccomp-" });
    try {
      const path = `${dir}/profile.json`;
      // Allow everything but mkdir, which fails with EPERM.
      await Deno.writeTextFile(
        path,
        JSON.stringify({
          defaultAction: "SCMP_ACT_ALLOW",
          architectures: [],
          syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO" }],
        }),
      );
      const result = await runStep(
        base(h, {
          run: "mkdir /tmp/made 2>&1; ls -d /tmp/made 2>&1; true",
          seccomp: path,
        }),
      );
      assert.match(
        result.stdout,
        /mkdir: can't create directory '\/tmp\/made': Operation not permitted/,
      );
      assert.match(result.stdout, /\/tmp\/made: No such file or directory/);
      await Deno.writeTextFile(`${dir}/bad.json`, "{}");
      assertThrows(
        () => validateStepConfig(base(h, { run: "true", seccomp: `${dir}/bad.json` })),
        TypeError,
        `Cannot use seccomp '${dir}/bad.json': not a seccomp profile (expected defaultAction and syscalls)`,
      );
      assertThrows(
        () => validateStepConfig(base(h, { run: "true", seccomp: `${dir}/missing.json` })),
        TypeError,
        `Cannot use seccomp '${dir}/missing.json': `,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

containerdTest(
  "a readonly volume is read-only all the way down (mounts below its source too)",
  async (h) => {
    const dir = await Deno.makeTempDir({ prefix: "wfe-rro-" });
    const sub = `${dir}/sub`;
    await Deno.mkdir(sub);
    const mount = await new Deno.Command("mount", { args: ["-t", "tmpfs", "tmpfs", sub] }).output();
    assert.ok(mount.success, new TextDecoder().decode(mount.stderr));
    try {
      const result = await runStep(base(h, {
        run: "touch /data/top 2>&1; touch /data/sub/below 2>&1; true",
        user: "0:0",
        volumes: [{ source: dir, target: "/data", readonly: true }],
      }));
      assert.match(result.stdout, /touch: \/data\/top: Read-only file system/);
      assert.match(result.stdout, /touch: \/data\/sub\/below: Read-only file system/);
      await assertNothingLeft(h, result.containerId);
    } finally {
      await new Deno.Command("umount", { args: [sub] }).output();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

containerdTest(
  "a capture dir deleted mid-step stops the step promptly with an error naming it; nothing is left",
  async (h) => {
    const ioDir = await Deno.makeTempDir({ prefix: "wfe-vanish-" });
    try {
      const started = performance.now();
      const run = runStep(base(h, { run: "echo started; sleep 60" }), {
        ioDir,
        gracePeriodMs: 500,
      });
      run.catch(() => {});
      let dir: string | undefined;
      while (!dir) {
        for await (const e of Deno.readDir(ioDir)) if (e.name.startsWith("wfe-io-")) dir = e.name;
        await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, 300));
      await Deno.remove(`${ioDir}/${dir}`, { recursive: true });
      const err = await assertRejects(
        () => run,
        StepOutputError,
        `was stopped (exit code 137): the capture file ${ioDir}/${dir}/stdout was deleted`,
      );
      assert.equal(err.stopped, true);
      assert.ok(performance.now() - started < 10_000, "stopped promptly");
      await assertNothingLeft(h, err.containerId);
    } finally {
      await Deno.remove(ioDir, { recursive: true });
    }
  },
);

containerdTest(
  "an onStdout callback that throws keeps the step's exit code in the error",
  async (h) => {
    const err = await assertRejects(
      () =>
        runStep(base(h, { run: "echo one; exit 3" }), {
          onStdout: () => {
            throw new Error("callback broke");
          },
        }),
      StepOutputError,
      "exited with code 3, but its output could not be read: read output: callback broke",
    );
    assert.equal(err.exitCode, 3);
    assert.equal(err.stopped, false);
    await assertNothingLeft(h, err.containerId);
  },
);

containerdTest(
  "a full IO dir stops the step promptly with an error naming it; its exit code is kept; nothing is left",
  async (h) => {
    const ioDir = await Deno.makeTempDir({ prefix: "wfe-full-" });
    const mount = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", ioDir],
    }).output();
    assert.ok(mount.success, new TextDecoder().decode(mount.stderr));
    try {
      const started = performance.now();
      const err = await assertRejects(
        () =>
          runStep(base(h, { run: "dd if=/dev/zero bs=1k count=4096; sleep 60" }), {
            ioDir,
            gracePeriodMs: 500,
          }),
        StepOutputError,
        `: the IO directory holding ${ioDir}/wfe-io-`,
      );
      assert.match(
        err.message,
        /is full \(\d+ bytes free on its filesystem\): the step's output cannot be written/,
      );
      assert.equal(err.stopped, true);
      assert.equal(err.exitCode, 137);
      assert.ok(performance.now() - started < 15_000, "stopped promptly");
      await assertNothingLeft(h, err.containerId);
    } finally {
      await new Deno.Command("umount", { args: [ioDir] }).output();
      await Deno.remove(ioDir, { recursive: true });
    }
  },
);
