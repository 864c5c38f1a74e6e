import assert from "node:assert/strict";
import { connect, type ContainerdClient } from "../../lib/grpc/connection.ts";
import type { StepConfig } from "../../lib/step/config.ts";
import { StepError, StepTimeoutError } from "../../lib/step/errors.ts";
import { runStep, type StepResult } from "../../lib/step/run.ts";
import { assertInstanceOf, assertRejects } from "../asserts.ts";
import { assertNothingLeft, importBuilt, stepConfig } from "../daemon_helpers.ts";
import { containerdTest, type HarnessInfo } from "../harness.ts";
import { buildImage, busyboxBaseLayer, readStaticBusybox } from "../oci_archive.ts";

const base = stepConfig;

async function client(h: HarnessInfo): Promise<ContainerdClient> {
  return await connect(`unix://${h.address}`, { namespace: h.namespace });
}

/** Runs a step expected to succeed and checks the leftovers. */
async function ok(h: HarnessInfo, extra: Partial<StepConfig>): Promise<StepResult> {
  const result = await runStep(base(h, extra));
  await assertNothingLeft(h, result.containerId);
  return result;
}

/** Runs a step expected to fail with a StepError and checks the leftovers. */
async function fails(h: HarnessInfo, extra: Partial<StepConfig>): Promise<StepError<StepResult>> {
  try {
    await runStep(base(h, extra));
  } catch (err) {
    assertInstanceOf(err, StepError);
    const e = err as StepError<StepResult>;
    await assertNothingLeft(h, e.result.containerId);
    return e;
  }
  throw new Error("the step succeeded");
}

containerdTest("runStep() runs echo, parses outputs and leaves nothing behind", async (h) => {
  const result = await ok(h, {
    stepName: "echo",
    run:
      "echo hello; echo '##wfe[output version=1.2.3]'; echo '##wfe[output a=b=c]'; echo oops >&2",
  });
  assert.equal(result.exitCode, 0);
  assert.equal(
    result.stdout,
    "hello\n##wfe[output version=1.2.3]\n##wfe[output a=b=c]\n",
  );
  assert.equal(result.stderr, "oops\n");
  assert.deepEqual({ ...result.outputs }, { version: "1.2.3", a: "b=c" });
  assert.equal(result.outputData["echo.exit_code"], 0);
  assert.equal(result.outputData["echo.stdout"], result.stdout);
  assert.equal(result.outputData["echo.stderr"], "oops\n");
  assert.equal(result.outputData.version, "1.2.3");
  assert.match(result.containerId, /^wfe-echo-[0-9a-f]{16}$/);
  assert.ok(result.durationMs > 0);
  assert.deepEqual(result.cleanupErrors, []);
});

containerdTest(
  "runStep() rejects exit 3 with a StepError carrying code 3 and the output",
  async (h) => {
    const err = await fails(h, { run: "echo out; echo bad >&2; exit 3" });
    assert.equal(err.exitCode, 3);
    assert.equal(err.result.exitCode, 3);
    assert.equal(err.stdoutTail, "out\n");
    assert.equal(err.stderrTail, "bad\n");
    assert.match(err.message, /container exited with code 3/);
  },
);

containerdTest(
  "runStep() merges env: image Env, then workflow data, then config env",
  async (h) => {
    const result = await ok(h, {
      run: 'echo "$FOO|$COUNT|$SHARED|$PATH"',
      workflowData: { foo: "from-data", count: 2, shared: "from-data" },
      env: { SHARED: "from-env" },
    });
    assert.equal(
      result.stdout,
      "from-data|2|from-env|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n",
    );
  },
);

let configured: string | undefined;
/** An image whose config has Entrypoint, Cmd, Env, WorkingDir and User. */
async function configuredImage(h: HarnessInfo): Promise<string> {
  if (configured) return configured;
  const name = "wfe.test/busybox:configured";
  const image = await buildImage({
    name,
    layers: [busyboxBaseLayer(await readStaticBusybox())],
    entrypoint: ["/bin/sh", "-c"],
    cmd: ['echo "$GREETING from $(pwd) as $(id -u):$(id -g)"'],
    env: ["PATH=/bin", "GREETING=hello"],
    workingDir: "/tmp",
    user: "tester",
  });
  await importBuilt(h, image);
  configured = name;
  return name;
}

