import assert from "node:assert/strict";
import { connect, type ContainerdClient } from "../../lib/grpc/connection.ts";
import { specToAny } from "../../lib/oci/spec.ts";
import { PortInUseError, ServiceError } from "../../lib/service/errors.ts";
import { cleanupService, listServices, serviceLogs } from "../../lib/service/manage.ts";
import { runService, type RunServiceOptions } from "../../lib/service/start.ts";
import { assertExists, assertInstanceOf, assertRejects } from "../asserts.ts";
import { assertNothingLeft } from "../daemon_helpers.ts";
import { containerdTest, type HarnessInfo } from "../harness.ts";

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

function addr(h: HarnessInfo): string {
  return `unix://${h.address}`;
}

function opts(h: HarnessInfo, extra: RunServiceOptions): RunServiceOptions {
  return {
    namespace: h.namespace,
    snapshotter: h.snapshotter,
    runcOptions: { root: h.runcRoot },
    ...extra,
  };
}

async function client(h: HarnessInfo): Promise<ContainerdClient> {
  return await connect(addr(h), { namespace: h.namespace });
}

function uniqueId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}

function pidAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z /.test(stat); // a zombie is dead
  } catch {
    return false;
  }
}

async function httpGet(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

const WWW = (port: number) =>
  `mkdir -p /www && echo hello-from-service > /www/index.html && exec httpd -f -p ${port} -h /www`;

containerdTest("runService() with a tcp check returns when the port answers", async (h) => {
  const port = freePort();
  const id = uniqueId("svc-tcp");
  const svc = await runService(
    addr(h),
    id,
    h.images.oneLayer.name,
    { GREETING: "hi" },
    opts(h, {
      name: "web",
      entrypoint: ["/bin/sh", "-c", `echo "starting with $GREETING"; ${WWW(port)}`],
      ports: [port],
      readiness: { check: { tcp: port }, intervalMs: 100, timeoutMs: 10_000 },
    }),
  );
  try {
    assert.equal(svc.containerId, id);
    assert.deepEqual(svc.endpoints, [`127.0.0.1:${port}`]);
    assert.deepEqual(svc.env, { SVC_WEB_HOST: "127.0.0.1", SVC_WEB_PORT: String(port) });
    assert.ok(pidAlive(svc.pid), `pid ${svc.pid} is not running`);
    const res = await httpGet(`http://127.0.0.1:${port}/`);
    assert.equal(res.status, 200);
    assert.equal(res.body, "hello-from-service\n");
    const listed = await listServices(addr(h), { namespace: h.namespace });
    const mine = listed.find((s) => s.containerId === id);
    assertExists(mine, `listServices: ${JSON.stringify(listed)}`);
    assert.equal(mine.status, "running");
    assert.equal(mine.name, "web");
    assert.deepEqual(mine.ports, [port]);
    assert.equal(mine.pid, svc.pid);
    const logs = await serviceLogs(addr(h), id, { namespace: h.namespace });
    assert.equal(logs.stdout, "starting with hi\n");
  } finally {
    await cleanupService(addr(h), id, { namespace: h.namespace, gracePeriodMs: 2000 });
  }
  await assertNothingLeft(h, id);
  assert.ok(!pidAlive(svc.pid), "the service process survived cleanup");
  const after = await listServices(addr(h), { namespace: h.namespace });
  assert.ok(!after.some((s) => s.containerId === id));
});

containerdTest("runService() with an http check waits for a 2xx answer", async (h) => {
  const port = freePort();
  const id = uniqueId("svc-http");
  await runService(
    addr(h),
    id,
    h.images.oneLayer.name,
    {},
    opts(h, {
      entrypoint: ["/bin/sh", "-c", `sleep 0.5; ${WWW(port)}`],
      ports: [port],
      readiness: { check: { http: { port, path: "/index.html" } }, intervalMs: 100 },
    }),
  );
  try {
    assert.equal((await httpGet(`http://127.0.0.1:${port}/index.html`)).status, 200);
  } finally {
    await cleanupService(addr(h), id, { namespace: h.namespace, gracePeriodMs: 2000 });
  }
  await assertNothingLeft(h, id);
});

containerdTest("runService() with a log check waits for a matching line", async (h) => {
  const port = freePort();
  const id = uniqueId("svc-log");
  const started = Date.now();
  await runService(
    addr(h),
    id,
    h.images.oneLayer.name,
    {},
    opts(h, {
      entrypoint: [
        "/bin/sh",
        "-c",
        `echo booting; sleep 1; echo "ready on ${port}" >&2; ${WWW(port)}`,
      ],
      ports: [port],
      readiness: { check: { log: "/ready on \\d+/" }, timeoutMs: 10_000 },
    }),
  );
  try {
    assert.ok(Date.now() - started >= 1000, "ready before the line was printed");
    assert.equal((await httpGet(`http://127.0.0.1:${port}/`)).status, 200);
  } finally {
    await cleanupService(addr(h), id, { namespace: h.namespace, gracePeriodMs: 2000 });
  }
  await assertNothingLeft(h, id);
});

containerdTest(
  "runService() with an exec check runs the command inside the container",
  async (h) => {
    const id = uniqueId("svc-exec");
    const started = Date.now();
    await runService(
      addr(h),
      id,
      h.images.oneLayer.name,
      {},
      opts(h, {
        entrypoint: ["/bin/sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 1000"],
        readiness: { check: { exec: ["test", "-f", "/tmp/ready"] }, intervalMs: 200 },
      }),
    );
    try {
      assert.ok(Date.now() - started >= 1000, "ready before /tmp/ready existed");
      await using c = await client(h);
      const { processes } = await c.tasks.listPids({ containerId: id });
      assert.equal(processes.length, 1, "an exec probe process was left behind");
    } finally {
      await cleanupService(addr(h), id, { namespace: h.namespace, gracePeriodMs: 1000 });
    }
    await assertNothingLeft(h, id);
  },
);

containerdTest(
  "runService() fails fast with the exit code and output of a service that exits",
  async (h) => {
    const id = uniqueId("svc-exit");
    const started = Date.now();
    try {
      await runService(
        addr(h),
        id,
        h.images.oneLayer.name,
        {},
        opts(h, {
          entrypoint: ["/bin/sh", "-c", "echo config missing >&2; exit 2"],
          ports: [freePort()],
          readiness: { intervalMs: 5000, timeoutMs: 60_000 },
        }),
      );
      assert.fail("a service that exits 2 was reported ready");
    } catch (err) {
      assertInstanceOf(err, ServiceError);
      assert.equal(err.exitCode, 2);
      assert.equal(err.stderrTail, "config missing\n");
      assert.match(err.message, /exited with code 2 before it was ready/);
    }
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    await assertNothingLeft(h, id);
  },
);

containerdTest(
  "runService() of a service the kernel kills for memory before it is ready says so (oomKilled)",
  async (h) => {
    const id = uniqueId("svc-oom");
    const err = await assertRejects(
      () =>
        runService(
          addr(h),
          id,
          h.images.oneLayer.name,
          {},
          opts(h, {
            entrypoint: ["/bin/sh", "-c", "exec awk 'BEGIN { s = \"x\"; while (1) s = s s }'"],
            memory: "16m",
            ports: [freePort()],
            readiness: { intervalMs: 5000, timeoutMs: 60_000 },
          }),
        ),
      ServiceError,
      "was killed: out of memory (limit 16 MiB), exit code 137 before it was ready",
    );
    assert.equal(err.oomKilled, true);
    assert.equal(err.exitCode, 137);
    await assertNothingLeft(h, id);
  },
);

containerdTest(
  "runService() whose readiness times out stops it and says which check failed",
  async (h) => {
    const id = uniqueId("svc-timeout");
    const port = freePort();
    const started = Date.now();
    try {
      await runService(
        addr(h),
        id,
        h.images.oneLayer.name,
        {},
        opts(h, {
          entrypoint: ["/bin/sh", "-c", "echo never listening; exec sleep 1000"],
          ports: [port],
          readiness: { intervalMs: 200, timeoutMs: 1500 },
        }),
      );
      assert.fail("a service that never listens was reported ready");
    } catch (err) {
      assertInstanceOf(err, ServiceError);
      assert.equal(err.check, `tcp 127.0.0.1:${port}`);
      assert.match(err.lastError ?? "", /refused/i);
      assert.equal(err.exitCode, undefined);
      assert.equal(err.stdoutTail, "never listening\n");
    }
    assert.ok(Date.now() - started < 1500 + 4000, `took ${Date.now() - started} ms`);
    await assertNothingLeft(h, id);
  },
);

containerdTest(
  "cleanupService() stops a service that ignores SIGTERM within grace + 1 s",
  async (h) => {
    const id = uniqueId("svc-stubborn");
    const svc = await runService(
      addr(h),
      id,
      h.images.oneLayer.name,
      {},
      opts(h, {
        entrypoint: ["/bin/sh", "-c", "trap '' TERM; sleep 1000 & wait; sleep 1000"],
        readiness: false,
      }),
    );
    const started = Date.now();
    const removed = await cleanupService(addr(h), id, {
      namespace: h.namespace,
      gracePeriodMs: 1000,
    });
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 2000, `took ${elapsed} ms`);
    assert.ok(elapsed >= 1000, `SIGKILL came before the grace period (${elapsed} ms)`);
    assert.deepEqual(removed.removed, ["task", "container", "snapshot", "lease", "capture dir"]);
    assert.equal(removed.exitStatus, 137);
    assert.ok(!pidAlive(svc.pid));
    await assertNothingLeft(h, id);
    // A second call succeeds and finds nothing.
    const again = await cleanupService(addr(h), id, { namespace: h.namespace });
    assert.deepEqual(again.removed, []);
  },
);

