/**
 * Extra processes in a running task (Tasks.Exec): registered with their
 * stdio files, waited for, and deleted.
 *
 * @module
 */

import type { ContainerdClient } from "../grpc/connection.ts";
import type { OciSpec } from "../oci/spec.ts";

/** The Any type URL of an OCI process spec. */
export const PROCESS_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/Process";

/** An exec process registered with Tasks.Exec, not started yet. */
export interface CreatedExec {
  /** The exec id. */
  execId: string;
  /** Tasks.Wait of the process, registered before it starts. */
  wait: Promise<{ exitStatus: number }>;
}

/**
 * Registers `process` as exec `execId` of the container's task, its stdout
 * and stderr going to the given files (paths on the daemon's host), and
 * registers Wait. Start it with `Tasks.Start({ containerId, execId })`;
 * delete it with `Tasks.DeleteProcess` when done.
 */
export async function createExec(
  client: ContainerdClient,
  containerId: string,
  execId: string,
  process: OciSpec["process"],
  stdout: string,
  stderr: string,
): Promise<CreatedExec> {
  await client.tasks.exec({
    containerId,
    execId,
    stdout,
    stderr,
    spec: {
      typeUrl: PROCESS_TYPE_URL,
      value: new TextEncoder().encode(JSON.stringify({ ...process, terminal: false })),
    },
  });
  const wait = client.tasks.wait({ containerId, execId });
  wait.catch(() => {});
  return { execId, wait };
}
