/**
 * Task helpers shared by steps, services and prune: ids, snapshotter and
 * runtime defaults, signals, and stopping a task (signal, grace, SIGKILL).
 *
 * @module
 */

import { within } from "../_util/async.ts";
import type { ContainerdClient } from "../grpc/connection.ts";
import { ContainerdError, GrpcCode, isNotFound } from "../grpc/errors.ts";
import { encodeMessage, type Init } from "../grpc/rpc.ts";
import { DEFAULT_SNAPSHOTTER_LABEL } from "../labels.ts";
import { type RuncOptions, TaskStatus } from "../../proto/gen/types.ts";

const TASK_STATUS_NAMES: Record<number, string> = {
  [TaskStatus.UNKNOWN]: "unknown",
  [TaskStatus.CREATED]: "created",
  [TaskStatus.RUNNING]: "running",
  [TaskStatus.STOPPED]: "stopped",
  [TaskStatus.PAUSED]: "paused",
  [TaskStatus.PAUSING]: "pausing",
};

/** The default OCI runtime. */
export const DEFAULT_RUNTIME = "io.containerd.runc.v2";

/** The lease that holds a container's snapshot while it is created. */
export function leaseIdOf(containerId: string): string {
  return `${containerId}-lease`;
}

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

/** Default snapshotters looked up in the last few seconds, by client and namespace. */
const snapshotterMemo = new WeakMap<object, Map<string, { name: string; at: number }>>();
const SNAPSHOTTER_MEMO_MS = 5000;

/** The namespace's default snapshotter (label), else `overlayfs`; remembered for 5 s. */
export async function defaultSnapshotter(client: ContainerdClient): Promise<string> {
  let byNamespace = snapshotterMemo.get(client.address);
  if (!byNamespace) snapshotterMemo.set(client.address, byNamespace = new Map());
  const known = byNamespace.get(client.namespace);
  if (known && performance.now() - known.at < SNAPSHOTTER_MEMO_MS) return known.name;
  let name = "overlayfs";
  try {
    const { namespace } = await client.namespaces.get({ name: client.namespace });
    name = namespace?.labels[DEFAULT_SNAPSHOTTER_LABEL] || "overlayfs";
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  byNamespace.set(client.namespace, { name, at: performance.now() });
  return name;
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
