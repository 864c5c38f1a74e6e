/**
 * What a task's end means: an out-of-memory kill (containerd's `/tasks/oom`
 * event, so it works with a remote daemon too) and a command that could not
 * be started (missing or not executable: exit 127 or 126, as docker says).
 *
 * @module
 */

import type { ContainerdClient } from "../grpc/connection.ts";
import { ContainerdError } from "../grpc/errors.ts";
import { decodeMessage } from "../grpc/rpc.ts";
import type { TaskOOM } from "../../proto/gen/types.ts";

/** How long a SIGKILLed task's OOM event may trail its exit. */
const OOM_EVENT_GRACE_MS = 500;

/** Watches a container for out-of-memory kills from just before its task starts. */
export interface OomWatch {
  /** Whether an OOM kill was seen so far. */
  readonly killed: boolean;
  /**
   * Whether the task was killed for lack of memory, given its exit status:
   * waits a little for the event when the task died of SIGKILL (137).
   */
  settle(exitStatus: number): Promise<boolean>;
  /** Stops watching. */
  close(): void;
}

/**
 * Subscribes to the namespace's `/tasks/oom` events for `containerId`.
 *
 * @example
 * ```ts
 * import { connect, watchOom } from "@wfe/containerd/api";
 *
 * await using client = await connect();
 * const oom = watchOom(client, "wfe-build-0123456789abcdef");
 * // ... start the task, wait for its exit status ...
 * const killed = await oom.settle(137);
 * oom.close();
 * ```
 */
export function watchOom(client: ContainerdClient, containerId: string): OomWatch {
  const abort = new AbortController();
  let killed = false;
  let seen: () => void = () => {};
  const seenOnce = new Promise<void>((resolve) => (seen = resolve));
  const events = client.events.subscribe(
    { filters: [`topic=="/tasks/oom",namespace==${JSON.stringify(client.namespace)}`] },
    { signal: abort.signal },
  );
  (async () => {
    for await (const envelope of events) {
      const bytes = envelope.event?.value;
      if (!bytes) continue;
      const event = decodeMessage<TaskOOM>("containerd.events.TaskOOM", bytes);
      if (event.containerId === containerId) {
        killed = true;
        seen();
      }
    }
  })().catch(() => {}); // cancelled by close(), or the daemon went away: no event then
  return {
    get killed() {
      return killed;
    },
    async settle(exitStatus: number): Promise<boolean> {
      if (killed || exitStatus !== 137) return killed;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        seenOnce,
        new Promise<void>((resolve) => (timer = setTimeout(resolve, OOM_EVENT_GRACE_MS))),
      ]);
      clearTimeout(timer);
      return killed;
    },
    close(): void {
      abort.abort();
    },
  };
}

/** A command the runtime could not start, as a shell or docker reports it. */
export interface StartFailure {
  /** 127: not found; 126: found but not executable. */
  exitCode: 126 | 127;
  /** One line saying what happened, e.g. `nosuch: executable file not found in $PATH`. */
  message: string;
}

const NOT_FOUND = [
  /exec: "([^"]*)": executable file not found in \$PATH/, // runc
  /exec: "([^"]*)": stat [^:]*: no such file or directory/, // runc, a path
  /executable file `([^`]*)` not found in \$PATH/, // crun
];
const NOT_EXECUTABLE = [
  /exec: "([^"]*)": permission denied/, // runc
  /exec `([^`]*)`: Permission denied/i, // crun
];

/**
 * Recognises the runtime's "cannot exec the command" errors (runc's and
 * crun's wording) in a failed Tasks.Create or Tasks.Start.
 *
 * @returns Exit code 127 or 126 and one clear line, or `undefined` for other errors.
 */
export function startFailure(err: unknown): StartFailure | undefined {
  if (!(err instanceof ContainerdError)) return undefined;
  if (err.method !== "Tasks.Create" && err.method !== "Tasks.Start") return undefined;
  const text = err.details ?? err.message;
  for (const pattern of NOT_FOUND) {
    const m = pattern.exec(text);
    if (m) {
      const how = m[1].includes("/")
        ? "no such file or directory"
        : "executable file not found in $PATH";
      return { exitCode: 127, message: `${m[1]}: ${how}` };
    }
  }
  for (const pattern of NOT_EXECUTABLE) {
    const m = pattern.exec(text);
    if (m) return { exitCode: 126, message: `${m[1]}: permission denied (not an executable file)` };
  }
  return undefined;
}
