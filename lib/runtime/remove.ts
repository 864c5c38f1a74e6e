/**
 * Removing a container and everything made for it, whatever state it is in.
 *
 * @module
 */

import { within } from "../_util/async.ts";
import { errorMessage } from "../_util/errors.ts";
import type { ContainerdClient } from "../grpc/connection.ts";
import { isNotFound } from "../grpc/errors.ts";
import { LABELS, MANAGED_BY } from "../labels.ts";
import { type OciSpec, specToAny } from "../oci/spec.ts";
import { ioBaseDir, isCaptureDirOf } from "./capture.ts";
import { DEFAULT_RUNTIME, defaultSnapshotter, leaseIdOf, stopTask } from "./task.ts";
import { type Container, type Process, TaskStatus } from "../../proto/gen/types.ts";

/** Options of {@linkcode removeContainer}. */
export interface RemoveContainerOptions {
  /**
   * Time between the stop signal and SIGKILL for a running task, in ms.
   * @default {10000}
   */
  gracePeriodMs?: number;
  /** Stop signal; defaults to the container's stop-signal label, else SIGTERM. */
  stopSignal?: number;
  /** Runs after Tasks.Delete (output is drained) and before the container is deleted. */
  afterTaskDelete?: () => Promise<void>;
  /**
   * Capture directory, when the container record (with its label) may be gone.
   * @default {"<WFE_IO_DIR or temp dir>/wfe-io-<containerId>"}
   */
  captureDir?: string;
  /** Snapshotter, when the container record may be gone; else the namespace's default. */
  snapshotter?: string;
  /** Cancels waiting for the task (the removal itself still runs). */
  signal?: AbortSignal;
  /**
   * The container record and its task's state, when the caller knows them
   * (e.g. it created them and saw the task exit): the lookups are skipped.
   */
  known?: { record: Container; task?: Pick<Process, "status" | "stdout"> };
  /** The caller sent the task SIGKILL (prune stops many tasks together): just wait for it. */
  killed?: boolean;
}

/** What {@linkcode removeContainer} found and removed. */
export interface RemovedContainer {
  /** Which parts existed and were removed. */
  removed: ("task" | "container" | "snapshot" | "lease" | "capture dir")[];
  /** The task's exit status, when there was a task. */
  exitStatus?: number;
  /** Failures (other than "not found"); each later part was still attempted. */
  errors: Error[];
}

/**
 * Removes a container and everything made for it, in the right order and
 * from whatever state it is in: stop the task (stop signal, grace period,
 * SIGKILL to all), Tasks.Delete, Containers.Delete, snapshot Remove, lease
 * Delete, capture dir. Parts that do not exist are skipped, so calling it
 * twice is fine; a task whose container record was deleted (as
 * wfe-containerd's cleanup leaves them) is reached by re-creating a
 * placeholder record. Never throws for a part that fails: the errors are
 * returned and the later parts are still attempted.
 */
