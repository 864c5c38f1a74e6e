import assert from "node:assert/strict";
import { connect } from "../../lib/grpc/connection.ts";
import { cleanupService } from "../../lib/service/manage.ts";
import { runService } from "../../lib/service/start.ts";
import { StepError, StepTimeoutError } from "../../lib/step/errors.ts";
import { runStep, type StepResult } from "../../lib/step/run.ts";
import { assertNothingLeft, e2eClient, e2eTest, remoteStep } from "./e2e.ts";
import { writeTar } from "../oci_archive.ts";

e2eTest("e2e: the client reaches containerd only over TCP, as tcp:// and http://", async (e) => {
  assert.match(e.address, /^tcp:\/\//);
  assert.equal(Deno.env.get("WFE_CONTAINERD_ADDR"), e.address);
  for (const address of [e.address, e.address.replace(/^tcp:/, "http:")]) {
    await using c = await connect(address, { namespace: e.namespace });
    assert.equal(c.address.transport, "tcp");
    assert.ok(c.serverVersion.version.length > 0);
    const { image } = await c.images.get({ name: e.images.oneLayer.name });
    assert.equal(image?.target?.digest, e.images.oneLayer.manifestDigest);
  }
  // The default address comes from WFE_CONTAINERD_ADDR.
  await using c = await connect();
  assert.equal(c.address.transport, "tcp");
});

e2eTest("e2e: runStep with outputs and env, capture files in the shared WFE_IO_DIR", async (e) => {
  let sawCaptureDir = false;
  const result = await runStep(
    remoteStep(e, {
      stepName: "remote",
      run: 'echo "$GREETING"; echo "##wfe[output where=$(hostname)]"; echo err >&2',
      env: { GREETING: "hello remote" },
      workflowData: { run_id: 42 },
    }),
    {
      onStdout: () => {
        for (const entry of Deno.readDirSync(e.ioDir)) {
          if (entry.name.startsWith("wfe-io-wfe-remote-")) sawCaptureDir = true;
        }
      },
    },
  );
  assert.equal(result.exitCode, 0);
  assert.equal(result.stdout.split("\n")[0], "hello remote");
  assert.ok(result.outputs.where.length > 0);
  assert.equal(result.stderr, "err\n");
  assert.equal(result.outputData["remote.exit_code"], 0);
  assert.ok(sawCaptureDir, `no capture dir appeared under ${e.ioDir}`);
  await assertNothingLeft(e, result.containerId);
});

e2eTest("e2e: runStep passes exit codes through and kills on timeout", async (e) => {
  const failed = await runStep(remoteStep(e, { run: "echo bye >&2; exit 3" })).then(
    () => undefined,
    (err) => err,
  );
  assert.ok(failed instanceof StepError, String(failed));
  assert.equal(failed.exitCode, 3);
  assert.equal(failed.stderrTail, "bye\n");
  await assertNothingLeft(e, (failed.result as StepResult).containerId);

  const started = Date.now();
  const timedOut = await runStep(remoteStep(e, { run: "sleep 60", timeoutMs: 1000 }), {
    gracePeriodMs: 500,
  }).then(() => undefined, (err) => err);
  assert.ok(timedOut instanceof StepTimeoutError, String(timedOut));
  assert.ok(Date.now() - started < 1000 + 500 + 1000 + 2000, `took ${Date.now() - started} ms`);
  await assertNothingLeft(e, (timedOut.result as StepResult).containerId);
});

e2eTest(
  "e2e: a volume from the shared dir is readable and writable from the remote host",
  async (e) => {
    const base = await Deno.makeTempDir({ dir: e.ioDir, prefix: "vol-" });
    try {
      await Deno.chmod(base, 0o755);
      await Deno.mkdir(`${base}/in`, { mode: 0o755 });
      await Deno.mkdir(`${base}/out`);
      await Deno.chmod(`${base}/out`, 0o777);
      await Deno.writeTextFile(`${base}/in/data.txt`, "from the client side\n");
      await Deno.chmod(`${base}/in/data.txt`, 0o644);
      const result = await runStep(remoteStep(e, {
        run: "cat /in/data.txt; echo from the remote side > /out/result.txt; " +
          "touch /in/x 2>/dev/null && echo writable || echo read-only",
        volumes: [
          { source: `${base}/in`, target: "/in", readonly: true },
          { source: `${base}/out`, target: "/out" },
        ],
      }));
      assert.equal(result.stdout, "from the client side\nread-only\n");
      assert.equal(await Deno.readTextFile(`${base}/out/result.txt`), "from the remote side\n");
      await assertNothingLeft(e, result.containerId);
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
);

e2eTest("e2e: network none shows only lo on the remote host", async (e) => {
  const result = await runStep(remoteStep(e, { run: "ls /sys/class/net" }));
  assert.deepEqual(result.stdout.trim().split(/\s+/), ["lo"]);
  await assertNothingLeft(e, result.containerId);
});

e2eTest("e2e: 5 MiB of stdout arrives intact through the shared dir", async (e) => {
  const result = await runStep(remoteStep(e, { run: "seq 1 800000" }));
  let expected = "";
  for (let i = 1; i <= 800000; i++) expected += `${i}\n`;
  assert.ok(expected.length > 5 * 1024 * 1024);
  assert.equal(result.stdout.length, expected.length);
  assert.ok(result.stdout === expected, "stdout differs");
  await assertNothingLeft(e, result.containerId);
});

e2eTest("e2e: runService with tcp readiness on the remote host, then cleanupService", async (e) => {
  const port = 18000 + Math.floor(Math.random() * 2000);
  const id = `svc-e2e-${crypto.randomUUID().slice(0, 8)}`;
  // The page comes in as an input: packed here, sent through the content store.
  const page = await Deno.makeTempFile({ prefix: "wfe-e2e-page-" });
  await Deno.writeTextFile(page, "remote-service\n");
  const svc = await runService(e.address, id, e.images.oneLayer.name, {}, {
    namespace: e.namespace,
    snapshotter: e.snapshotter,
    runcOptions: e.runcRoot ? { root: e.runcRoot } : undefined,
    host: e.host,
    entrypoint: ["/bin/sh", "-c", `exec httpd -f -p ${port} -h /www`],
    inputs: [{ source: page, target: "/www/index.html", mode: 0o644 }],
    ports: [port],
    readiness: { intervalMs: 200, timeoutMs: 15_000 },
  }).finally(() => Deno.remove(page));
  try {
    assert.deepEqual(svc.endpoints, [`${e.host}:${port}`]);
    const res = await fetch(`http://${e.host}:${port}/`);
    assert.equal(await res.text(), "remote-service\n");
  } finally {
    await cleanupService(e.address, id, { namespace: e.namespace, gracePeriodMs: 1000 });
  }
});

e2eTest(
  "e2e: step inputs and collect go through a remote daemon's content store, none left",
  async (e) => {
    await using c = await e2eClient(e);
    const blobs = async () => {
      const out: string[] = [];
      for await (const r of c.content.list({})) out.push(...r.info.map((i) => i.digest));
      return out.sort();
    };
    const before = await blobs();
    const dir = await Deno.makeTempDir({ prefix: "wfe-e2e-inputs-" });
    try {
      await Deno.writeTextFile(`${dir}/notes.txt`, "made on the client\n");
      // A tar stream exists only in this process: no path the daemon could read.
      const tar = writeTar([{ type: "file", path: "gen/v.txt", content: "v1\n" }]);
      const result = await runStep(remoteStep(e, {
        run: "cat /in/notes.txt /in/gen/v.txt; stat -c '%u:%g' /in/notes.txt; " +
          "mkdir -p /tmp/out && echo built > /tmp/out/artifact.txt",
        user: "1000:1000",
        // Collected through the differ and the content store, not the shared IO dir.
        collect: [{ path: "/tmp/out", to: `${dir}/out` }],
        inputs: [
          { source: dir, target: "/in" },
          { source: new Blob([tar as Uint8Array<ArrayBuffer>]).stream(), target: "/in" },
        ],
      }));
      assert.equal(result.stdout, "made on the client\nv1\n1000:1000\n");
      assert.deepEqual(result.collected[0].files, [`${dir}/out/artifact.txt`]);
      assert.equal(await Deno.readTextFile(`${dir}/out/artifact.txt`), "built\n");
      await assertNothingLeft(e, result.containerId);
      assert.deepEqual(await blobs(), before, "an input or diff blob was left");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

e2eTest(
  "e2e: inputs and collect work from a directory the daemon cannot see (a private mount namespace)",
  async (e) => {
    // The client runs in a mount namespace of its own where `dir` is a private tmpfs: nothing
    // it writes there exists for the daemon, so the files can only travel through containerd.
    const dir = await Deno.makeTempDir({ prefix: "wfe-e2e-private-" });
    try {
      const client = new URL("./_private_client.ts", import.meta.url).pathname;
      const out = await new Deno.Command("unshare", {
        args: [
          "--mount",
          "--propagation",
          "private",
          "--",
          "sh",
          "-c",
          'mount -t tmpfs wfe-private "$1" && exec "$2" run -A "$3" "$4" "$1"',
          "sh",
          dir,
          Deno.execPath(),
          client,
          JSON.stringify(e),
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      const seen = JSON.parse(new TextDecoder().decode(out.stdout));
      assert.equal(seen.stdout, "written in a private mount namespace\n");
      assert.deepEqual(seen.files, [`${dir}/out/made.txt`]);
      assert.equal(seen.made, "made remotely\n");
      // Outside that namespace (where the daemon is) the directory was empty all along.
      assert.deepEqual([...Deno.readDirSync(dir)], []);
      await assertNothingLeft(e, seen.containerId);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
