/**
 * `cli prune`, `images`, `info` and `version` against the harness's containerd.
 *
 * @module
 */

import assert from "node:assert/strict";
import { chainId } from "../../lib/oci/chain_id.ts";
import type { PruneReport } from "../../lib/prune.ts";
import { assertExists } from "../asserts.ts";
import { clean, cli, client, readUntil, spawnCli, stepFlags, taskOf } from "./_cli.ts";
import { containerdTest } from "../harness.ts";
import { TaskStatus } from "../../proto/gen/types.ts";

containerdTest("cli prune finds and removes the container of a killed run", async (h) => {
  await clean(h, async (s) => {
    const name = `killed-${s.token}`;
    const g = s.g;
    const { child, stdout, close } = spawnCli([
      ...g,
      "run",
      ...stepFlags(h),
      "--name",
      name,
      "--",
      "sh",
      "-c",
      "echo started; exec sleep 60",
    ]);
    let containerId = "";
    try {
      await readUntil(stdout, "started\n");
      const task = await taskOf(h, `wfe-${name}-`, s.namespace);
      assertExists(task, "no task for the run");
      containerId = task.id;
      child.kill("SIGKILL"); // the CLI dies; its container keeps running
      assert.equal((await child.status).signal, "SIGKILL");
    } finally {
      await close();
    }
    assert.ok(
      (await taskOf(h, containerId, s.namespace))?.status === TaskStatus.RUNNING,
      "the container died with the CLI",
    );
    assert.ok(
      (await Array.fromAsync(Deno.readDir(s.ioDir))).some((e) =>
        e.name.startsWith(`wfe-io-${containerId}.`)
      ),
    );

    const dry = await cli([...g, "prune", "--dry-run"]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(
      dry.stdout,
      new RegExp(
        `^would remove container ${containerId} \\(step ${name}, running, \\S+ old\\)$`,
        "m",
      ),
    );
    assert.match(dry.stdout, /^dry run: would remove 1 container, .*; nothing was removed$/m);
    assert.ok(await taskOf(h, containerId, s.namespace), "a dry run removed the container");

    const real = await cli([...g, "prune", "--grace-period", "500ms", "--json"]);
    assert.equal(real.code, 0, real.stderr);
    const report: PruneReport = JSON.parse(real.stdout);
    const removed = report.containers.find((c) => c.id === containerId);
    assertExists(removed, real.stdout);
    assert.equal(removed.status, "running");
    assert.deepEqual(removed.removed, ["task", "container", "snapshot", "lease", "capture dir"]);
    assert.deepEqual(report.errors, []);
    const after = await cli([...g, "prune"]);
    assert.equal(
      after.stdout,
      `removed 0 containers, 0 leases, 0 snapshots, 0 capture dirs in namespace ${s.namespace}\n`,
    );
  }, { privateNamespace: true }); // prune must not touch what tests running in parallel create
});

containerdTest("cli images ls / rm, chain-id and manifest", async (h) => {
  await clean(h, async (s) => {
    const g = s.g;
    const copy = `wfe.test/busybox:cli-copy-${s.token}`;
    await using c = await client(h);
    const { image } = await c.images.get({ name: h.images.oneLayer.name });
    await c.images.create({ image: { name: copy, target: image!.target, labels: {} } });
    try {
      const quiet = await cli([...g, "images", "ls", "-q"]);
      assert.equal(quiet.code, 0, quiet.stderr);
      const names = quiet.stdout.trimEnd().split("\n");
      for (const n of [h.images.oneLayer.name, h.images.threeLayer.name, copy]) {
        assert.ok(names.includes(n), n);
      }
      const table = await cli([...g, "images", "ls"]);
      assert.match(table.stdout, /^NAME +DIGEST +SIZE +PLATFORM +CREATED\n/);
      const digest = h.images.oneLayer.manifestDigest.slice(
        "sha256:".length,
        "sha256:".length + 12,
      );
      assert.match(
        table.stdout,
        new RegExp(
          `\n${
            h.images.oneLayer.name.replace(/[.]/g, "\\.")
          } +${digest} +[\\d.]+ [KM]iB +${h.images.oneLayer.platform} +`,
        ),
      );

      const rm = await cli([...g, "images", "rm", copy, "nonexistent.test/nothing:1"]);
      assert.equal(rm.code, 125);
      assert.equal(rm.stdout, `removed ${copy}\n`);
      assert.match(rm.stderr, /^error: no image nonexistent\.test\/nothing:1 in namespace /);
      assert.ok(!(await cli([...g, "images", "ls", "-q"])).stdout.includes(copy));

      const chain = await cli([...g, "chain-id", h.images.threeLayer.name]);
      assert.equal(chain.code, 0, chain.stderr);
      assert.equal(chain.stdout, `${await chainId(h.images.threeLayer.diffIds)}\n`);

      const manifest = await cli([...g, "manifest", h.images.threeLayer.name]);
      assert.equal(manifest.code, 0, manifest.stderr);
      const m = JSON.parse(manifest.stdout);
      assert.deepEqual(
        m.layers.map((l: { digest: string }) => l.digest),
        h.images.threeLayer.layerDigests,
      );
      assert.equal(m.config.digest, h.images.threeLayer.configDigest);
      const config = JSON.parse(
        (await cli([...g, "manifest", "--config", h.images.threeLayer.name])).stdout,
      );
      assert.deepEqual(config.rootfs.diff_ids, h.images.threeLayer.diffIds);

      const missing = await cli([...g, "chain-id", "nonexistent.test/nothing:1"]);
      assert.equal(missing.code, 125);
      assert.match(
        missing.stderr,
        /^error: Images\.Get: image not found in namespace '[^']+' \(tried .*\) \(NOT_FOUND\)\n$/,
      );
    } finally {
      await c.images.delete({ name: copy }).catch(() => {});
    }
  });
});

