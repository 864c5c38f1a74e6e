/**
 * The heavier parts of bench/e2e.ts: many steps at once, a daemon with 100 running tasks,
 * leftovers for prune, and a realistic image for user lookups.
 *
 * @module
 */

import { pooledMap } from "../lib/_util/async.ts";
import type { ContainerdClient } from "../lib/grpc/connection.ts";
import { resolveImage } from "../lib/image/resolve.ts";
import { USER_FILES_LABEL } from "../lib/image/user_files.ts";
import { prune } from "../lib/prune.ts";
import { createContainerTask } from "../lib/runtime/container.ts";
import { removeContainer } from "../lib/runtime/remove.ts";
import { newContainerId } from "../lib/runtime/task.ts";
import { validateStepConfig } from "../lib/step/config.ts";
import { stepSpec } from "../lib/step/run.ts";
import { runStep } from "../lib/step/run.ts";
import type { StepConfig } from "../lib/step/config.ts";
import { ctr, type HarnessInfo } from "../tests/harness.ts";
import { importBuilt } from "../tests/daemon_helpers.ts";
import {
  buildImage,
  busyboxBaseLayer,
  readStaticBusybox,
  type TarEntry,
} from "../tests/oci_archive.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** The label that makes the runc shim serve every container of a group. */
export const SHIM_GROUP_LABEL = "io.containerd.runc.v2.group";

/** A step config on the harness daemon. */
export function benchStep(h: HarnessInfo, extra: Partial<StepConfig> = {}): StepConfig {
  return {
    image: h.images.oneLayer.name,
    snapshotter: h.snapshotter,
    runcOptions: { root: h.runcRoot },
    ...extra,
  };
}

let seq = 0;

/** `ctr run --rm` arguments for one container. */
export function ctrRunArgs(h: HarnessInfo, image: string, command: string[]): string[] {
  return [
    "run",
    "--rm",
    "--runc-root",
    h.runcRoot,
    "--snapshotter",
    h.snapshotter,
    image,
    `bench-${Deno.pid}-${seq++}`,
    ...command,
  ];
}

/** `count` `echo hi` steps, `limit` at a time; wall ms. */
export async function manySteps(
  h: HarnessInfo,
  client: ContainerdClient,
  count: number,
  limit: number,
  labels?: Record<string, string>,
): Promise<number> {
  const t = performance.now();
  await pooledMap(Array.from({ length: count }), limit, async () => {
    const r = await runStep(benchStep(h, { run: "echo hi", labels }), { client });
    if (r.stdout !== "hi\n") throw new Error(`a step printed ${r.stdout}`);
  });
  return performance.now() - t;
}

/** `count` `ctr run --rm ... echo hi`, `limit` at a time; wall ms. */
export async function manyCtr(h: HarnessInfo, count: number, limit: number): Promise<number> {
  const t = performance.now();
  await pooledMap(Array.from({ length: count }), limit, async () => {
    const out = await ctr(h.address, ctrRunArgs(h, h.images.oneLayer.name, ["echo", "hi"]), {
      namespace: h.namespace,
    });
    if (out !== "hi\n") throw new Error(`ctr printed ${out}`);
  });
  return performance.now() - t;
}

