/**
 * `execInService`: runs a command inside a running service (Tasks.Exec),
 * streaming its stdout and stderr, and returns its exit code and output.
 *
 * @module
 */

import { errorMessage } from "../_util/errors.ts";
import { type ContainerdClient, withClient } from "../grpc/connection.ts";
import { ContainerdError, GrpcCode } from "../grpc/errors.ts";
import { imageUserFiles } from "../image/user_files.ts";
import { resolveImage } from "../image/resolve.ts";
import { type OciSpec, withEnv } from "../oci/spec.ts";
import { createCapture } from "../runtime/capture.ts";
import { createExec } from "../runtime/exec.ts";
import { startFailure } from "../runtime/oom.ts";
import { daemonUuid } from "../runtime/owner.ts";
import { needsImageFiles, parseUserSpec, resolveUser } from "../runtime/user.ts";
import { validateArgs, validateEnvEntry } from "../step/config.ts";
import { waitForExit } from "./_exec_wait.ts";
import type { ServiceClientOptions } from "./manage.ts";

/** Options of {@linkcode execInService}. */
export interface ExecOptions extends ServiceClientOptions {
  /** More environment variables (on top of the service's). */
  env?: Record<string, string>;
  /** `uid[:gid]` or `name[:group]` (names from the image's /etc/passwd); defaults to the service's user. */
  user?: string;
  /** Working directory (absolute); defaults to the service's. */
  cwd?: string;
  /** Kill the command after this many milliseconds (SIGTERM, grace period, SIGKILL). */
  timeoutMs?: number;
  /** Time between SIGTERM and SIGKILL on timeout or abort. @default {2000} */
  gracePeriodMs?: number;
  /** Aborting stops the command (SIGTERM, grace, SIGKILL) and rejects with the reason. */
  signal?: AbortSignal;
  /** Called with each line of stdout while the command runs. */
  onStdout?: (line: string) => void;
  /** Called with each line of stderr while the command runs. */
  onStderr?: (line: string) => void;
  /** The last bytes of each stream kept in the result. @default {16777216} */
  maxOutputBytes?: number;
  /** Base directory of the capture files; defaults to `WFE_IO_DIR`, else the system temp dir. */
  ioDir?: string;
}

/** What a command run with {@linkcode execInService} did. */
export interface ExecResult {
  /** Its exit code (128 + N when killed by signal N; 127/126 when it could not start). */
  exitCode: number;
  /** stdout (its last `maxOutputBytes` bytes when truncated). */
  stdout: string;
  /** stderr (its last `maxOutputBytes` bytes when truncated). */
  stderr: string;
  /** Whether `stdout` holds only the end of the output. */
  stdoutTruncated: boolean;
  /** Whether `stderr` holds only the end of the output. */
  stderrTruncated: boolean;
  /** Whether it was killed at `timeoutMs`. */
  timedOut: boolean;
  /** Wall time in milliseconds. */
  durationMs: number;
}

/**
 * Runs `argv` inside a running service's container as another process of its
 * task (Tasks.Exec), with the service's environment, user and working
 * directory unless told otherwise. A non-zero exit is a result, not an error.
 *
 * @param addr containerd address (undefined: `WFE_CONTAINERD_ADDR`, ...).
 * @param containerId The service's container id.
 * @param argv The command and its arguments.
 * @param options Env, user, cwd, timeout, abort signal, live output callbacks.
 * @returns Exit code and output.
 * @throws {ContainerdError} NOT_FOUND when there is no such container or it has no running task.
 * @throws {TypeError | RangeError} For invalid arguments, before anything runs.
 *
 * @example
 * ```ts
 * import { execInService } from "@wfe/containerd";
 *
 * const { exitCode, stdout } = await execInService(undefined, "svc-db", ["pg_isready"]);
 * console.log(exitCode, stdout);
 * ```
 */