containerdTest("cli info and version describe the daemon", async (h) => {
  await clean(h, async (s) => {
    const g = s.g;
    const info = await cli([...g, "info", "--json"]);
    assert.equal(info.code, 0, info.stderr);
    const data = JSON.parse(info.stdout);
    assert.equal(data.address, `unix://${h.address}`);
    assert.equal(data.addressSource, "--address");
    assert.equal(data.namespace, h.namespace);
    assert.equal(data.serverVersion, h.version);
    assert.ok(data.snapshotters.includes(h.snapshotter), data.snapshotters);
    assert.ok(data.namespaces.includes(h.namespace));
    assert.equal(data.ioDir, s.ioDir);
    const text = await cli([...g, "info"]);
    assert.match(
      text.stdout,
      new RegExp(`^Address: +unix://${h.address} \\(--address\\)\nNamespace: +${h.namespace}\n`),
    );
    assert.match(text.stdout, /\nSnapshotters: +.*\(default: \w+\)\n/);
    const version = await cli([...g, "version"]);
    assert.equal(version.code, 0, version.stderr);
    assert.match(
      version.stdout,
      /^Client:\n {2}Version: +\d+\.\d+\.\d+\n {2}Deno: +\S+\nServer:\n/,
    );
    assert.match(
      version.stdout,
      new RegExp(`\n {2}Version: +${h.version.replace(/[.~]/g, "\\$&")}\n`),
    );
    // The address also comes from the environment.
    const fromEnv = await cli(["info", "--json"], {
      WFE_CONTAINERD_ADDR: `unix://${h.address}`,
      CONTAINERD_NAMESPACE: h.namespace,
    });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    assert.equal(JSON.parse(fromEnv.stdout).addressSource, "WFE_CONTAINERD_ADDR");
    assert.equal(JSON.parse(fromEnv.stdout).namespace, h.namespace);
  });
});
