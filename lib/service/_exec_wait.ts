/**
 * Waiting for an exec process: its exit, or its timeout or abort (SIGTERM,
 * grace period, SIGKILL).
 *
 * @module
 */

import { timeoutOrAbort, within } from "../_util/async.ts";
import type { ContainerdClient } from "../grpc/connection.ts";

/** How an exec process ended. */
export interface ExecEnding {
  /** Its exit status. */
  exitStatus: number;
  /** Killed at its timeout. */
  timedOut: boolean;
  /** Killed because the caller aborted. */
  aborted: boolean;
}

/** Waits for the exec's exit; on timeout or abort stops it and waits for that exit. */
export async function waitForExit(
  client: ContainerdClient,
  containerId: string,
  execId: string,
  wait: Promise<{ exitStatus: number }>,
  options: { timeoutMs?: number; gracePeriodMs?: number; signal?: AbortSignal },
): Promise<ExecEnding> {
  const stop = timeoutOrAbort(options.timeoutMs, options.signal);
  try {
    const first = await Promise.race([
      wait.then((w) => ({ exit: w })),
      stop.reason.then((why) => ({ why })),
    ]);
    if ("exit" in first) {
      return { exitStatus: first.exit.exitStatus, timedOut: false, aborted: false };
    }
    const kill = (signal: number) =>
      client.tasks.kill({ containerId, execId, signal }).catch(() => {});
    await kill(15);
    if (!await within(wait, options.gracePeriodMs ?? 2000)) await kill(9);
    const { exitStatus } = await wait;
    return { exitStatus, timedOut: first.why === "timeout", aborted: first.why === "abort" };
  } finally {
    stop.cancel();
  }
}