containerdTest(
  "runStep() applies the image's Entrypoint, Cmd, Env, WorkingDir and User",
  async (h) => {
    const image = await configuredImage(h);
    const result = await ok(h, { image });
    assert.equal(result.stdout, "hello from /tmp as 1000:1000\n");
    // command replaces Cmd and keeps the Entrypoint.
    const cmd = await ok(h, { image, command: ["echo $GREETING; pwd"] });
    assert.equal(cmd.stdout, "hello\n/tmp\n");
    // run replaces both.
    const run = await ok(h, { image, run: "echo ran", user: "0:0" });
    assert.equal(run.stdout, "ran\n");
  },
);

containerdTest("runStep() honours a workingDir override", async (h) => {
  const result = await ok(h, { run: "pwd", workingDir: "/etc" });
  assert.equal(result.stdout, "/etc\n");
});

containerdTest(
  "runStep() runs as 1000:1000, as a name from /etc/passwd, and as nobody by default",
  async (h) => {
    const numeric = await ok(h, { run: "id -u; id -g", user: "1000:1000" });
    assert.equal(numeric.stdout, "1000\n1000\n");
    const named = await ok(h, { run: "id -u; id -g; id -un", user: "tester" });
    assert.equal(named.stdout, "1000\n1000\ntester\n");
    const fallback = await ok(h, { run: "id -u; id -g" });
    assert.equal(fallback.stdout, "65534\n65534\n");
    const root = await ok(h, { run: "id -u; grep CapEff /proc/self/status", user: "0" });
    assert.match(root.stdout, /^0\nCapEff:\s+0*a80425fb\n$/);
    const nobody = await ok(h, { run: "grep CapEff /proc/self/status" });
    assert.match(nobody.stdout, /^CapEff:\s+0+\n$/);
  },
);

containerdTest(
  "runStep() mounts a read-only volume read-only and a read-write one writable",
  async (h) => {
    const ro = await Deno.makeTempDir({ prefix: "wfe-vol-ro-" });
    const rw = await Deno.makeTempDir({ prefix: "wfe-vol-rw-" });
    try {
      await Deno.writeTextFile(`${ro}/input.txt`, "data\n");
      await Deno.chmod(ro, 0o755);
      await Deno.chmod(`${ro}/input.txt`, 0o644);
      await Deno.chmod(rw, 0o777);
      const result = await ok(h, {
        run: "cat /in/input.txt; if touch /in/new 2>/dev/null; then echo ro-writable; " +
          "else echo ro-refused; fi; echo written > /out/result.txt",
        volumes: [
          { source: ro, target: "/in", readonly: true },
          { source: rw, target: "/out" },
        ],
      });
      assert.equal(result.stdout, "data\nro-refused\n");
      assert.equal(await Deno.readTextFile(`${rw}/result.txt`), "written\n");
      await assert.rejects(() => Deno.stat(`${ro}/new`), Deno.errors.NotFound);
    } finally {
      await Deno.remove(ro, { recursive: true });
      await Deno.remove(rw, { recursive: true });
    }
  },
);

containerdTest(
  "runStep() network none shows only lo; host shows the host's interfaces",
  async (h) => {
    const none = await ok(h, { run: "ls /sys/class/net" });
    assert.deepEqual(none.stdout.trim().split(/\s+/), ["lo"]);
    const host = await ok(h, { run: "ls /sys/class/net", network: "host", user: "0:0" });
    const hostNames = new Set(Deno.networkInterfaces().map((i) => i.name));
    const seen = host.stdout.trim().split(/\s+/);
    assert.ok(seen.length > 1, `host network shows ${seen.join(", ")}`);
    for (const name of hostNames) assert.ok(seen.includes(name), `${name} missing in ${seen}`);
  },
);

containerdTest(
  "runStep() with memory 16m kills a step that allocates more (exit 137)",
  async (h) => {
    const err = await fails(h, {
      run: "echo start; exec dd if=/dev/zero of=/dev/null bs=64M count=1",
      memory: "16m",
    });
    assert.equal(err.exitCode, 137);
    assert.equal(err.result.stdout, "start\n");
  },
);

containerdTest(
  "runStep() kills a step past its timeout within timeout + grace + 1 s",
  async (h) => {
    const started = Date.now();
    try {
      await runStep(base(h, { run: "sleep 60", timeoutMs: 1000 }), { gracePeriodMs: 1000 });
      assert.fail("a 60 s sleep finished within a 1 s timeout");
    } catch (err) {
      assertInstanceOf(err, StepTimeoutError);
      const elapsed = Date.now() - started;
      assert.ok(elapsed < 1000 + 1000 + 1000 + 1500, `took ${elapsed} ms`); // + start-up
      const e = err as StepTimeoutError<StepResult>;
      assert.equal(e.exitCode, 137);
      assert.equal(e.timeoutMs, 1000);
      await assertNothingLeft(h, e.result.containerId);
    }
  },
);