containerdTest("cleanupService() removes a container record that has no task", async (h) => {
  const id = uniqueId("svc-notask");
  await using c = await client(h);
  await c.containers.create({
    container: {
      id,
      runtime: { name: "io.containerd.runc.v2" },
      spec: specToAny({} as never),
      labels: { "wfe.containerd/kind": "service", "wfe.containerd/managed-by": "@wfe/containerd" },
    },
  });
  const removed = await cleanupService(addr(h), id, { namespace: h.namespace });
  assert.deepEqual(removed.removed, ["container"]);
  await assertNothingLeft(h, id);
});

containerdTest(
  "cleanupService() refuses a container this project did not create, unless force",
  async (h) => {
    const id = uniqueId("foreign");
    await using c = await client(h);
    await c.containers.create({
      container: { id, runtime: { name: "io.containerd.runc.v2" }, spec: specToAny({} as never) },
    });
    await assertRejects(
      () => cleanupService(addr(h), id, { namespace: h.namespace }),
      TypeError,
      `Cannot clean up container '${id}' in namespace '${h.namespace}': it was not created by ` +
        "@wfe/containerd (no wfe.containerd/managed-by label); pass force: true",
    );
    assert.equal((await c.containers.get({ id })).container?.id, id, "still there");
    const removed = await cleanupService(addr(h), id, { namespace: h.namespace, force: true });
    assert.deepEqual(removed.removed, ["container"]);
    await assertNothingLeft(h, id);
  },
);

