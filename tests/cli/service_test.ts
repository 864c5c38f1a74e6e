/**
 * `cli service` against the harness's containerd.
 *
 * @module
 */

import assert from "node:assert/strict";
import { assertExists } from "../asserts.ts";
import { clean, cli, cliCommand, freePort, readUntil, spawnCli, stepFlags } from "./_cli.ts";
import { connect } from "../../lib/grpc/connection.ts";
import { containerdTest } from "../harness.ts";

containerdTest("cli service start / ls / logs / stop", async (h) => {
  await clean(h, async (s) => {
    const name = `svc-cli-${s.token}`;
    const port = freePort();
    const g = s.g;
    try {
      const start = await cli([
        ...g,
        "service",
        "start",
        name,
        ...stepFlags(h),
        "--port",
        String(port),
        "--ready",
        `http:${port}/`,
        "--ready-interval",
        "100ms",
        "-e",
        "GREETING=hello-from-service",
        "--",
        "sh",
        "-c",
        `mkdir -p /www && echo "$GREETING" > /www/index.html && echo serving && echo warn >&2 && ` +
        `exec httpd -f -p ${port} -h /www`,
      ]);
      assert.equal(start.code, 0, start.stderr);
      assert.match(
        start.stdout,
        new RegExp(`^started service ${name}: pid \\d+, image ${h.images.oneLayer.name}\n`),
      );
      const svcPrefix = `SVC_${name.toUpperCase().replaceAll("-", "_")}`;
      assert.match(
        start.stdout,
        new RegExp(`env: +${svcPrefix}_HOST=127\\.0\\.0\\.1 ${svcPrefix}_PORT=${port}\n`),
      );
      const res = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(await res.text(), "hello-from-service\n");

      const ls = await cli([...g, "service", "ls", "--json"]);
      assert.equal(ls.code, 0, ls.stderr);
      const mine = JSON.parse(ls.stdout).find((s: { containerId: string }) =>
        s.containerId === name
      );
      assertExists(mine, ls.stdout);
      assert.equal(mine.status, "running");
      assert.deepEqual(mine.ports, [port]);
      const table = await cli([...g, "service", "ls"]);
      assert.match(table.stdout, /^NAME +STATUS +PID +PORTS +IMAGE +CREATED\n/);
      assert.match(
        table.stdout,
        new RegExp(`\n${name} +running +\\d+ +${port} +${h.images.oneLayer.name} +`),
      );

      const logs = await cli([...g, "service", "logs", name]);
      assert.equal(logs.code, 0, logs.stderr);
      assert.equal(logs.stdout, "serving\n");
      assert.equal(logs.stderr, "warn\n");

      const exec = await cli([
        ...g,
        "service",
        "exec",
        name,
        "-e",
        "X=1",
        "--",
        "sh",
        "-c",
        'echo "in $X"; echo e >&2; exit 5',
      ]);
      assert.deepEqual([exec.code, exec.stdout, exec.stderr], [5, "in 1\n", "e\n"]);
      const missing = await cli([...g, "service", "exec", name, "--", "nosuch-cmd"]);
      assert.deepEqual(
        [missing.code, missing.stderr],
        [127, "nosuch-cmd: executable file not found in $PATH\n"],
      );
      // --follow prints the last line, then what an exec appends to the service's output,
      // until Ctrl-C.
      const follow = spawnCli([...g, "service", "logs", name, "--follow", "--tail", "1"]);
      try {
        assert.equal(await readUntil(follow.stdout, "serving\n"), "serving\n");
        const poke = await cli([
          ...g,
          "service",
          "exec",
          name,
          "--",
          "sh",
          "-c",
          "echo poked > /proc/1/fd/1",
        ]);
        assert.equal(poke.code, 0, poke.stderr);
        assert.equal(await readUntil(follow.stdout, "poked\n"), "poked\n");
        follow.child.kill("SIGINT");
        assert.equal((await follow.child.status).code, 130);
      } finally {
        await follow.close();
      }

      const again = await cli([...g, "service", "start", name, "--image", h.images.oneLayer.name]);
      assert.equal(again.code, 125);
      assert.match(again.stderr, /already exists/);

      const stop = await cli([...g, "service", "stop", name, "--grace-period", "1s"]);
      assert.equal(stop.code, 0, stop.stderr);
      assert.equal(
        stop.stdout,
        `stopped ${name} (removed task, container, snapshot, lease, capture dir)\n`,
      );
      const gone = await cli([...g, "service", "ls", "-q"]);
      assert.ok(!gone.stdout.split("\n").includes(name), gone.stdout);
      const twice = await cli([...g, "service", "stop", name]);
      assert.equal(twice.code, 125);
      assert.equal(twice.stderr, `error: no service ${name} in namespace ${s.namespace}\n`);
    } finally {
      await cli([...g, "service", "stop", name, "--grace-period", "0"]);
    }
  });
});

containerdTest(
  "cli service start interrupted by SIGINT while waiting for readiness removes the service, exit 130",
  async (h) => {
    await clean(h, async (s) => {
      const name = `svc-int-${s.token}`;
      const port = freePort(); // nothing will listen there: readiness keeps waiting
      const child = cliCommand([
        ...s.g,
        "service",
        "start",
        name,
        ...stepFlags(h),
        "--port",
        String(port),
        "--ready-timeout",
        "60s",
        "--",
        "sleep",
        "1000",
      ], { stdin: "null", stdout: "piped", stderr: "piped" }).spawn();
      try {
        await using c = await connect(`unix://${h.address}`, { namespace: s.namespace });
        const deadline = Date.now() + 30_000;
        while (!(await c.tasks.list({})).tasks.some((t) => t.id === name && t.status === 2)) {
          if (Date.now() > deadline) throw new Error("the service's task never ran");
          await new Promise((r) => setTimeout(r, 50));
        }
        child.kill("SIGINT");
        const out = await child.output();
        const stderr = new TextDecoder().decode(out.stderr);
        assert.equal(out.code, 130, stderr);
        assert.match(stderr, /SIGINT: removing the half-started service/);
        assert.match(stderr, /error: interrupted by SIGINT/);
      } finally {
        try {
          child.kill("SIGKILL");
        } catch { /* exited */ }
        await child.status;
      }
    });
  },
);
