/**
 * `cli run` against the harness's containerd.
 *
 * @module
 */

import assert from "node:assert/strict";
import { assertExists } from "../asserts.ts";
import { clean, cli, readRest, readUntil, spawnCli, stepFlags, taskOf } from "./_cli.ts";
import { containerdTest } from "../harness.ts";
import { TaskStatus } from "../../proto/gen/types.ts";

// ---------------------------------------------------------------------------------------------
// against the harness's containerd

containerdTest("cli run --json prints exit code, output, outputs and output data", async (h) => {
  await clean(h, async (s) => {
    const { code, stdout, stderr } = await cli([
      ...s.g,
      "run",
      ...stepFlags(h),
      "--name",
      `build-${s.token}`,
      "--env",
      "GREETING=hi",
      "--json",
      "--",
      "sh",
      "-c",
      'echo "$GREETING"; echo "##wfe[output version=1.2.3]"; echo oops >&2',
    ]);
    assert.equal(code, 0, stderr);
    assert.equal(stderr, "");
    const result = JSON.parse(stdout);
    assert.deepEqual(Object.keys(result).sort(), [
      "collected",
      "containerId",
      "durationMs",
      "exitCode",
      "oomKilled",
      "outputData",
      "outputs",
      "stderr",
      "stdout",
      "timedOut",
    ]);
    assert.equal(result.exitCode, 0);
    assert.equal(result.timedOut, false);
    assert.equal(result.stdout, "hi\n##wfe[output version=1.2.3]\n");
    assert.equal(result.stderr, "oops\n");
    assert.deepEqual(result.outputs, { version: "1.2.3" });
    assert.equal(result.outputData[`build-${s.token}.exit_code`], 0);
    assert.equal(result.outputData[`build-${s.token}.stderr`], "oops\n");
    assert.equal(result.outputData.version, "1.2.3");
    assert.match(result.containerId, new RegExp(`^wfe-build-${s.token}-[0-9a-f]{16}$`));
    assert.ok(Number.isInteger(result.durationMs) && result.durationMs > 0);
  });
});

containerdTest("cli run exits with the container's exit code (exit 7 -> 7)", async (h) => {
  await clean(h, async (s) => {
    const plain = await cli([
      ...s.g,
      "run",
      ...stepFlags(h),
      "--name",
      `exit-${s.token}`,
      "--run",
      "echo to-stdout; echo to-stderr >&2; exit 7",
    ]);
    assert.equal(plain.code, 7, plain.stderr);
    assert.equal(plain.stdout, "to-stdout\n");
    assert.equal(plain.stderr, "to-stderr\n", "no error line for the container's own exit");
    const json = await cli([
      ...s.g,
      "run",
      ...stepFlags(h),
      "--name",
      `exit-json-${s.token}`,
      "--json",
      "--",
      "sh",
      "-c",
      "exit 7",
    ]);
    assert.equal(json.code, 7, json.stderr);
    assert.equal(JSON.parse(json.stdout).exitCode, 7);
  });
});

containerdTest("cli run streams a line before the container exits", async (h) => {
  await clean(h, async (s) => {
    const sync = await Deno.makeTempDir({ prefix: "wfe-cli-sync-" });
    await Deno.chmod(sync, 0o755);
    const name = `live-${s.token}`;
    const { child, stdout, stderr, close } = spawnCli([
      ...s.g,
      "run",
      ...stepFlags(h),
      "--name",
      name,
      "--volume",
      `${sync}:/sync:ro`,
      "--",
      "sh",
      "-c",
      // The container cannot exit before the test creates /sync/go.
      "echo first; i=0; while [ ! -e /sync/go ] && [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done; " +
      "if [ -e /sync/go ]; then echo saw-go; else echo gave-up; fi",
    ]);
    try {
      const first = await readUntil(stdout, "first\n");
      assert.equal(first, "first\n");
      const task = await taskOf(h, `wfe-${name}-`);
      assertExists(task, "the container is not there while its first line is");
      assert.equal(task.status, TaskStatus.RUNNING);
      await Deno.writeTextFile(`${sync}/go`, "");
      assert.equal(await readRest(stdout), "saw-go\n");
      const status = await child.status;
      assert.equal(status.code, 0, await stderr);
      assert.equal(await stderr, "");
    } finally {
      await close();
      await Deno.remove(sync, { recursive: true });
    }
  });
});