containerdTest(
  "runStep() stops on SIGTERM within the grace period when the step handles it",
  async (h) => {
    const started = Date.now();
    const err = await runStep(
      base(h, { run: "trap 'echo got-term; exit 0' TERM; sleep 60 & wait", timeoutMs: 800 }),
      { gracePeriodMs: 5000 },
    ).then(() => undefined, (e) => e);
    assertInstanceOf(err, StepTimeoutError);
    assert.ok(Date.now() - started < 800 + 3000, `took ${Date.now() - started} ms`);
    const e = err as StepTimeoutError<StepResult>;
    assert.equal(e.result.stdout, "got-term\n");
    await assertNothingLeft(h, e.result.containerId);
  },
);

containerdTest(
  "runStep() aborted mid-run kills the step and rejects with the reason",
  async (h) => {
    const controller = new AbortController();
    const lines: string[] = [];
    const started = Date.now();
    const running = runStep(base(h, { run: "echo started; sleep 60" }), {
      signal: controller.signal,
      gracePeriodMs: 500,
      onStdout: (line) => {
        lines.push(line);
        if (line === "started") controller.abort(new Error("stop requested"));
      },
    });
    await assertRejects(() => running, Error, "stop requested");
    assert.deepEqual(lines, ["started"]);
    assert.ok(Date.now() - started < 8000, `took ${Date.now() - started} ms`);
    await using c = await client(h);
    const { containers } = await c.containers.list({
      filters: ['labels."wfe.containerd/kind"==step'],
    });
    assert.deepEqual(containers.map((x) => x.id), []);
  },
);

containerdTest("runStep() streams lines to onStdout while the step runs", async (h) => {
  const seen: { line: string; at: number }[] = [];
  const result = await runStep(base(h, { run: "echo first; sleep 1.5; echo second" }), {
    onStdout: (line) => seen.push({ line, at: Date.now() }),
  });
  const end = Date.now();
  assert.deepEqual(seen.map((s) => s.line), ["first", "second"]);
  assert.ok(end - seen[0].at > 1000, "the first line arrived only at the end");
  await assertNothingLeft(h, result.containerId);
});

containerdTest(
  "runStep() runs 20 steps in parallel on one client without crossed outputs",
  async (h) => {
    await using c = await client(h);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        runStep(
          base(h, { stepName: `p${i}`, run: `echo '##wfe[output idx=${i}]'; echo line-${i}` }),
          {
            client: c,
          },
        )),
    );
    results.forEach((r, i) => {
      assert.equal(r.outputs.idx, String(i));
      assert.equal(r.stdout, `##wfe[output idx=${i}]\nline-${i}\n`);
      assert.equal(r.outputData[`p${i}.exit_code`], 0);
    });
    assert.equal(
      new Set(results.map((r) => r.containerId)).size,
      20,
    );
    for (const r of results) await assertNothingLeft(h, r.containerId);
    assert.ok(!c.closed, "runStep closed a client it did not open");
  },
);

containerdTest("runStep() captures 5 MiB of stdout intact", async (h) => {
  const result = await ok(h, { run: "seq 1 800000; echo '##wfe[output done=yes]'" });
  let expected = "";
  for (let i = 1; i <= 800000; i++) expected += `${i}\n`;
  expected += "##wfe[output done=yes]\n";
  assert.ok(expected.length > 5 * 1024 * 1024);
  assert.equal(result.stdout.length, expected.length);
  assert.ok(result.stdout === expected, "stdout differs");
  assert.equal(result.stdoutTruncated, false);
  assert.equal(result.outputs.done, "yes");
});

containerdTest("runStep() survives non-UTF-8 bytes in stdout", async (h) => {
  const result = await ok(h, { run: "printf '\\377\\376abc\\n##wfe[output k=v]\\n'" });
  assert.match(result.stdout, /abc\n/);
  assert.equal(result.outputs.k, "v");
});