containerdTest("cleanupService() kills a task whose container record was deleted", async (h) => {
  const id = uniqueId("svc-orphan");
  const svc = await runService(
    addr(h),
    id,
    h.images.oneLayer.name,
    {},
    opts(h, {
      command: ["/bin/sh", "-c", "exec sleep 1000"], // the deprecated name of entrypoint
      readiness: false,
    }),
  );
  await using c = await client(h);
  // What wfe-containerd's cleanup_service does: delete the container under a running task.
  await c.containers.delete({ id });
  assert.ok((await c.tasks.list({})).tasks.some((t) => t.id === id), "the task should be orphaned");
  assert.ok(pidAlive(svc.pid));
  const removed = await cleanupService(addr(h), id, {
    namespace: h.namespace,
    gracePeriodMs: 1000,
  });
  assert.ok(removed.removed.includes("task"), JSON.stringify(removed));
  assert.ok(!pidAlive(svc.pid), "the orphaned process survived");
  await assertNothingLeft(h, id);
});

containerdTest("runService() rejects bad options before creating anything", async (h) => {
  const id = uniqueId("svc-bad");
  const cases: [RunServiceOptions, RegExp][] = [
    [{ ports: [70000] }, /ports\[0\] 70000/],
    [{ memory: "lots" }, /memory as 'lots'/],
    [{ readiness: { check: { log: "/(/" } } }, /readiness log/],
    [{ readiness: { check: { exec: [] } } }, /readiness exec/],
    [{ readiness: { check: { tcp: 80 }, intervalMs: 0 } }, /intervalMs 0/],
  ];
  for (const [extra, pattern] of cases) {
    await assert.rejects(
      () => runService(addr(h), id, h.images.oneLayer.name, {}, opts(h, extra)),
      pattern,
    );
  }
  await assert.rejects(
    () => runService(addr(h), "bad id!", h.images.oneLayer.name, {}, opts(h, {})),
    /container id 'bad id!'/,
  );
  await assertNothingLeft(h, id);
});

