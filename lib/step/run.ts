/**
 * `runStep`: runs a workflow step as a container on containerd, end to end,
 * and leaves nothing behind.
 *
 * @module
 */

import { type ContainerdClient, withClient } from "../grpc/connection.ts";
import { imageUserFiles } from "../image/user_files.ts";
import { ensureImage } from "../image/policy.ts";
import type { ResolvedImage } from "../image/resolve.ts";
import type { PullProgress } from "../image/store.ts";
import type { RegistryClient, RegistryClientOptions } from "../registry/client.ts";
import type { OciSpec } from "../oci/spec.ts";
import { buildStepSpec } from "./spec.ts";
import type { CapturedOutput } from "../runtime/capture.ts";
import { createContainerTask } from "../runtime/container.ts";
import { checkInputSources } from "../runtime/inputs.ts";
import { daemonUuid } from "../runtime/owner.ts";
import { checkCollectTargets, type Collected, collectFromSnapshot } from "../runtime/collect.ts";
import { errorMessage } from "../_util/errors.ts";
import { formatBytes } from "../_util/bytes.ts";
import { type StartFailure, startFailure, watchOom } from "../runtime/oom.ts";
import { removeContainer } from "../runtime/remove.ts";
import { TaskStatus } from "../../proto/gen/types.ts";
import { defaultSnapshotter, leaseIdOf, newContainerId } from "../runtime/task.ts";
import { DEFAULT_USER, needsImageFiles, parseUserSpec, resolveUser } from "../runtime/user.ts";
import { type StepConfig, type ValidatedStep, validateStepConfig } from "./config.ts";
import { StepError, StepOutputError, StepTimeoutError } from "./errors.ts";
import {
  assertSnapshotter,
  assertVolumeSources,
  type Ending,
  retryLeftovers,
  waitForEnd,
  watchCapture,
  withLeftovers,
} from "./_run_support.ts";
import { buildOutputData } from "./outputs.ts";

export { buildStepSpec };

/** Options of {@linkcode runStep}. */
export interface RunStepOptions {
  /** A connected client to use (and leave open); otherwise runStep opens and closes its own. */
  client?: ContainerdClient;
  /** Aborting kills the step (SIGTERM, grace period, SIGKILL) and rejects with the reason. */
  signal?: AbortSignal;
  /**
   * Time between SIGTERM and SIGKILL on timeout or abort, in milliseconds.
   * @default {10000}
   */
  gracePeriodMs?: number;
  /** Called with each complete line of stdout while the step runs. */
  onStdout?: (line: string) => void;
  /** Called with each complete line of stderr while the step runs. */
  onStderr?: (line: string) => void;
  /** Base directory of the capture files; defaults to `WFE_IO_DIR`, else the system temp dir. */
  ioDir?: string;
  /**
   * Registry access for pulls (credentials as wfe's `registryAuth`, plain
   * HTTP hosts, CAs), or a registry client to share.
   */
  registry?: RegistryClient | RegistryClientOptions;
  /** Progress of a pull the step's pull policy causes. */
  onPullProgress?: (event: PullProgress) => void;
}

/** What a finished step produced. */
export interface StepResult {
  /** The container's exit code (128 + N when killed by signal N). */
  exitCode: number;
  /** stdout (its last `maxOutputBytes` bytes when truncated). */
  stdout: string;
  /** stderr (its last `maxOutputBytes` bytes when truncated). */
  stderr: string;
  /** Whether `stdout` holds only the end of the output. */
  stdoutTruncated: boolean;
  /** Whether `stderr` holds only the end of the output. */
  stderrTruncated: boolean;
  /** `##wfe[output key=value]` lines of the whole stdout. */
  outputs: Record<string, string>;
  /** wfe's output data: outputs plus `<step>.stdout`, `<step>.stderr`, `<step>.exit_code`. */
  outputData: Record<string, string | number>;
  /** The container's id. */
  containerId: string;
  /** Wall time from the call to the result, in milliseconds. */
  durationMs: number;
  /** Failures while tearing down (never masking the step's own result). */
  cleanupErrors: Error[];
  /** What `collect` copied out, one entry per item, in order. */
  collected: Collected[];
  /**
   * Whether the kernel killed the step for going over its `memory` limit
   * (watched only when the step has one).
   */
  oomKilled: boolean;
}

const TAIL_CHARS = 4096;