export async function execInService(
  addr: string | undefined,
  containerId: string,
  argv: string[],
  options: ExecOptions = {},
): Promise<ExecResult> {
  const started = performance.now();
  validateArgs(argv, "argv");
  if (argv.length === 0) throw new TypeError("Cannot exec an empty command: 'argv' is empty");
  const env = Object.entries(options.env ?? {}).map(([key, value]) => {
    if (typeof value !== "string") {
      throw new TypeError(`Cannot use env.${key}: expected a string value, got ${typeof value}`);
    }
    validateEnvEntry(key, value, "env");
    return `${key}=${value}`;
  });
  if (options.cwd !== undefined && !options.cwd.startsWith("/")) {
    throw new TypeError(`Cannot use cwd '${options.cwd}': expected an absolute path`);
  }
  const userSpec = options.user === undefined ? undefined : parseUserSpec(options.user, "user");
  for (const field of ["timeoutMs", "gracePeriodMs"] as const) {
    const value = options[field];
    if (value !== undefined && !(value >= 0)) {
      throw new RangeError(`Cannot use ${field} ${value}: expected a number >= 0`);
    }
  }
  options.signal?.throwIfAborted();
  return await withClient(addr, options, async (client) => {
    const { container } = await client.containers.get({ id: containerId });
    const spec = JSON.parse(new TextDecoder().decode(container!.spec!.value)) as OciSpec;
    const process = { ...spec.process, args: argv };
    withEnv(env)({ process } as OciSpec); // the service's env, then ours (same keys replaced)
    if (options.cwd !== undefined) process.cwd = options.cwd;
    if (userSpec) {
      const files = needsImageFiles(userSpec)
        ? await imageUserFiles(client, await resolveImage(client, container!.image), {
          snapshotter: container!.snapshotter,
        })
        : {};
      const user = resolveUser(userSpec, files, container!.image);
      process.user = { ...process.user, ...user, additionalGids: user.additionalGids ?? [] };
    }
    return await runExec(client, containerId, process, options, started);
  });
}

async function runExec(
  client: ContainerdClient,
  containerId: string,
  process: OciSpec["process"],
  options: ExecOptions,
  started: number,
): Promise<ExecResult> {
  const execId = `exec-${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const capture = await createCapture(containerId, {
    ioDir: options.ioDir,
    onStdout: options.onStdout,
    onStderr: options.onStderr,
    maxOutputBytes: options.maxOutputBytes,
    owner: { daemon: await daemonUuid(client), namespace: client.namespace },
  });
  try {
    let registered = false;
    try {
      const { wait } = await createExec(
        client,
        containerId,
        execId,
        process,
        capture.stdoutPath,
        capture.stderrPath,
      );
      registered = true;
      capture.startTailing();
      await client.tasks.start({ containerId, execId });
      const ending = await waitForExit(client, containerId, execId, wait, options);
      await client.tasks.deleteProcess({ containerId, execId }).catch(() => {});
      registered = false;
      await capture.stopTailing();
      const output = await capture.read();
      if (ending.aborted) throw options.signal!.reason;
      return {
        exitCode: ending.exitStatus,
        stdout: output.stdout,
        stderr: output.stderr,
        stdoutTruncated: output.stdoutTruncated,
        stderrTruncated: output.stderrTruncated,
        timedOut: ending.timedOut,
        durationMs: performance.now() - started,
      };
    } catch (err) {
      if (registered) await client.tasks.deleteProcess({ containerId, execId }).catch(() => {});
      const failed = startFailure(err);
      if (failed) {
        options.onStderr?.(failed.message);
        return {
          exitCode: failed.exitCode,
          stdout: "",
          stderr: `${failed.message}\n`,
          stdoutTruncated: false,
          stderrTruncated: false,
          timedOut: false,
          durationMs: performance.now() - started,
        };
      }
      if (err instanceof ContainerdError && err.code === GrpcCode.NOT_FOUND) {
        throw new ContainerdError({
          code: GrpcCode.NOT_FOUND,
          method: err.method,
          details: `service ${containerId} has no running task: ${errorMessage(err)}`,
          cause: err,
        });
      }
      throw err;
    }
  } finally {
    await capture.stopTailing().catch(() => {});
    await capture.remove().catch(() => {});
  }
}