containerdTest("cli run -f runs a YAML step file; flags override it", async (h) => {
  await clean(h, async (s) => {
    const dir = await Deno.makeTempDir();
    try {
      const file = `${dir}/step.yaml`;
      await Deno.writeTextFile(
        file,
        [
          `image: ${h.images.oneLayer.name}`,
          `step_name: from-file-${s.token}`,
          `snapshotter: ${h.snapshotter}`,
          "env:",
          "  MODE: file",
          "  LEVEL: 3",
          "run: |",
          '  echo "mode=$MODE level=$LEVEL user=$(id -u) cwd=$(pwd)"',
          '  echo "##wfe[output mode=$MODE]"',
          "working_dir: /tmp",
          "timeout: 30s",
          "labels:",
          "  team: infra",
          "",
        ].join("\n"),
      );
      const { code, stdout, stderr } = await cli([
        ...s.g,
        "run",
        "-f",
        file,
        "--runc-root",
        h.runcRoot,
        "--env",
        "MODE=flag",
        "--user",
        "1000:1000",
        "--json",
      ]);
      assert.equal(code, 0, stderr);
      const result = JSON.parse(stdout);
      assert.equal(
        result.stdout,
        "mode=flag level=3 user=1000 cwd=/tmp\n##wfe[output mode=flag]\n",
      );
      assert.deepEqual(result.outputs, { mode: "flag" });
      assert.equal(result.outputData[`from-file-${s.token}.exit_code`], 0);
      assert.match(result.containerId, new RegExp(`^wfe-from-file-${s.token}-`));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

containerdTest("cli run --timeout kills the step and exits 124", async (h) => {
  await clean(h, async (s) => {
    const started = performance.now();
    const plain = await cli([
      ...s.g,
      "run",
      ...stepFlags(h),
      "--name",
      `timeout-${s.token}`,
      "--timeout",
      "1s",
      "--grace-period",
      "200ms",
      "--",
      "sleep",
      "30",
    ]);
    assert.equal(plain.code, 124, plain.stderr);
    assert.match(
      plain.stderr,
      /^error: container execution timed out after 1000 ms \(killed, exit code 137\)\n$/,
    );
    assert.ok(performance.now() - started < 20_000);
    const json = await cli([
      ...s.g,
      "run",
      ...stepFlags(h),
      "--name",
      `timeout-json-${s.token}`,
      "--timeout",
      "500ms",
      "--grace-period",
      "0",
      "--json",
      "--run",
      "echo before; sleep 30",
    ]);
    assert.equal(json.code, 124, json.stderr);
    const result = JSON.parse(json.stdout);
    assert.equal(result.timedOut, true);
    assert.equal(result.stdout, "before\n");
  });
});

containerdTest(
  "cli spec prints the runtime spec: network none vs host, creating nothing",
  async (h) => {
    await clean(h, async (s) => {
      const [none, host] = await Promise.all(
        ["none", "host"].map((network) =>
          cli([
            ...s.g,
            "spec",
            ...stepFlags(h),
            "--name",
            `spec-${s.token}`,
            "--network",
            network,
            "--",
            "id",
            "-u",
          ])
        ),
      );
      assert.equal(none.code, 0, none.stderr);
      assert.equal(host.code, 0, host.stderr);
      const a = JSON.parse(none.stdout);
      const b = JSON.parse(host.stdout);
      for (const spec of [a, b]) {
        assert.deepEqual(spec.process.args, ["id", "-u"]);
        assert.equal(spec.process.user.uid, 65534);
        assert.match(spec.linux.cgroupsPath, new RegExp(`^/${h.namespace}/wfe-spec-${s.token}-`));
      }
      const namespaces = (spec: { linux: { namespaces: { type: string }[] } }) =>
        spec.linux.namespaces.map((n) => n.type);
      const targets = (spec: { mounts: { destination: string }[] }) =>
        spec.mounts.map((m) => m.destination);
      assert.ok(namespaces(a).includes("network"), namespaces(a).join(","));
      assert.ok(!namespaces(b).includes("network"), namespaces(b).join(","));
      assert.ok(!targets(a).includes("/etc/resolv.conf"));
      for (const path of ["/etc/resolv.conf", "/etc/hosts"]) {
        const mount = b.mounts.find((m: { destination: string }) => m.destination === path);
        assertExists(mount, `${path} is not bound with --network host`);
        assert.ok(mount.options.includes("ro"), JSON.stringify(mount));
      }
      assert.ok(b.process.env.some((e: string) => e.startsWith("HOSTNAME=")));
      assert.ok(!a.process.env.some((e: string) => e.startsWith("HOSTNAME=")));
    });
  },
);

containerdTest(
  "cli run --input copies a file and a directory in; --entrypoint replaces the image's",
  async (h) => {
    await clean(h, async (s) => {
      const dir = await Deno.makeTempDir({ prefix: "wfe-cli-input-" });
      try {
        await Deno.mkdir(`${dir}/tree`);
        await Deno.writeTextFile(`${dir}/tree/t.txt`, "from a tree\n");
        await Deno.writeTextFile(`${dir}/one.sh`, 'echo from a script "$@"\n');
        const { code, stdout, stderr } = await cli([
          ...s.g,
          "run",
          ...stepFlags(h),
          "--input",
          `${dir}/tree:/data`,
          "-i",
          `${dir}/one.sh:/bin/one.sh:0755`,
          "--collect",
          `/made:${dir}/made`,
          "--user",
          "0:0",
          "--entrypoint",
          "/bin/sh",
          "--",
          "-c",
          "cat /data/t.txt; stat -c %a /bin/one.sh; /bin/one.sh x; mkdir /made; echo m > /made/m",
          "--user",
          "0:0",
        ]);
        assert.equal(stderr, `collected /made to ${dir}/made (1 file(s))\n`);
        assert.equal(await Deno.readTextFile(`${dir}/made/m`), "m\n");
        assert.equal(code, 0);
        assert.equal(stdout, "from a tree\n755\nfrom a script x\n");
        const bad = await cli([
          ...s.g,
          "run",
          ...stepFlags(h),
          "-i",
          "/nonexistent-wfe:/x",
          "--",
          "true",
        ]);
        assert.equal(bad.code, 125);
        assert.match(bad.stderr, /inputs\[0\]\.source '\/nonexistent-wfe': No such file/);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

containerdTest(
  "cli run says 'killed: out of memory' with the limit, and a missing command exits 127 with one line",
  async (h) => {
    await clean(h, async (s) => {
      const oom = await cli([
        ...s.g,
        "run",
        ...stepFlags(h),
        "--memory",
        "16m",
        "--run",
        "exec awk 'BEGIN { s = \"x\"; while (1) s = s s }'",
      ]);
      assert.equal(oom.code, 137);
      assert.equal(oom.stderr, "killed: out of memory (limit 16 MiB)\n");
      const missing = await cli([...s.g, "run", ...stepFlags(h), "--", "nosuch-cmd"]);
      assert.equal(missing.code, 127);
      assert.equal(missing.stderr, "nosuch-cmd: executable file not found in $PATH\n");
      const json = await cli([...s.g, "run", ...stepFlags(h), "--json", "--", "/etc/passwd"]);
      assert.equal(json.code, 126);
      assert.equal(
        JSON.parse(json.stdout).stderr,
        "/etc/passwd: permission denied (not an executable file)\n",
      );
    });
  },
);
