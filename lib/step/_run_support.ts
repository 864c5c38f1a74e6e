/**
 * How runStep waits for its task and reports what went wrong: the end of
 * the task (exit, timeout, abort, lost capture files), the capture
 * watchdog, volume checks on a local daemon, and leftovers named in errors.
 *
 * @module
 */

import { timeoutOrAbort } from "../_util/async.ts";
import type { ContainerdClient } from "../grpc/connection.ts";
import type { Capture } from "../runtime/capture.ts";
import { removeContainer } from "../runtime/remove.ts";
import { stopTask } from "../runtime/task.ts";
import type { ValidatedStep } from "./config.ts";

/**
 * With a daemon on this host, a volume whose source does not exist fails
 * before anything is created (runc would fail after the container exists).
 */
export async function assertVolumeSources(step: ValidatedStep): Promise<void> {
  for (const [i, v] of (step.volumes ?? []).entries()) {
    try {
      await Deno.stat(v.source);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      throw new TypeError(
        `Cannot use volumes[${i}].source '${v.source}': it does not exist on this host (where ` +
          "the daemon runs)",
        { cause: err },
      );
    }
  }
}

/**
 * Adds to a failure what could not be removed after it (e.g. the daemon went
 * away mid-step), so the caller knows what `prune` has to clean up.
 */
export function withLeftovers(
  err: unknown,
  client: ContainerdClient,
  containerId: string,
  snapshotter: string,
  errors: Error[],
): unknown {
  if (errors.length === 0) return err;
  leftoversOf(client).set(containerId, snapshotter);
  if (!(err instanceof Error)) return err;
  err.message += `\nleft behind by ${containerId} (could not remove: ` +
    `${errors.map((e) => e.message).join("; ")}); the next step on this daemon and namespace ` +
    "retries, and `wfe-containerd prune` (prune()) removes it once the daemon answers";
  return err;
}

/** Containers a failed removal left, by daemon address and namespace: id -> snapshotter. */
const leftovers = new Map<string, Map<string, string>>();

function leftoversOf(client: ContainerdClient): Map<string, string> {
  const key = `${client.address.target} ${client.namespace}`;
  let map = leftovers.get(key);
  if (!map) leftovers.set(key, map = new Map());
  return map;
}

/**
 * Retries removing what earlier steps on this daemon and namespace left
 * (e.g. the daemon restarted mid-step); what still fails stays for the next
 * try. Never throws.
 */
export async function retryLeftovers(client: ContainerdClient): Promise<void> {
  const map = leftoversOf(client);
  for (const [containerId, snapshotter] of [...map]) {
    const removal = await removeContainer(client, containerId, { gracePeriodMs: 1000, snapshotter })
      .catch(() => undefined);
    if (removal && removal.errors.length === 0) map.delete(containerId);
  }
}

export interface Ending {
  reason: "exit" | "timeout" | "abort" | "lost";
  exitStatus: number;
  /** Why the capture files were lost, for `"lost"`. */
  lost?: Error;
}

/** How often a running step's capture files are checked. */
const CAPTURE_CHECK_MS = 500;

/**
 * Runs `wait` with a signal that also aborts when the capture files are
 * deleted or replaced; such an ending is reported as `"lost"` (the step was
 * stopped) rather than as the caller's abort.
 */
export async function watchCapture(
  capture: Capture,
  wait: (signal: AbortSignal) => Promise<Ending>,
  signal: AbortSignal | undefined,
): Promise<Ending> {
  const lostController = new AbortController();
  let lost: Error | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const check = async () => {
    if (stopped) return;
    const problem = await capture.check().catch((err: Error) => err);
    if (problem) {
      lost = problem;
      lostController.abort(problem);
    } else if (!stopped) timer = setTimeout(check, CAPTURE_CHECK_MS);
  };
  timer = setTimeout(check, CAPTURE_CHECK_MS);
  try {
    const both = signal ? AbortSignal.any([signal, lostController.signal]) : lostController.signal;
    const ending = await wait(both);
    if (lost && ending.reason === "abort" && !signal?.aborted) {
      return { ...ending, reason: "lost", lost };
    }
    return ending;
  } finally {
    stopped = true;
    clearTimeout(timer);
  }
}

/**
 * Waits for the task to exit; on timeout or abort stops it (SIGTERM to its
 * init process, `grace` ms, then SIGKILL to all its processes).
 */
export async function waitForEnd(
  client: ContainerdClient,
  containerId: string,
  wait: Promise<{ exitStatus: number }>,
  timeoutMs: number | undefined,
  grace: number,
  signal: AbortSignal | undefined,
): Promise<Ending> {
  const trigger = timeoutOrAbort(timeoutMs, signal);
  try {
    const first = await Promise.race([wait.then((w) => ({ exit: w })), trigger.reason]);
    if (typeof first === "object") return { reason: "exit", exitStatus: first.exit.exitStatus };
    const exitStatus = await stopTask(client, containerId, wait, 15, grace);
    return { reason: first, exitStatus };
  } finally {
    trigger.cancel();
  }
}

const snapshotters = new Map<string, Promise<string[] | undefined>>();

/**
 * Refuses a snapshotter the daemon does not have (or could not load), before
 * anything is created; the list is asked once per daemon address.
 */
export async function assertSnapshotter(client: ContainerdClient, name: string): Promise<void> {
  const key = client.address.target;
  let usable = snapshotters.get(key);
  if (!usable) {
    usable = client.introspection.plugins({ filters: ["type==io.containerd.snapshotter.v1"] })
      .then(
        ({ plugins }) => plugins.filter((p) => !p.initErr).map((p) => p.id),
        () => undefined, // unknown: Snapshots.Prepare will say
      );
    snapshotters.set(key, usable);
  }
  const names = await usable;
  if (names && !names.includes(name)) {
    throw new TypeError(
      `Cannot use snapshotter '${name}': the daemon has ${names.join(", ") || "none"}`,
    );
  }
}
