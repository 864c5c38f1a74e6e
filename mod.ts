/**
 * Run workflow steps and service containers on containerd from Deno and
 * TypeScript, speaking containerd's gRPC API directly (no `ctr`, no Docker).
 *
 * - {@linkcode runStep} runs a command in a fresh container and returns its
 *   exit code, stdout, stderr and `##wfe[output key=value]` outputs; it
 *   honours a timeout and an abort signal and leaves nothing behind.
 * - {@linkcode runService} starts a long-running host-network container and
 *   waits until a readiness check passes; {@linkcode cleanupService},
 *   {@linkcode listServices} and {@linkcode serviceLogs} manage it.
 * - {@linkcode parseStepFile} and {@linkcode readStepFile} read wfe's YAML
 *   step files; {@linkcode prune} removes what interrupted runs left.
 * - {@linkcode connect} opens a typed client for everything else; the raw
 *   client's building blocks and the generated proto types live in
 *   `@wfe/containerd/api`.
 *
 * @example
 * ```ts
 * import { runStep } from "@wfe/containerd";
 *
 * const result = await runStep({
 *   image: "docker.io/library/alpine:3.20",
 *   run: "echo hello; echo '##wfe[output greeting=hi]'",
 *   timeoutMs: 60_000,
 * });
 * console.log(result.exitCode, result.stdout, result.outputs.greeting); // 0 "hello\n..." "hi"
 * ```
 *
 * @example
 * ```ts
 * import { cleanupService, runService } from "@wfe/containerd";
 *
 * const svc = await runService(undefined, "svc-web", "docker.io/library/busybox:1.36", {}, {
 *   command: ["httpd", "-f", "-p", "8080"],
 *   ports: [8080],
 * });
 * console.log(svc.endpoints); // ["127.0.0.1:8080"]
 * await cleanupService(undefined, svc.containerId);
 * ```
 *
 * @module
 */

// Steps
export { runStep, type RunStepOptions, type StepResult } from "./lib/step/run.ts";
export { pull, type PulledImage, type PullOptions } from "./lib/image/pull.ts";
export { importImages, type ImportImagesOptions, type ImportResult } from "./lib/image/import.ts";
export { ensureImage, type EnsureImageOptions } from "./lib/image/policy.ts";
export type { PullPhase, PullProgress, StoredImage } from "./lib/image/store.ts";
export { RegistryClient, type RegistryClientOptions } from "./lib/registry/client.ts";
export { RegistryError } from "./lib/registry/errors.ts";
export {
  type NetworkMode,
  type PullPolicy,
  type StepConfig,
  type ValidatedStep,
  validateStepConfig,
} from "./lib/step/config.ts";
export {
  parseStepFile,
  type ParseStepFileOptions,
  parseVolume,
  readStepFile,
  StepFileError,
} from "./lib/step/file.ts";
export { formatDuration, parseDuration } from "./lib/step/duration.ts";
export { OUTPUT_PREFIX, parseOutputs } from "./lib/step/outputs.ts";
export {
  StepError,
  type StepFailure,
  StepOutputError,
  StepTimeoutError,
} from "./lib/step/errors.ts";
export type { BindMount } from "./lib/oci/spec.ts";
export { parseCollect, parseInput, parseOctalMode } from "./lib/step/volume.ts";
export type { Input } from "./lib/runtime/inputs.ts";
export type { Collected, CollectSpec } from "./lib/runtime/collect.ts";
export { copyFromService } from "./lib/service/copy.ts";

// Services
export {
  runService,
  type RunServiceOptions,
  serviceEnvPrefix,
  type ServiceHandle,
} from "./lib/service/start.ts";
export { type ReadinessCheck, type ReadinessOptions } from "./lib/service/readiness.ts";
export {
  cleanupService,
  type CleanupServiceOptions,
  listServices,
  type ServiceClientOptions,
  type ServiceInfo,
  serviceLogs,
} from "./lib/service/manage.ts";
export { PortInUseError, ServiceError, type ServiceFailure } from "./lib/service/errors.ts";
export { execInService, type ExecOptions, type ExecResult } from "./lib/service/exec.ts";
export {
  type FollowLogsOptions,
  type FollowLogsResult,
  followServiceLogs,
} from "./lib/service/logs.ts";
export type { RemovedContainer } from "./lib/runtime/remove.ts";

// Leftovers
export {
  type ContainerPart,
  type KeptItem,
  prune,
  type PrunedCaptureDir,
  type PrunedContainer,
  type PrunedLease,
  type PrunedSnapshot,
  type PruneOptions,
  type PruneReport,
} from "./lib/prune.ts";

// Connecting and errors
export {
  connect,
  type ConnectOptions,
  ContainerdClient,
  type TlsOptions,
  withClient,
  type WithClientOptions,
} from "./lib/grpc/connection.ts";
export { DEFAULT_ADDRESS, defaultAddress } from "./lib/grpc/address.ts";
export {
  codeName,
  ContainerdError,
  type ContainerdErrorOptions,
  GrpcCode,
  isAlreadyExists,
  isDeadlineExceeded,
  isFailedPrecondition,
  isInvalidArgument,
  isNotFound,
  isUnavailable,
  isUnimplemented,
} from "./lib/grpc/errors.ts";
export type { ContainerdAddress } from "./lib/grpc/address.ts";
export type { BidiStream, CallOptions, Init } from "./lib/grpc/rpc.ts";

// The client's request and response types (types only; values such as enums are in ./api).
export type * from "./proto/gen/types.ts";
