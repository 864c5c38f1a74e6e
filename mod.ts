/**
 * A containerd client for Deno and TypeScript that speaks containerd's gRPC
 * API directly.
 *
 * - {@linkcode connect} opens a typed client: every containerd service is a
 *   property with one method per RPC (`client.tasks.create(...)`,
 *   `client.content.read(...)`), unary calls as promises, server streams as
 *   async iterables and `content.write` as a bidi stream.
 * - {@linkcode readContent}, {@linkcode readAllContent} and
 *   {@linkcode writeContent} move blobs in and out of the content store
 *   (bounded, chunked, resumable, verified).
 * - {@linkcode withLease} keeps what a piece of work creates alive until it is
 *   done, and lets containerd collect it if the process dies.
 * - {@linkcode ContainerdError} is the one error type for failed calls, with
 *   helpers such as {@linkcode isNotFound}.
 *
 * @example
 * ```ts
 * import { connect, readAllContent } from "@wfe/containerd";
 *
 * await using client = await connect("unix:///run/containerd/containerd.sock", {
 *   namespace: "default",
 * });
 * console.log(client.serverVersion.version);
 * for await (const { images } of [await client.images.list({})]) {
 *   for (const image of images) console.log(image.name, image.target?.digest);
 * }
 * ```
 *
 * @module
 */

export {
  connect,
  type ConnectOptions,
  ContainerdClient,
  LEASE_HEADER,
  MAX_MESSAGE_BYTES,
  NAMESPACE_HEADER,
  type TlsOptions,
  withClient,
  type WithClientOptions,
} from "./lib/connection.ts";
export {
  type ContainerdAddress,
  DEFAULT_ADDRESS,
  defaultAddress,
  parseAddress,
} from "./lib/address.ts";
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
  ServiceError,
  type ServiceFailure,
  StepError,
  type StepFailure,
  StepTimeoutError,
} from "./lib/errors.ts";
export {
  type ContentSource,
  MAX_WRITE_CHUNK,
  readAllContent,
  type ReadAllContentOptions,
  readContent,
  type ReadContentOptions,
  writeContent,
  type WriteContentOptions,
  type WriteContentResult,
} from "./lib/content.ts";
export { assertDigest, isDigest, sha256Digest, Sha256Stream } from "./lib/digest.ts";
export { LEASE_EXPIRE_LABEL, type LeaseOptions, withLease } from "./lib/lease.ts";
export {
  type BidiStream,
  type CallOptions,
  decodeMessage,
  encodeMessage,
  type Init,
} from "./lib/rpc.ts";
export * from "./proto/gen/types.ts";
export { chainId, chainIds } from "./lib/chain_id.ts";
export {
  compatiblePlatforms,
  describeOffers,
  formatPlatform,
  hostPlatform,
  type LayerCompression,
  layerCompression,
  matchingManifests,
  matchPlatform,
  MediaType,
  type MediaTypeKind,
  mediaTypeKind,
  normalizePlatform,
  type OciContainerConfig,
  type OciDescriptor,
  type OciHistory,
  type OciImageConfig,
  type OciIndex,
  type OciManifest,
  type OciPlatform,
  parseImageConfig,
  parseIndex,
  parseManifest,
  type ParseOptions,
  parsePlatform,
  selectManifest,
} from "./lib/manifest.ts";
export {
  type BlobRef,
  clearImageCache,
  DEFAULT_DOMAIN,
  type ImageCacheStats,
  imageCacheStats,
  imageExists,
  imageNameCandidates,
  MAX_DOCUMENT_BYTES,
  normalizeImageName,
  type ResolvedImage,
  resolveImage,
  type ResolveImageOptions,
} from "./lib/image.ts";
export {
  buildOutputData,
  OUTPUT_PREFIX,
  OutputParser,
  type OutputParserOptions,
  parseOutputs,
} from "./lib/outputs.ts";
export {
  type Capture,
  type CapturedOutput,
  type CaptureOptions,
  type CaptureStream,
  createCapture,
  DEFAULT_MAX_OUTPUT_BYTES,
  DEFAULT_POLL_INTERVAL_MS,
  IO_DIR_ENV,
  ioBaseDir,
} from "./lib/io.ts";
export {
  type BindMount,
  buildSpec,
  DEFAULT_CAPABILITIES,
  DEFAULT_PATH,
  defaultSpec,
  type ImageProcessConfig,
  OCI_VERSION,
  type OciCapabilities,
  type OciDeviceRule,
  type OciMount,
  type OciSpec,
  SPEC_TYPE_URL,
  type SpecOpt,
  specToAny,
  withArgs,
  withBindMounts,
  withCpus,
  withCwd,
  withDefaultDevices,
  withEnv,
  withImageConfig,
  withMemoryLimit,
  withNetwork,
  withUser,
} from "./lib/oci_spec.ts";
export {
  DEFAULT_RUNTIME,
  MIN_MEMORY_BYTES,
  type NetworkMode,
  parseCpu,
  parseMemory,
  type PullPolicy,
  type StepConfig,
  type ValidatedStep,
  validateStepConfig,
} from "./lib/step_config.ts";
export {
  type ContainerTaskRequest,
  createContainerTask,
  type CreatedTask,
  DEFAULT_SNAPSHOTTER_LABEL,
  defaultSnapshotter,
  LABELS,
  leaseIdOf,
  MANAGED_BY,
  newContainerId,
  parseSignal,
  removeContainer,
  type RemoveContainerOptions,
  type RemovedContainer,
  runtimeOptions,
  stopTask,
  taskStatusName,
} from "./lib/container.ts";
export {
  buildStepSpec,
  ensureImage,
  runStep,
  type RunStepOptions,
  type StepResult,
  stepSpec,
} from "./lib/step.ts";
export {
  DEFAULT_USER,
  type GroupEntry,
  MAX_ID,
  MAX_NAME_LENGTH,
  needsImageFiles,
  parseGroup,
  parsePasswd,
  parseUserSpec,
  type PasswdEntry,
  type ResolvedUser,
  resolveUser,
  type UserFiles,
  type UserSpec,
} from "./lib/user.ts";
export {
  clearImageFilesCache,
  DEFAULT_MAX_FILE_BYTES,
  type ImageFilesCacheStats,
  imageFilesCacheStats,
  type ImageLayers,
  type LayerDescriptor,
  readImageFiles,
  type ReadImageFilesOptions,
  readImagePasswdGroup,
} from "./lib/image_files.ts";
export {
  cleanupService,
  type CleanupServiceOptions,
  listServices,
  logMatcher,
  type ReadinessCheck,
  type ReadinessOptions,
  runService,
  type RunServiceOptions,
  type ServiceClientOptions,
  serviceEnvPrefix,
  type ServiceHandle,
  type ServiceInfo,
  serviceLogs,
} from "./lib/service.ts";
export { formatDuration, parseDuration } from "./lib/duration.ts";
export {
  parseStepFile,
  type ParseStepFileOptions,
  parseVolume,
  readStepFile,
  STEP_FILE_KEYS,
  StepFileError,
} from "./lib/step_file.ts";
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