containerdTest("runStep() rejects bad input before any container exists", async (h) => {
  await using c = await client(h);
  const before = (await c.containers.list({})).containers.length;
  const cases: [Partial<StepConfig>, RegExp][] = [
    [{ run: "true", user: "abc:" }, /user.*'abc:'/],
    [{ run: "true", memory: "lots" }, /memory.*'lots'/],
    [{ run: "true", cpu: "-1" }, /cpu '-1'/],
    [
      { run: "true", volumes: [{ source: "relative/dir", target: "/x" }] },
      /volumes\[0\]\.source 'relative\/dir'/,
    ],
    [{ run: "true", env: { "A=B": "x" } }, /env key 'A=B'/],
    [{ run: "true", env: { "A\0B": "x" } }, /env key 'A\\0B'/],
    [{ run: "true", network: "bridge" as "none" }, /network 'bridge'/],
    [{ run: "true", workingDir: "tmp" }, /workingDir 'tmp'/],
    [{ run: "true", timeoutMs: -5 }, /timeoutMs -5/],
  ];
  for (const [extra, pattern] of cases) {
    await assert.rejects(() => runStep(base(h, extra)), pattern);
  }
  // A user name the image does not have fails after resolving the image, still before creation.
  await assert.rejects(() => runStep(base(h, { run: "true", user: "abc" })), /abc/);
  const after = (await c.containers.list({})).containers.length;
  assert.equal(after, before);
});

containerdTest("runStep() reports a missing image with the names it tried", async (h) => {
  // pull 'never': the names tried and the command that pulls it.
  await assert.rejects(
    () => runStep(base(h, { image: "wfe.test/nothing:here", run: "true", pull: "never" })),
    /image 'wfe\.test\/nothing:here' is not in namespace 'wfe-test' \(tried wfe\.test\/nothing:here\) and the pull policy is 'never'; pull it first/,
  );
  // if-not-present: it is missing and the pull failed, and why (no such registry host here).
  await assert.rejects(
    () => runStep(base(h, { image: "127.0.0.1:1/nothing:here", run: "true" })),
    /registry 127\.0\.0\.1:1, repository nothing: image '127\.0\.0\.1:1\/nothing:here' is not in namespace 'wfe-test' and pulling it failed: cannot reach http:\/\/127\.0\.0\.1:1\/v2\/nothing\/manifests\/here/,
  );
});

containerdTest(
  "runStep() with a 25-day timeout and grace period runs the step to its end (no timer overflow)",
  async (h) => {
    const days25 = 25 * 24 * 3600 * 1000; // above setTimeout's 2^31-1 ms
    const result = await runStep(base(h, { run: "sleep 0.2; echo done", timeoutMs: days25 }), {
      gracePeriodMs: days25,
    });
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout, "done\n");
    await assertNothingLeft(h, result.containerId);
  },
);

/**
 * The client (and every client view made from it: namespace, lease), with `stop` aborted right
 * after Tasks.Create answers, i.e. while runStep is still creating the container.
 */
function abortingAfterTaskCreate(
  c: ContainerdClient,
  stop: AbortController,
  starts: string[],
): ContainerdClient {
  const isClient = (v: unknown): v is ContainerdClient =>
    typeof v === "object" && v !== null && "tasks" in v && "withLease" in v;
  return new Proxy(c, {
    get(target, prop) {
      if (prop === "tasks") {
        return new Proxy(target.tasks, {
          get(tasks, name) {
            const value = Reflect.get(tasks, name);
            if (name === "start") {
              return (...args: Parameters<typeof tasks.start>) => {
                starts.push(args[0].containerId ?? "");
                return tasks.start(...args);
              };
            }
            if (name !== "create") return typeof value === "function" ? value.bind(tasks) : value;
            return async (...args: Parameters<typeof tasks.create>) => {
              const created = await tasks.create(...args);
              stop.abort(new Error("aborted during creation"));
              return created;
            };
          },
        });
      }
      const value = Reflect.get(target, prop);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const result = value.apply(target, args);
        return isClient(result) ? abortingAfterTaskCreate(result, stop, starts) : result;
      };
    },
  });
}

containerdTest(
  "runStep() aborted while its container is created never starts the command",
  async (h) => {
    const dir = await Deno.makeTempDir({ prefix: "wfe-abort-" });
    try {
      await using c = await client(h);
      const starts: string[] = [];
      for (let i = 0; i < 5; i++) {
        const stop = new AbortController();
        await assertRejects(
          () =>
            runStep(
              base(h, {
                run: `touch /mark/ran-${i}`,
                user: "0:0",
                volumes: [{ source: dir, target: "/mark" }],
                stepName: `abort-${i}`,
              }),
              { client: abortingAfterTaskCreate(c, stop, starts), signal: stop.signal },
            ),
          Error,
          "aborted during creation",
        );
        assert.deepEqual(starts, [], `attempt ${i}: Tasks.Start was called`);
        assert.deepEqual(
          await Array.fromAsync(Deno.readDir(dir)),
          [],
          `attempt ${i}: the command ran`,
        );
      }
      const { containers } = await c.containers.list({});
      assert.ok(!containers.some((x) => x.labels["wfe.containerd/name"]?.startsWith("abort-")));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