/** Starts `n` detached `sleep 3600` containers with ctr; returns their removal. */
export async function runningTasks(h: HarnessInfo, n: number): Promise<() => Promise<void>> {
  const ids = Array.from({ length: n }, (_, i) => `bench-bg-${Deno.pid}-${i}`);
  const c = (args: string[]) => ctr(h.address, args, { namespace: h.namespace });
  await pooledMap(ids, 4, (id) =>
    c([
      "run",
      "-d",
      "--runc-root",
      h.runcRoot,
      "--snapshotter",
      h.snapshotter,
      h.images.oneLayer.name,
      id,
      "sleep",
      "3600",
    ]));
  return async () => {
    await pooledMap(ids, 4, async (id) => {
      await c(["tasks", "kill", "-s", "SIGKILL", id]).catch(() => "");
      for (let i = 0; i < 50; i++) {
        if (await c(["tasks", "rm", id]).then(() => true, () => false)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await c(["containers", "rm", id]).catch(() => "");
    });
  };
}

/**
 * Leaves `n` running steps behind, as a client killed mid-step does (a child process starts
 * them and exits), then times prune() removing them.
 */
export async function pruneLeftovers(
  h: HarnessInfo,
  client: ContainerdClient,
  n: number,
  gracePeriodMs: number,
): Promise<number> {
  const ioDir = await Deno.makeTempDir({ prefix: "wfe-bench-prune-" });
  try {
    const script = `
      import { connect } from "${ROOT}lib/grpc/connection.ts";
      import { runStep } from "${ROOT}lib/step/run.ts";
      const c = await connect("unix://${h.address}", { namespace: "${h.namespace}" });
      for (let i = 0; i < ${n}; i++) {
        runStep(${
      JSON.stringify(benchStep(h, { run: "sleep 3600" }))
    }, { client: c, ioDir: "${ioDir}" })
          .catch(() => {});
      }
      for (;;) {
        const { tasks } = await c.tasks.list({});
        if (tasks.filter((t) => t.status === 2).length >= ${n}) Deno.exit(0);
        await new Promise((r) => setTimeout(r, 200));
      }`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=ts", script],
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error("the leftover maker failed");
    const t = performance.now();
    const report = await prune(client, { olderThanMs: 0, ioDir, gracePeriodMs });
    const ms = performance.now() - t;
    if (report.errors.length || report.containers.length < n) {
      throw new Error(`prune: ${report.containers.length} removed, errors ${report.errors}`);
    }
    return ms;
  } finally {
    await Deno.remove(ioDir, { recursive: true });
  }
}

/**
 * Imports a two-layer image whose base layer holds ~80 MiB of incompressible files ahead of
 * /etc/passwd and /etc/group (as late in the tar as a real base image could put them).
 */
export async function userImage(h: HarnessInfo): Promise<string> {
  const name = "wfe.test/bench:users";
  const base = busyboxBaseLayer(await readStaticBusybox());
  const etc = base.filter((e) => e.path.startsWith("/etc/") && e.type === "file");
  const pad: TarEntry[] = [{ type: "dir", path: "/usr/share" }];
  for (let i = 0; i < 80; i++) {
    const content = new Uint8Array(1024 * 1024);
    for (let at = 0; at < content.length; at += 65536) {
      crypto.getRandomValues(content.subarray(at, at + 65536));
    }
    pad.push({ type: "file", path: `/usr/share/pad${i}.bin`, content });
  }
  const image = await buildImage({
    name,
    layers: [
      [...base.filter((e) => !etc.includes(e)), ...pad, ...etc],
      [{ type: "file", path: "/app.sh", content: "echo app\n" }],
    ],
  });
  await importBuilt(h, image, { timeoutMs: 300_000 });
  return name;
}

/** Drops the user lookup recorded on an image's config, so the next lookup reads layers. */
export async function forgetUserFiles(client: ContainerdClient, image: string): Promise<void> {
  const { configDigest } = await resolveImage(client, image);
  await client.content.update({
    info: { digest: configDigest, labels: {} },
    updateMask: { paths: [`labels.${USER_FILES_LABEL}`] },
  });
}

/**
 * `n` concurrent steps with a named user in a fresh process whose image has no recorded lookup
 * (it is dropped first); returns the wall time of the steps alone.
 */
export async function coldUserSteps(
  h: HarnessInfo,
  client: ContainerdClient,
  image: string,
  n: number,
  user = "tester",
): Promise<number> {
  await forgetUserFiles(client, image);
  const step = benchStep(h, { image, user, run: "id -u" });
  const script = `
    import { connect } from "${ROOT}lib/grpc/connection.ts";
    import { runStep } from "${ROOT}lib/step/run.ts";
    const c = await connect("unix://${h.address}", { namespace: "${h.namespace}" });
    const t = performance.now();
    const all = await Promise.all(Array.from({ length: ${n} }, () =>
      runStep(${JSON.stringify(step)}, { client: c })));
    if (all.some((r) => r.stdout !== "1000\\n")) throw new Error("wrong user");
    console.log(performance.now() - t);
    await c.close();`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error("the cold user steps failed");
  return Number(new TextDecoder().decode(out.stdout));
}

/**
 * Creates a step's container and task as runStep does, starts it (`start`) and waits for its
 * exit, or leaves it created and never started; returns how long removeContainer takes.
 */
export async function removalMs(
  h: HarnessInfo,
  client: ContainerdClient,
  start: boolean,
): Promise<number> {
  const step = validateStepConfig(benchStep(h, { run: "true" }));
  const image = await resolveImage(client, step.image);
  const containerId = newContainerId("removal");
  const { capture, wait } = await createContainerTask(client, {
    containerId,
    kind: "step",
    name: "removal",
    imageName: image.name,
    chainId: image.chainId,
    spec: await stepSpec(client, step, image, containerId),
    snapshotter: h.snapshotter,
    runtime: "io.containerd.runc.v2",
    runcOptions: { root: h.runcRoot },
    leaseExpireMs: 600_000,
  });
  if (start) {
    await client.tasks.start({ containerId });
    await wait;
  }
  const t = performance.now();
  const removed = await removeContainer(client, containerId, { gracePeriodMs: 10_000 });
  const ms = performance.now() - t;
  await capture.remove();
  if (removed.errors.length) throw removed.errors[0];
  return ms;
}