/**
 * Runs a command in a fresh container from an image, captures stdout and
 * stderr in files under `WFE_IO_DIR`, parses `##wfe[output key=value]` lines,
 * and removes everything it created (task, container, snapshot, lease,
 * capture files) on every path.
 *
 * @param config The step: image, run or command, env, volumes, user, limits...
 * @param options A client to reuse, an abort signal, grace period, live output callbacks.
 * @returns The exit code, output, outputs and timing of a step that exited 0.
 * @throws {TypeError | RangeError} For an invalid config, before anything is created.
 * @throws {StepError} When the container exits non-zero (the result is attached).
 * @throws {StepTimeoutError} When `timeoutMs` expires (the step is killed first).
 * @throws {ContainerdError} When containerd refuses something (missing image, ...).
 *
 * @example
 * ```ts
 * import { runStep } from "@wfe/containerd";
 *
 * const result = await runStep({
 *   image: "alpine:3.18",
 *   run: "echo '##wfe[output version=1.2.3]'",
 *   stepName: "build",
 *   timeoutMs: 60_000,
 * });
 * result.outputs.version; // "1.2.3"
 * result.outputData["build.exit_code"]; // 0
 * ```
 */
export async function runStep(
  config: StepConfig,
  options: RunStepOptions = {},
): Promise<StepResult> {
  const started = performance.now();
  const step = validateStepConfig(config);
  if (step.user !== undefined) parseUserSpec(step.user, "user");
  const grace = options.gracePeriodMs ?? 10_000;
  if (!(grace >= 0)) {
    throw new RangeError(`Cannot use gracePeriodMs ${grace}: expected a number >= 0`);
  }
  options.signal?.throwIfAborted();
  return await withClient(
    step.containerdAddr,
    { client: options.client, namespace: step.namespace, tls: step.tls, signal: options.signal },
    (client) => runOn(client, step, options, grace, started),
  );
}

/** Ensures the step's image as its pull policy says (pulling when needed) and resolves it. */
export async function ensureStepImage(
  client: ContainerdClient,
  step: ValidatedStep,
  options: Pick<RunStepOptions, "registry" | "onPullProgress" | "signal">,
): Promise<ResolvedImage> {
  return await ensureImage(client, step.image, {
    policy: step.pull,
    platform: step.platform,
    snapshotter: step.snapshotter,
    registry: options.registry,
    onProgress: options.onPullProgress,
    signal: options.signal,
  });
}

/**
 * Resolves the step's user (the step's `user`, else the image's `User`, else
 * `65534:65534`; names through the image's /etc/passwd and /etc/group, read
 * from its layers) and builds its runtime spec.
 */
export async function stepSpec(
  client: ContainerdClient,
  step: ValidatedStep,
  image: ResolvedImage,
  containerId: string,
  snapshotter?: string,
): Promise<OciSpec> {
  const imageConfig = image.config.config;
  const userText = step.user ?? (imageConfig?.User || DEFAULT_USER);
  const userSpec = parseUserSpec(userText, step.user !== undefined ? "user" : "image User");
  const files = needsImageFiles(userSpec)
    ? await imageUserFiles(client, image, { snapshotter })
    : {};
  const user = resolveUser(userSpec, files, image.name);
  return buildStepSpec(step, imageConfig, user, client.namespace, containerId);
}

function tail(text: string): string {
  return text.length > TAIL_CHARS ? `…${text.slice(-TAIL_CHARS)}` : text;
}

