import assert from "node:assert/strict";
import { connect, type ContainerdClient } from "../lib/grpc/connection.ts";
import { isNotFound } from "../lib/grpc/errors.ts";
import { resolveImage } from "../lib/image/resolve.ts";
import { LABELS, LEASE_EXPIRE_LABEL, MANAGED_BY } from "../lib/labels.ts";
import { prune, type PruneReport } from "../lib/prune.ts";
import { captureDirContainerId } from "../lib/runtime/capture.ts";
import { createContainerTask } from "../lib/runtime/container.ts";
import { DEFAULT_RUNTIME, leaseIdOf } from "../lib/runtime/task.ts";
import { cleanupService } from "../lib/service/manage.ts";
import { runService } from "../lib/service/start.ts";
import { validateStepConfig } from "../lib/step/config.ts";
import { buildStepSpec } from "../lib/step/run.ts";
import { importOneLayer } from "./daemon_helpers.ts";
import { containerdTest, type HarnessInfo } from "./harness.ts";

async function client(h: HarnessInfo, namespace: string): Promise<ContainerdClient> {
  return await connect(`unix://${h.address}`, { namespace });
}

function uniqueId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}

/** Containers, tasks, leases and snapshots of ours in the client's namespace. */
async function leftovers(c: ContainerdClient, h: HarnessInfo): Promise<string[]> {
  const left: string[] = [];
  for (const x of (await c.containers.list({})).containers) left.push(`container ${x.id}`);
  for (const t of (await c.tasks.list({})).tasks) left.push(`task ${t.id}`);
  for (const l of (await c.leases.list({})).leases) {
    if (l.labels[LABELS.managedBy] === MANAGED_BY) left.push(`lease ${l.id}`);
  }
  for await (const batch of c.snapshots.list({ snapshotter: h.snapshotter })) {
    for (const info of batch.info) {
      if (info.labels[LABELS.managedBy] === MANAGED_BY) left.push(`snapshot ${info.name}`);
    }
  }
  return left;
}

/**
 * Runs `fn` in a namespace of its own (with the one-layer image imported) and a private IO dir,
 * so that prune never touches what tests running in parallel create; afterwards nothing of ours
 * may be left in either, and the namespace is deleted.
 */
async function scoped(
  h: HarnessInfo,
  fn: (c: ContainerdClient, ioDir: string) => Promise<void>,
): Promise<void> {
  const namespace = uniqueId("wfe-prune-test");
  const ioDir = await Deno.makeTempDir({ prefix: "wfe-prune-test-" });
  await importOneLayer(h, namespace);
  await using c = await client(h, namespace);
  try {
    await fn(c, ioDir);
    assert.deepEqual(await leftovers(c, h), [], "left behind");
    assert.deepEqual(await Array.fromAsync(Deno.readDir(ioDir)), [], "capture dirs left behind");
  } finally {
    await Deno.remove(ioDir, { recursive: true });
    await c.images.delete({ name: h.images.oneLayer.name, sync: true }).catch(() => {});
    await c.namespaces.delete({ name: namespace });
  }
}

async function orphanLease(c: ContainerdClient, id: string, labels: Record<string, string> = {}) {
  await c.leases.create({
    id,
    labels: {
      [LEASE_EXPIRE_LABEL]: new Date(Date.now() + 3600_000).toISOString(),
      [LABELS.managedBy]: MANAGED_BY,
      ...labels,
    },
  });
}

async function orphanSnapshot(c: ContainerdClient, h: HarnessInfo, key: string): Promise<void> {
  const image = await resolveImage(c, h.images.oneLayer.name);
  await c.snapshots.prepare({
    snapshotter: h.snapshotter,
    key,
    parent: image.chainId,
    // gc.root keeps the garbage collector from taking it before prune does.
    labels: { [LABELS.managedBy]: MANAGED_BY, "containerd.io/gc.root": "test" },
  });
}