containerdTest(
  "runService() refuses a declared port another process holds, before creating anything",
  async (h) => {
    const holder = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (holder.addr as Deno.NetAddr).port;
    try {
      await using c = await client(h);
      const before = (await c.containers.list({})).containers.length;
      const id = uniqueId("svc-busy");
      const err = await assertRejects(
        () =>
          runService(
            addr(h),
            id,
            h.images.oneLayer.name,
            {},
            opts(h, {
              entrypoint: ["/bin/sh", "-c", `exec nc -l -p ${port}`],
              ports: [port],
            }),
          ),
        PortInUseError,
        `Cannot start service ${id}: port ${port} is already in use on this host by another process`,
      );
      assert.equal(err.port, port);
      assert.equal((await c.containers.list({})).containers.length, before, "nothing created");
      await assertNothingLeft(h, id);
    } finally {
      holder.close();
    }
  },
);

containerdTest(
  "an exec readiness probe never follows a planted exec-N.out symlink (no truncate, no chmod of its target)",
  async (h) => {
    const id = uniqueId("svc-plant");
    const ioDir = await Deno.makeTempDir({ prefix: "wfe-plant-" });
    const victim = `${ioDir}/victim`;
    await Deno.writeTextFile(victim, "root's secret\n", { mode: 0o600 });
    try {
      const started = runService(
        addr(h),
        id,
        h.images.oneLayer.name,
        {},
        opts(h, {
          ioDir,
          entrypoint: ["/bin/sh", "-c", "sleep 2; touch /tmp/ready; exec sleep 1000"],
          readiness: { check: { exec: ["test", "-f", "/tmp/ready"] }, intervalMs: 200 },
        }),
      );
      started.catch(() => {});
      // As soon as the capture dir exists, plant links for the later probe attempts (root can
      // enter the 0700 dir; another user could not, which SECURITY.md covers).
      let dir: string | undefined;
      while (!dir) {
        for (const e of Deno.readDirSync(ioDir)) {
          if (e.name.startsWith(`wfe-io-${id}.`)) dir = e.name;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      for (let attempt = 3; attempt <= 40; attempt++) {
        for (const ext of ["out", "err"]) {
          await Deno.symlink(victim, `${ioDir}/${dir}/exec-${attempt}.${ext}`).catch(() => {});
        }
      }
      await started.then(() =>
        cleanupService(addr(h), id, { namespace: h.namespace, gracePeriodMs: 500 })
      )
        .catch(() => cleanupService(addr(h), id, { namespace: h.namespace, gracePeriodMs: 500 }));
      assert.equal(
        await Deno.readTextFile(victim),
        "root's secret\n",
        "the target was not written",
      );
      assert.equal((await Deno.stat(victim)).mode! & 0o777, 0o600, "the target was not chmod'ed");
      await assertNothingLeft(h, id);
    } finally {
      await Deno.remove(ioDir, { recursive: true });
    }
  },
);
