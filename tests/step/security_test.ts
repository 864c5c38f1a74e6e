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

/**
 * A tiny static x86-64 program (machine code assembled once, wrapped in a minimal ELF header):
 * keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0); exits 0 on success, else errno.
 */
function keyctlProbe(): Uint8Array {
  const code = Uint8Array.from(
    "b8fa00000031ffbefdffffff31d20f0585c07906f7d889c7eb0231ffb83c0000000f05".match(/../g)!,
    (h) => parseInt(h, 16),
  );
  const base = 0x400000n;
  const size = 64 + 56 + code.length;
  const elf = new Uint8Array(size);
  const v = new DataView(elf.buffer);
  elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, 0x3e, true); // x86-64
  v.setUint32(20, 1, true);
  v.setBigUint64(24, base + 120n, true); // entry
  v.setBigUint64(32, 64n, true); // program headers at 64
  v.setUint16(52, 64, true);
  v.setUint16(54, 56, true);
  v.setUint16(56, 1, true);
  v.setUint32(64, 1, true); // PT_LOAD
  v.setUint32(68, 5, true); // R+X
  v.setBigUint64(80, base, true);
  v.setBigUint64(88, base, true);
  v.setBigUint64(96, BigInt(size), true);
  v.setBigUint64(104, BigInt(size), true);
  v.setBigUint64(112, 0x1000n, true);
  elf.set(code, 120);
  return elf;
}

containerdTest(
  "the seccomp profile keeps steps from the kernel keyrings (keyctl gets EPERM; unconfined it works)",
  async (h) => {
    if (Deno.build.arch !== "x86_64") throw new Error("this probe is x86-64 machine code");
    const dir = await Deno.makeTempDir({ prefix: "wfe-keyctl-" });
    try {
      await Deno.chmod(dir, 0o755); // the step runs as 1000:1000
      await Deno.writeFile(`${dir}/keyctl-probe`, keyctlProbe(), { mode: 0o755 });
      const probe = (seccomp?: string) =>
        runStep(base(h, {
          run: "/probe/keyctl-probe; echo exit=$?",
          user: "1000:1000",
          seccomp,
          volumes: [{ source: dir, target: "/probe", readonly: true }],
        }));
      assert.equal((await probe()).stdout, "exit=1\n", "EPERM (1) under the default profile");
      assert.equal((await probe("unconfined")).stdout, "exit=0\n", "the call works unconfined");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
