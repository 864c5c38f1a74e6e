/**
 * `cli service` against the harness's containerd.
 *
 * @module
 */

import assert from "node:assert/strict";
import { assertExists } from "../asserts.ts";
import { clean, cli, freePort } from "./_cli.ts";
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
        "--image",
        h.images.oneLayer.name,
        "--snapshotter",
        h.snapshotter,
        "--runc-root",
        h.runcRoot,
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
