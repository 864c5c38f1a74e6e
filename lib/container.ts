/**
 * The container lifecycle shared by steps and services: create everything a
 * task needs (lease, capture files, snapshot, container record, task) and
 * remove it all again, whatever state it is in.
 *
 * @module
 */

import type { ContainerdClient } from "./connection.ts";
import { ContainerdError, GrpcCode, isNotFound } from "./errors.ts";
import { type Capture, type CaptureOptions, createCapture, ioBaseDir } from "./io.ts";
import { LEASE_EXPIRE_LABEL } from "./lease.ts";
import { type OciSpec, specToAny } from "./oci_spec.ts";
import { encodeMessage, type Init } from "./rpc.ts";
import { DEFAULT_RUNTIME } from "./step_config.ts";
import type { Container, RuncOptions } from "../proto/gen/types.ts";
import { TaskStatus } from "../proto/gen/types.ts";

/** Label keys this project puts on what it creates, so leftovers can be found. */
export const LABELS = {
  /** Always `@wfe/containerd`. */
  managedBy: "wfe.containerd/managed-by",
  /** `step` or `service`. */
  kind: "wfe.containerd/kind",
  /** The step or service name. */
  name: "wfe.containerd/name",
  /** RFC 3339 creation time. */
  createdAt: "wfe.containerd/created-at",
  /** The capture directory of the container's stdout and stderr. */
  ioDir: "wfe.containerd/io-dir",
  /** The signal number that stops the container (services: the image's StopSignal). */
  stopSignal: "wfe.containerd/stop-signal",
  /** Declared ports of a service, comma separated. */
  ports: "wfe.containerd/ports",
} as const;

/** Value of the managed-by label. */
export const MANAGED_BY = "@wfe/containerd";

/** Namespace label that names a namespace's default snapshotter. */
export const DEFAULT_SNAPSHOTTER_LABEL = "containerd.io/defaults/snapshotter";

/** The lease that holds a container's snapshot while it is created. */
export function leaseIdOf(containerId: string): string {
  return `${containerId}-lease`;
}

const TASK_STATUS_NAMES: Record<number, string> = {
  [TaskStatus.UNKNOWN]: "unknown",
  [TaskStatus.CREATED]: "created",
  [TaskStatus.RUNNING]: "running",
  [TaskStatus.STOPPED]: "stopped",
  [TaskStatus.PAUSED]: "paused",
  [TaskStatus.PAUSING]: "pausing",
};

/** The lower-case name of a task status, e.g. `"running"`. */
export function taskStatusName(status: number): string {
  return TASK_STATUS_NAMES[status] ?? "unknown";
}