async function orphanDir(ioDir: string, id: string): Promise<string> {
  const dir = `${ioDir}/wfe-io-${id}`;
  await Deno.mkdir(dir);
  await Deno.writeTextFile(`${dir}/stdout`, "out\n");
  await Deno.writeTextFile(`${dir}/stderr`, "");
  return dir;
}

/** The capture dirs of `id` under `ioDir`. */
function captureDirsOf(ioDir: string, id: string): string[] {
  return [...Deno.readDirSync(ioDir)].map((e) => e.name)
    .filter((name) => captureDirContainerId(name) === id);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Creates a container with a task (created, never started) the way runStep does. */
async function createdTask(c: ContainerdClient, h: HarnessInfo, id: string, ioDir: string) {
  const image = await resolveImage(c, h.images.oneLayer.name);
  const step = validateStepConfig({ image: image.name, run: "echo never" });
  const spec = buildStepSpec(
    step,
    image.config.config,
    { uid: 65534, gid: 65534 },
    c.namespace,
    id,
  );
  const created = await createContainerTask(c, {
    containerId: id,
    kind: "step",
    name: "never-started",
    imageName: image.name,
    chainId: image.chainId,
    spec,
    snapshotter: h.snapshotter,
    runtime: DEFAULT_RUNTIME,
    runcOptions: { root: h.runcRoot },
    capture: { ioDir },
    leaseExpireMs: 3600_000,
  });
  return created;
}

containerdTest(
  "prune() removes a container with its task, snapshot, lease and capture dir (dry run first)",
  (h) =>
    scoped(h, async (c, ioDir) => {
      const id = uniqueId("wfe-prune-created");
      const created = await createdTask(c, h, id, ioDir);
      const dry = await prune(c, { dryRun: true, ioDir, gracePeriodMs: 500 });
      assert.equal(dry.dryRun, true);
      assert.equal(dry.namespace, c.namespace);
      assert.deepEqual(dry.containers.map((x) => x.id), [id]);
      const listed = dry.containers[0];
      assert.equal(listed.kind, "step");
      assert.equal(listed.name, "never-started");
      assert.equal(listed.status, "created");
      assert.deepEqual(listed.removed, []);
      assert.ok(listed.ageMs !== null && listed.ageMs >= 0 && listed.ageMs < 60_000);
      // Its lease, snapshot and capture dir are the container's, not listed on their own.
      assert.deepEqual([dry.leases, dry.snapshots, dry.captureDirs, dry.kept], [[], [], [], []]);
      assert.ok((await c.containers.get({ id })).container, "a dry run removed the container");
      assert.ok(await exists(created.capture.dir));

      const report = await prune(c, { ioDir, gracePeriodMs: 500 });
      assert.deepEqual(report.containers.map((x) => [x.id, x.removed]), [
        [id, ["task", "container", "snapshot", "lease", "capture dir"]],
      ]);
      assert.deepEqual(report.errors, []);
      await created.wait.catch(() => {});
    }),
);

containerdTest(
  "prune() removes orphan leases, snapshots and capture dirs labelled as ours, and nothing else",
  (h) =>
    scoped(h, async (c, ioDir) => {
      const id = uniqueId("wfe-prune-orphan");
      const foreignLease = uniqueId("not-ours");
      const foreignDir = `${ioDir}/not-ours`;
      await orphanLease(c, leaseIdOf(id));
      await orphanSnapshot(c, h, id);
      const dir = await orphanDir(ioDir, id);
      const otherId = uniqueId("wfe-prune-dir");
      const otherDir = await orphanDir(ioDir, otherId);
      await c.leases.create({ id: foreignLease, labels: {} });
      await Deno.mkdir(foreignDir);
      try {
        const dry: PruneReport = await prune(c, { dryRun: true, ioDir });
        assert.deepEqual(dry.leases.map((l) => l.id), [leaseIdOf(id)]);
        assert.deepEqual(dry.snapshots.map((s) => [s.snapshotter, s.key]), [[h.snapshotter, id]]);
        assert.deepEqual(dry.captureDirs.map((d) => d.path).sort(), [dir, otherDir].sort());
        assert.ok(await exists(dir));
        assert.equal((await c.leases.list({ filters: [`id==${leaseIdOf(id)}`] })).leases.length, 1);

        const report = await prune(c, { ioDir });
        assert.deepEqual(report.errors, []);
        assert.deepEqual(report.leases.map((l) => l.id), [leaseIdOf(id)]);
        assert.deepEqual(report.snapshots.map((s) => s.key), [id]);
        assert.deepEqual(report.captureDirs.map((d) => d.containerId).sort(), [id, otherId].sort());
        await assert.rejects(
          () => c.snapshots.stat({ snapshotter: h.snapshotter, key: id }),
          (e: unknown) => isNotFound(e),
        );
        // What is not labelled or named as ours stays.
        assert.equal((await c.leases.list({ filters: [`id==${foreignLease}`] })).leases.length, 1);
        assert.ok(await exists(foreignDir));
      } finally {
        await c.leases.delete({ id: foreignLease }).catch(() => {});
        await Deno.remove(foreignDir).catch(() => {});
      }
    }),
);

containerdTest(
  "prune() with olderThanMs keeps what is younger and says why",
  (h) =>
    scoped(h, async (c, ioDir) => {
      const id = uniqueId("wfe-prune-young");
      await orphanLease(c, leaseIdOf(id));
      await orphanSnapshot(c, h, id);
      const created = await createdTask(c, h, uniqueId("wfe-prune-young-task"), ioDir);
      const report = await prune(c, { ioDir, olderThanMs: 3600_000 });
      assert.deepEqual(
        [report.containers, report.leases, report.snapshots, report.captureDirs],
        [[], [], [], []],
      );
      assert.deepEqual(
        report.kept.map((k) => `${k.what} ${k.id}`).sort(),
        [`container ${created.containerId}`, `lease ${leaseIdOf(id)}`, `snapshot ${id}`].sort(),
      );
      assert.ok(
        report.kept.every((k) => /^created \d+s ago$/.test(k.reason)),
        JSON.stringify(report.kept),
      );
      // Once old enough (threshold 1 ms), all of it goes.
      await new Promise((r) => setTimeout(r, 5));
      const later = await prune(c, { ioDir, olderThanMs: 1, gracePeriodMs: 500 });
      assert.deepEqual(later.containers.map((x) => x.id), [created.containerId]);
      assert.deepEqual(later.leases.map((l) => l.id), [leaseIdOf(id)]);
      assert.deepEqual(later.snapshots.map((s) => s.key), [id]);
      await created.wait.catch(() => {});
    }),
);

containerdTest(
  "prune() keeps services unless includeServices",
  (h) =>
    scoped(h, async (c, ioDir) => {
      const id = uniqueId("svc-prune");
      try {
        await runService(undefined, id, h.images.oneLayer.name, {}, {
          client: c,
          command: ["sleep", "600"],
          snapshotter: h.snapshotter,
          runcOptions: { root: h.runcRoot },
          ioDir,
          readiness: false,
        });
        const report = await prune(c, { ioDir });
        assert.deepEqual(report.containers, []);
        assert.deepEqual(report.kept, [{ what: "container", id, reason: "service" }]);
        assert.deepEqual(report.captureDirs, [], "the service's dir went");
        assert.ok(captureDirsOf(ioDir, id).length === 1, "the service's capture dir is kept");
        const all = await prune(c, { ioDir, includeServices: true, gracePeriodMs: 500 });
        assert.deepEqual(all.containers.map((x) => [x.id, x.kind, x.status, x.removed]), [
          [id, "service", "running", ["task", "container", "snapshot", "lease", "capture dir"]],
        ]);
      } finally {
        await cleanupService(undefined, id, { client: c, gracePeriodMs: 0 }).catch(() => {});
      }
    }),
);

containerdTest(
  "prune() keeps a capture dir whose lease lives in another namespace",
  (h) =>
    scoped(h, async (c, ioDir) => {
      const other = c.withNamespace(uniqueId("wfe-prune-ns"));
      const id = uniqueId("wfe-prune-elsewhere");
      try {
        await other.namespaces.create({ namespace: { name: other.namespace, labels: {} } });
        await orphanLease(other, leaseIdOf(id));
        const dir = await orphanDir(ioDir, id);
        const report = await prune(c, { ioDir });
        assert.deepEqual(report.captureDirs, []);
        assert.ok(await exists(dir));
        // The other namespace's own prune removes both.
        const there = await prune(other, { ioDir });
        assert.deepEqual(there.leases.map((l) => l.id), [leaseIdOf(id)]);
        assert.deepEqual(there.captureDirs.map((d) => d.path), [dir]);
        assert.ok(!await exists(dir));
      } finally {
        await other.leases.delete({ id: leaseIdOf(id) }).catch(() => {});
        await other.namespaces.delete({ name: other.namespace }).catch(() => {});
      }
    }),
);

containerdTest(
  "prune() removes a task whose container record is gone",
  (h) =>
    scoped(h, async (c, ioDir) => {
      const id = uniqueId("wfe-prune-headless");
      const created = await createdTask(c, h, id, ioDir);
      // As wfe-containerd's cleanup can leave it: the record deleted, the task still there.
      await c.containers.delete({ id });
      assert.ok((await c.tasks.list({})).tasks.some((t) => t.id === id));
      const report = await prune(c, { ioDir, gracePeriodMs: 500 });
      assert.deepEqual(report.errors, []);
      assert.equal(report.containers.length, 1, JSON.stringify(report));
      const [removed] = report.containers;
      assert.equal(removed.id, id);
      assert.equal(removed.status, "no container record");
      assert.deepEqual(removed.removed, ["task", "snapshot", "lease", "capture dir"]);
      await created.wait.catch(() => {});
    }),
);

containerdTest(
  "prune() leaves capture dirs that another daemon owns (shared IO dir) and removes this daemon's orphans",
  (h) =>
    scoped(h, async (c, ioDir) => {
      const { uuid } = await c.introspection.server({});
      assert.ok(uuid.length > 0, "the daemon has a UUID");
      const theirs = await orphanDir(ioDir, uniqueId("wfe-prune-theirs"));
      await Deno.writeTextFile(
        `${theirs}/owner`,
        JSON.stringify({ daemon: "another-daemon-uuid", namespace: "elsewhere" }),
      );
      const oursId = uniqueId("wfe-prune-ours");
      const ours = await orphanDir(ioDir, oursId);
      await Deno.writeTextFile(
        `${ours}/owner`,
        JSON.stringify({ daemon: uuid, namespace: c.namespace }),
      );
      const report = await prune(c, { ioDir });
      assert.deepEqual(report.captureDirs.map((d) => d.containerId), [oursId]);
      assert.ok(!await exists(ours));
      assert.ok(await exists(theirs), "another daemon's capture dir is kept");
      assert.ok(
        report.kept.some((k) =>
          k.id === theirs &&
          k.reason === "owned by another daemon (another-daemon-uuid, namespace elsewhere)"
        ),
        JSON.stringify(report.kept),
      );
      await Deno.remove(theirs, { recursive: true }); // the other daemon's to prune
    }),
);

containerdTest(
  "a task's capture dir names its daemon and namespace (owner file)",
  (h) =>
    scoped(h, async (c, ioDir) => {
      const { uuid } = await c.introspection.server({});
      const id = uniqueId("wfe-owner");
      const created = await createdTask(c, h, id, ioDir);
      const owner = JSON.parse(await Deno.readTextFile(`${created.capture.dir}/owner`));
      assert.deepEqual(owner, { daemon: uuid, namespace: c.namespace });
      const report = await prune(c, { ioDir });
      assert.deepEqual(report.containers.map((x) => x.id), [id]);
      assert.ok(!await exists(created.capture.dir));
    }),
);