export async function removeContainer(
  client: ContainerdClient,
  containerId: string,
  options: RemoveContainerOptions = {},
): Promise<RemovedContainer> {
  const grace = options.gracePeriodMs ?? 10_000;
  const out: RemovedContainer = { removed: [], errors: [] };
  const attempt = async (what: string, fn: () => Promise<unknown>): Promise<boolean> => {
    try {
      await fn();
      return true;
    } catch (err) {
      if (!isNotFound(err)) {
        out.errors.push(new Error(`${what}: ${errorMessage(err)}`, { cause: err }));
      }
      return false;
    }
  };

  let container: Container | null = options.known?.record ?? null;
  if (!options.known) {
    await attempt("get container", async () => {
      container = (await client.containers.get({ id: containerId })).container;
    });
  }
  const record = container as Container | null;
  // Tasks.Get needs the container record; without it, only Tasks.List shows the task.
  const task = options.known
    ? options.known.task
    : record
    ? await client.tasks.get({ containerId }).then((r) => r.process ?? undefined, () => undefined)
    : (await client.tasks.list({ filter: "" }).catch(() => ({ tasks: [] }))).tasks
      .find((t) => t.id === containerId);
  let placeholder = false;
  if (task && !record) {
    // Tasks.Kill and Tasks.Delete look the container record up first.
    placeholder = await attempt("re-create container record", () =>
      client.containers.create({
        container: {
          id: containerId,
          runtime: { name: DEFAULT_RUNTIME },
          spec: specToAny({} as OciSpec),
          labels: { [LABELS.managedBy]: MANAGED_BY },
        },
      }));
  }
  if (task && (record || placeholder)) {
    let createdKillError: number | undefined;
    const running = task.status === TaskStatus.RUNNING || task.status === TaskStatus.PAUSED ||
      task.status === TaskStatus.CREATED || task.status === TaskStatus.PAUSING;
    if (running) {
      const label = record?.labels[LABELS.stopSignal];
      const stopSignal = options.stopSignal ?? (label ? Number(label) : 15);
      // A created task never ran the command: SIGKILL at once (deleting it unkilled takes seconds).
      const created = task.status === TaskStatus.CREATED;
      const wait = client.tasks.wait({ containerId });
      wait.catch(() => {});
      const before = out.errors.length;
      await attempt("stop task", async () => {
        if (!options.killed) {
          await stopTask(
            client,
            containerId,
            wait,
            created ? 9 : stopSignal,
            created ? 0 : grace,
          );
          return;
        }
        // SIGKILL was sent already: only wait for the exit.
        if (!await within(wait, 30_000)) {
          throw new Error(`${containerId} did not exit within 30 s of SIGKILL`);
        }
      });
      if (created && out.errors.length > before) createdKillError = before;
    }
    if (
      await attempt("delete task", async () => {
        const res = await client.tasks.delete({ containerId });
        out.exitStatus = res.exitStatus;
      })
    ) {
      out.removed.push("task");
      // Some runtimes (runsc) refuse to signal a created task but delete it: not a failure.
      if (createdKillError !== undefined) out.errors.splice(createdKillError, 1);
    }
  }
  if (options.afterTaskDelete) await attempt("read output", options.afterTaskDelete);
  // Without the record, the snapshotter is the one given or the namespace's default.
  const snapshotter = record?.snapshotter || options.snapshotter ||
    await defaultSnapshotter(client).catch(() => undefined);
  const key = record?.snapshotKey || containerId;
  // Without the record, the task's stdout path names the capture dir.
  const fromTask = task?.stdout.endsWith("/stdout") ? task.stdout.slice(0, -"/stdout".length) : "";
  const dir = record?.labels[LABELS.ioDir] || options.captureDir || fromTask ||
    `${ioBaseDir()}/wfe-io-${containerId}`;
  let dirExisted = true;
  // Removed at once, reported in a fixed order; only the lease waits for the snapshot (without
  // the lease, containerd's garbage collector may take the snapshot first, and the report would
  // miss it).
  const [containerGone, [snapshot, lease], captureDir] = await Promise.all([
    (record || placeholder) &&
    attempt("delete container", () => client.containers.delete({ id: containerId })),
    (async () =>
      [
        !!snapshotter &&
        await attempt("remove snapshot", () => client.snapshots.remove({ snapshotter, key })),
        await attempt("delete lease", () => client.leases.delete({ id: leaseIdOf(containerId) })),
      ] as const)(),
    !!dir && isCaptureDirOf(dir, containerId) &&
    attempt("remove capture dir", async () => {
      try {
        await Deno.remove(dir, { recursive: true });
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) dirExisted = false;
        else throw err;
      }
    }),
  ]);
  if (containerGone && record) out.removed.push("container");
  if (snapshot) out.removed.push("snapshot");
  if (lease) out.removed.push("lease");
  if (captureDir && dirExisted) out.removed.push("capture dir");
  return out;
}