async function runOn(
  client: ContainerdClient,
  step: ValidatedStep,
  options: RunStepOptions,
  grace: number,
  started: number,
): Promise<StepResult> {
  const signal = options.signal;
  // Asked now, needed when the capture files are made: one round trip off the critical path.
  daemonUuid(client).catch(() => {});
  await retryLeftovers(client);
  if (client.address.transport === "unix") await assertVolumeSources(step);
  await checkInputSources(step.inputs);
  await checkCollectTargets(step.collect);
  if (step.snapshotter !== undefined) await assertSnapshotter(client, step.snapshotter);
  const image = await ensureStepImage(client, step, options);
  const containerId = newContainerId(step.stepName);
  const snapshotter = step.snapshotter ?? await defaultSnapshotter(client);
  const spec = await stepSpec(client, step, image, containerId, snapshotter);
  signal?.throwIfAborted();

  let created;
  try {
    created = await createContainerTask(client, {
      containerId,
      kind: "step",
      name: step.stepName ?? "",
      imageName: image.name,
      chainId: image.chainId,
      spec,
      snapshotter,
      runtime: step.runtime,
      runcOptions: step.runcOptions,
      labels: step.labels,
      capture: {
        ioDir: options.ioDir,
        onStdout: options.onStdout,
        onStderr: options.onStderr,
        maxOutputBytes: step.maxOutputBytes,
      },
      leaseExpireMs: (step.timeoutMs ?? 24 * 3600_000) + grace + 3600_000,
      inputs: {
        inputs: step.inputs,
        owner: { uid: spec.process.user.uid, gid: spec.process.user.gid },
      },
    });
  } catch (err) {
    const failed = startFailure(err);
    if (!failed) throw err;
    throw commandFailed(step, containerId, failed, started, options.onStderr);
  }
  const { capture, wait, record } = created;
  const oom = step.memoryBytes !== undefined ? watchOom(client, containerId) : undefined;
  let ending: Ending;
  try {
    capture.startTailing();
    // An abort that came while the container was being created: never start it.
    signal?.throwIfAborted();
    await client.tasks.start({ containerId });
    ending = await watchCapture(
      capture,
      (lost) => waitForEnd(client, containerId, wait, step.timeoutMs, grace, lost),
      signal,
    );
  } catch (err) {
    oom?.close();
    const removal = await removeContainer(client, containerId, {
      gracePeriodMs: grace,
      snapshotter,
    });
    await capture.remove().catch(() => {});
    const failed = startFailure(err);
    if (failed && removal.errors.length === 0) {
      throw commandFailed(step, containerId, failed, started, options.onStderr);
    }
    throw withLeftovers(err, client, containerId, snapshotter, removal.errors);
  }
  const oomKilled = (await oom?.settle(ending.exitStatus)) ?? false;
  oom?.close();

  // Tasks.Delete drains the output; read it before the capture dir goes.
  let output: CapturedOutput | undefined;
  let collected: Collected[] = [];
  let collectError: unknown;
  const removal = await removeContainer(client, containerId, {
    gracePeriodMs: grace,
    snapshotter,
    // The task exited on its own: no lookups needed before Tasks.Delete.
    known: ending.reason === "exit"
      ? { record, task: { status: TaskStatus.STOPPED, stdout: capture.stdoutPath } }
      : undefined,
    afterTaskDelete: async () => {
      await capture.stopTailing();
      output = await capture.read();
      if (step.collect.length === 0) return;
      // After Tasks.Delete nothing writes to the snapshot; the lease still holds it.
      try {
        collected = await collectFromSnapshot(
          client.withLease(leaseIdOf(containerId)),
          { snapshotter, key: containerId, parent: image.chainId },
          step.collect,
          containerId,
        );
      } catch (err) {
        collectError = err;
      }
    },
  });
  await capture.remove().catch(() => {});
  withLeftovers(undefined, client, containerId, snapshotter, removal.errors); // retried next time
  if (ending.reason === "lost" || !output) {
    throw new StepOutputError({
      exitCode: ending.exitStatus,
      containerId,
      stopped: ending.reason === "lost",
      cause: ending.lost ?? removal.errors[0] ?? new Error("the output was not read"),
    });
  }
  if (collectError !== undefined) {
    throw new Error(
      `Cannot collect files from step ${containerId} (exit code ${ending.exitStatus}): ` +
        errorMessage(collectError),
      { cause: collectError },
    );
  }
  const exitCode = ending.exitStatus;
  const stepName = step.stepName ?? "step";
  const result: StepResult = {
    exitCode,
    stdout: output.stdout,
    stderr: output.stderr,
    stdoutTruncated: output.stdoutTruncated,
    stderrTruncated: output.stderrTruncated,
    outputs: output.outputs,
    outputData: buildOutputData(stepName, output.stdout, output.stderr, exitCode, output.outputs),
    containerId,
    durationMs: performance.now() - started,
    cleanupErrors: removal.errors,
    collected,
    oomKilled,
  };
  const failure = {
    exitCode,
    stdoutTail: tail(output.stdout),
    stderrTail: tail(output.stderr),
    result,
  };
  if (ending.reason === "abort") throw signal!.reason;
  if (ending.reason === "timeout") throw new StepTimeoutError(failure, step.timeoutMs!);
  if (oomKilled) {
    throw new StepError(
      failure,
      `container killed: out of memory (limit ${formatBytes(step.memoryBytes!)}), exit code ` +
        `${exitCode}\nstdout: ${failure.stdoutTail}\nstderr: ${failure.stderrTail}`,
    );
  }
  if (exitCode !== 0) throw new StepError(failure);
  return result;
}

/** A step whose command could not be started: exit 127 or 126 and one line on stderr. */
function commandFailed(
  step: ValidatedStep,
  containerId: string,
  failed: StartFailure,
  started: number,
  onStderr: ((line: string) => void) | undefined,
): StepError<StepResult> {
  const stderr = `${failed.message}\n`;
  onStderr?.(failed.message);
  const result: StepResult = {
    exitCode: failed.exitCode,
    stdout: "",
    stderr,
    stdoutTruncated: false,
    stderrTruncated: false,
    outputs: {},
    outputData: buildOutputData(step.stepName ?? "step", "", stderr, failed.exitCode, {}),
    containerId,
    durationMs: performance.now() - started,
    cleanupErrors: [],
    collected: [],
    oomKilled: false,
  };
  return new StepError(
    { exitCode: failed.exitCode, stdoutTail: "", stderrTail: stderr, result },
    `container could not start its command (exit code ${failed.exitCode}): ${failed.message}`,
  );
}