/** A fresh, valid container id: `wfe-<name>-<random>`. */
export function newContainerId(name: string | undefined): string {
  const slug = (name ?? "step").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "")
    .slice(0, 40) || "step";
  return `wfe-${slug}-${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
}

/** The namespace's default snapshotter (label), else `overlayfs`. */
export async function defaultSnapshotter(client: ContainerdClient): Promise<string> {
  try {
    const { namespace } = await client.namespaces.get({ name: client.namespace });
    return namespace?.labels[DEFAULT_SNAPSHOTTER_LABEL] || "overlayfs";
  } catch (err) {
    if (isNotFound(err)) return "overlayfs";
    throw err;
  }
}

/** Encodes runc options as the Any a container's runtime record carries. */
export function runtimeOptions(
  options: Init<RuncOptions> | undefined,
): { typeUrl: string; value: Uint8Array } | null {
  if (!options) return null;
  return {
    typeUrl: "containerd.runc.v1.Options",
    value: encodeMessage("containerd.runc.v1.Options", options as Record<string, unknown>),
  };
}

const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGUSR2: 12,
  SIGTERM: 15,
  SIGSTOP: 19,
  SIGWINCH: 28,
  SIGPWR: 30,
};

/**
 * Parses a signal as images write StopSignal: `SIGQUIT`, `QUIT` or `3`.
 *
 * @throws {TypeError} Naming the value when it is not a known signal.
 */
export function parseSignal(value: string): number {
  const text = value.trim().toUpperCase();
  if (/^\d+$/.test(text) && Number(text) >= 1 && Number(text) <= 64) return Number(text);
  const n = SIGNALS[text.startsWith("SIG") ? text : `SIG${text}`];
  if (n === undefined) {
    throw new TypeError(`Cannot parse signal '${value}': expected e.g. SIGTERM, QUIT or 15`);
  }
  return n;
}

/** Waits for `promise` at most `ms` milliseconds; true when it settled in time. */
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise.then(() => true, () => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Sends a signal; a task that has already exited or is gone is not an error. */
export async function killQuietly(
  client: ContainerdClient,
  containerId: string,
  signal: number,
  all: boolean,
): Promise<void> {
  try {
    await client.tasks.kill({ containerId, signal, all });
  } catch (err) {
    if (err instanceof ContainerdError) {
      if (err.code === GrpcCode.NOT_FOUND || err.code === GrpcCode.FAILED_PRECONDITION) return;
      if (/process already finished|not found/i.test(err.details)) return;
    }
    throw err;
  }
}

/**
 * Stops a task: `stopSignal` to its init process, up to `grace` ms for it to
 * exit, then SIGKILL to all its processes. `wait` is a Tasks.Wait call made
 * earlier (so an exit in between is not missed).
 */
export async function stopTask(
  client: ContainerdClient,
  containerId: string,
  wait: Promise<{ exitStatus: number }>,
  stopSignal: number,
  grace: number,
): Promise<number> {
  await killQuietly(client, containerId, stopSignal, false);
  if (!await within(wait, grace)) await killQuietly(client, containerId, 9, true);
  if (!await within(wait, 30_000)) {
    throw new ContainerdError({
      code: GrpcCode.DEADLINE_EXCEEDED,
      method: "stopTask",
      details: `${containerId} did not exit within 30 s of SIGKILL`,
    });
  }
  return (await wait).exitStatus;
}

/** What {@linkcode createContainerTask} needs. */
export interface ContainerTaskRequest {
  /** The container id (see {@linkcode newContainerId}). */
  containerId: string;
  /** `step` or `service`, for the labels. */
  kind: "step" | "service";
  /** Step or service name, for the labels. */
  name: string;
  /** Stored image name. */
  imageName: string;
  /** Chain ID of the image's layers: the snapshot's parent. */
  chainId: string;
  /** The runtime spec. */
  spec: OciSpec;
  /** Snapshotter holding the unpacked image. */
  snapshotter: string;
  /** Runtime name. */
  runtime: string;
  /** runc options, if any. */
  runcOptions?: Init<RuncOptions>;
  /** More labels for the container. */
  labels?: Record<string, string>;
  /** Capture file options (base dir, live callbacks, memory cap). */
  capture?: CaptureOptions;
  /** Lease expiry, in milliseconds from now. */
  leaseExpireMs: number;
}

/** A created (not yet started) task and what was made for it. */
export interface CreatedTask {
  /** The container id. */
  containerId: string;
  /** The capture files of stdout and stderr. */
  capture: Capture;
  /** Tasks.Wait, registered right after Tasks.Create (before Start). */
  wait: Promise<{ exitStatus: number }>;
}

/**
 * Creates, in order: an expiring lease, the capture files, the snapshot
 * (parent = the image's chain ID), the container record (labelled as ours)
 * and the task; then registers Wait. On failure removes whatever was created.
 */
export async function createContainerTask(
  client: ContainerdClient,
  req: ContainerTaskRequest,
): Promise<CreatedTask> {
  const { containerId, snapshotter } = req;
  const leaseId = leaseIdOf(containerId);
  let capture: Capture | undefined;
  let owned = false; // only clean up an id whose lease this call created
  try {
    await client.leases.create({
      id: leaseId,
      labels: {
        [LEASE_EXPIRE_LABEL]: new Date(Date.now() + req.leaseExpireMs).toISOString(),
        [LABELS.managedBy]: MANAGED_BY,
        [LABELS.kind]: req.kind,
      },
    });
    owned = true;
    const leased = client.withLease(leaseId);
    capture = await createCapture(containerId, req.capture);
    let mounts;
    try {
      ({ mounts } = await leased.snapshots.prepare({
        snapshotter,
        key: containerId,
        parent: req.chainId,
        labels: { [LABELS.managedBy]: MANAGED_BY },
      }));
    } catch (err) {
      if (!isNotFound(err)) throw err;
      throw new ContainerdError({
        code: GrpcCode.NOT_FOUND,
        method: "Snapshots.Prepare",
        details: `image '${req.imageName}' is not unpacked in snapshotter '${snapshotter}' ` +
          `(no snapshot ${req.chainId}); unpack it, e.g. with \`ctr images import\` or ` +
          `\`ctr images unpack --snapshotter ${snapshotter}\``,
        cause: err,
      });
    }
    await leased.containers.create({
      container: {
        id: containerId,
        image: req.imageName,
        labels: {
          ...req.labels,
          [LABELS.managedBy]: MANAGED_BY,
          [LABELS.kind]: req.kind,
          [LABELS.name]: req.name,
          [LABELS.createdAt]: new Date().toISOString(),
          [LABELS.ioDir]: capture.dir,
        },
        runtime: { name: req.runtime, options: runtimeOptions(req.runcOptions) },
        spec: specToAny(req.spec),
        snapshotter,
        snapshotKey: containerId,
      },
    });
    await leased.tasks.create({
      containerId,
      rootfs: mounts,
      stdout: capture.stdoutPath,
      stderr: capture.stderrPath,
    });
    const wait = client.tasks.wait({ containerId });
    wait.catch(() => {});
    return { containerId, capture, wait };
  } catch (err) {
    if (!owned) throw err;
    await removeContainer(client, containerId, {
      gracePeriodMs: 0,
      captureDir: capture?.dir,
      snapshotter,
    });
    throw err;
  }
}

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

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
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
      if (!isNotFound(err)) out.errors.push(new Error(`${what}: ${describe(err)}`, { cause: err }));
      return false;
    }
  };

  let container: Container | null = null;
  await attempt("get container", async () => {
    container = (await client.containers.get({ id: containerId })).container;
  });
  const record = container as Container | null;
  const { tasks } = await client.tasks.list({ filter: "" }).catch(() => ({ tasks: [] }));
  const task = tasks.find((t) => t.id === containerId);
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
    const running = task.status === TaskStatus.RUNNING || task.status === TaskStatus.PAUSED ||
      task.status === TaskStatus.CREATED || task.status === TaskStatus.PAUSING;
    if (running) {
      const label = record?.labels[LABELS.stopSignal];
      const stopSignal = options.stopSignal ?? (label ? Number(label) : 15);
      const wait = client.tasks.wait({ containerId });
      wait.catch(() => {});
      await attempt("stop task", () => stopTask(client, containerId, wait, stopSignal, grace));
    }
    if (
      await attempt("delete task", async () => {
        const res = await client.tasks.delete({ containerId });
        out.exitStatus = res.exitStatus;
      })
    ) out.removed.push("task");
  }
  if (options.afterTaskDelete) await attempt("read output", options.afterTaskDelete);
  if (record || placeholder) {
    if (await attempt("delete container", () => client.containers.delete({ id: containerId }))) {
      if (record) out.removed.push("container");
    }
  }
  // Without the record, the snapshotter is the one given or the namespace's default.
  const snapshotter = record?.snapshotter || options.snapshotter ||
    await defaultSnapshotter(client).catch(() => undefined);
  const key = record?.snapshotKey || containerId;
  if (snapshotter) {
    if (await attempt("remove snapshot", () => client.snapshots.remove({ snapshotter, key }))) {
      out.removed.push("snapshot");
    }
  }
  if (await attempt("delete lease", () => client.leases.delete({ id: leaseIdOf(containerId) }))) {
    out.removed.push("lease");
  }
  const dir = record?.labels[LABELS.ioDir] || options.captureDir ||
    `${ioBaseDir()}/wfe-io-${containerId}`;
  if (dir && dir.endsWith(`/wfe-io-${containerId}`)) {
    let existed = true;
    await attempt("remove capture dir", async () => {
      try {
        await Deno.remove(dir, { recursive: true });
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) existed = false;
        else throw err;
      }
    });
    if (existed) out.removed.push("capture dir");
  }
  return out;
}
