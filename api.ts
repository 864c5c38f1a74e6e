/**
 * The lower level of `@wfe/containerd`: the raw typed client (every
 * containerd RPC), the generated proto types, and the building blocks that
 * {@linkcode runStep} and the service functions are made of: content reads and
 * writes, leases, digests and chain IDs, OCI media types, documents,
 * platforms and references, image resolution over a blob provider, reading
 * files from image layers, the runtime spec builder, capture files, users,
 * container lifecycle and labels. Everything `@wfe/containerd` exports is
 * exported here too.
 *
 * Use the main entry for running steps and services; come here to speak to
 * containerd directly.
 *
 * @example
 * ```ts
 * import { connect, contentStoreProvider, readAllContent, resolveManifest } from "@wfe/containerd/api";
 *
 * await using client = await connect();
 * const { images } = await client.images.list({});
 * for (const image of images) console.log(image.name, image.target?.digest);
 * const target = images[0]?.target;
 * if (target) {
 *   const resolved = await resolveManifest(contentStoreProvider(client), target);
 *   const config = await readAllContent(client, resolved.configDigest);
 *   console.log(resolved.chainId, config.length);
 * }
 * ```
 *
 * @module
 */

export * from "./mod.ts";
export { DEFAULT_MAX_FILE_BYTES } from "./lib/archive/layered.ts";
export { assertDigest, isDigest, sha256Digest, Sha256Stream } from "./lib/content/digest.ts";
export { type LeaseOptions, withLease } from "./lib/content/lease.ts";
export {
  MAX_WRITE_CHUNK,
  readAllContent,
  type ReadAllContentOptions,
  readContent,
  type ReadContentOptions,
} from "./lib/content/read.ts";
export {
  type ContentSource,
  type ResumableSource,
  writeContent,
  type WriteContentOptions,
  type WriteContentResult,
} from "./lib/content/write.ts";
export { parseAddress } from "./lib/grpc/address.ts";
export { LEASE_HEADER, MAX_MESSAGE_BYTES, NAMESPACE_HEADER } from "./lib/grpc/connection.ts";
export { decodeMessage, encodeMessage } from "./lib/grpc/rpc.ts";
export {
  clearImageFilesCache,
  type ImageFilesCacheStats,
  imageFilesCacheStats,
  type ImageLayers,
  readImageFiles,
  type ReadImageFilesOptions,
  readImagePasswdGroup,
} from "./lib/image/files.ts";
export {
  imageUserFiles,
  type ImageUserFilesOptions,
  USER_FILES_LABEL,
  type UserFilesImage,
} from "./lib/image/user_files.ts";
export { layerDirs, readLocalPasswdGroup } from "./lib/image/local_snapshot.ts";
export {
  imageExists,
  type ResolvedImage,
  resolveImage,
  type ResolveImageOptions,
} from "./lib/image/resolve.ts";
export { chainId, chainIds } from "./lib/oci/chain_id.ts";
export { parseImageConfig, parseIndex, parseManifest } from "./lib/oci/documents.ts";
export {
  type LayerCompression,
  layerCompression,
  MediaType,
  type MediaTypeKind,
  mediaTypeKind,
} from "./lib/oci/media_types.ts";
export {
  compatiblePlatforms,
  describeOffers,
  formatPlatform,
  hostPlatform,
  matchingManifests,
  matchPlatform,
  normalizePlatform,
  parsePlatform,
  selectManifest,
} from "./lib/oci/platform.ts";
export {
  DEFAULT_DOMAIN,
  formatReference,
  imageNameCandidates,
  type ImageReference,
  normalizeImageName,
  parseReference,
} from "./lib/oci/reference.ts";
export {
  clearImageCache,
  type ImageCacheStats,
  imageCacheStats,
  MAX_DOCUMENT_BYTES,
  type ResolvedManifest,
  resolveManifest,
  type ResolveManifestOptions,
} from "./lib/image/manifest.ts";
export {
  type BlobProvider,
  contentStoreProvider,
  type OpenBlobOptions,
  type ReadBlobOptions,
} from "./lib/image/provider.ts";
export { type StoredImage, storeImage, type StoreImageOptions } from "./lib/image/store.ts";
export {
  labelUnpacked,
  type UnpackLayer,
  unpackLayer,
  type UnpackLayerOptions,
} from "./lib/image/unpack.ts";
export {
  type ArchivedImage,
  type ImageArchive,
  openImageArchive,
  type OpenImageArchiveOptions,
} from "./lib/archive/image_archive.ts";
export {
  defaultSeccompProfile,
  kernelAtLeast,
  type SeccompProfile,
  type SeccompSyscall,
} from "./lib/oci/seccomp.ts";
export {
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
} from "./lib/oci/spec.ts";
export type {
  OciContainerConfig,
  OciDescriptor,
  OciHistory,
  OciImageConfig,
  OciIndex,
  OciManifest,
  OciPlatform,
  ParseOptions,
} from "./lib/oci/types.ts";
export {
  type Capture,
  type CapturedOutput,
  type CaptureOptions,
  type CaptureStream,
  createCapture,
  DEFAULT_MAX_OUTPUT_BYTES,
  DEFAULT_POLL_INTERVAL_MS,
  IO_DIR_ENV,
  IO_PERMISSIVE_ENV,
  ioBaseDir,
} from "./lib/runtime/capture.ts";
export { type CaptureOwner, daemonUuid, OWNER_FILE, readOwner } from "./lib/runtime/owner.ts";
export {
  type ContainerTaskRequest,
  createContainerTask,
  type CreatedTask,
} from "./lib/runtime/container.ts";
export {
  applyInputs,
  type Input,
  type InputOwner,
  INPUTS_MEDIA_TYPE,
  packInputs,
  validateInputs,
  writeInputs,
} from "./lib/runtime/inputs.ts";
export { type CreatedExec, createExec, PROCESS_TYPE_URL } from "./lib/runtime/exec.ts";
export { serviceCaptureDir } from "./lib/service/logs.ts";
export { type OomWatch, type StartFailure, startFailure, watchOom } from "./lib/runtime/oom.ts";
export {
  encodeTarGlobalHeader,
  encodeTarHeader,
  TAR_BLOCK,
  tarEnd,
  tarHeaderChecksum,
  tarPadding,
  type TarWriteEntry,
} from "./lib/archive/tar_write.ts";
export { DEFAULT_SNAPSHOTTER_LABEL, LABELS, LEASE_EXPIRE_LABEL, MANAGED_BY } from "./lib/labels.ts";
export { removeContainer, type RemoveContainerOptions } from "./lib/runtime/remove.ts";
export {
  DEFAULT_RUNTIME,
  defaultSnapshotter,
  leaseIdOf,
  newContainerId,
  parseSignal,
  runtimeOptions,
  stopTask,
  taskStatusName,
} from "./lib/runtime/task.ts";
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
} from "./lib/runtime/user.ts";
export { logMatcher } from "./lib/service/readiness.ts";
export { MIN_MEMORY_BYTES, parseCpu, parseMemory } from "./lib/step/config.ts";
export { STEP_FILE_KEYS } from "./lib/step/file.ts";
export { buildOutputData, OutputParser, type OutputParserOptions } from "./lib/step/outputs.ts";
export { buildStepSpec, ensureStepImage, stepSpec } from "./lib/step/run.ts";
export * from "./proto/gen/types.ts";
export {
  type LayerSource,
  readLayeredFiles,
  type ReadLayeredFilesOptions,
} from "./lib/archive/layered.ts";
export { readTar, type TarEntryType, type TarHeader, type TarItem } from "./lib/archive/tar.ts";
export {
  type BlobRetryEvent,
  MANIFEST_ACCEPT,
  MAX_MANIFEST_BYTES,
  RegistryClient,
  type RegistryClientOptions,
  type ResolvedReference,
} from "./lib/registry/client.ts";
export { RegistryError, type RegistryErrorOptions } from "./lib/registry/errors.ts";
export {
  type AuthChallenge,
  parseChallenge,
  type RegistryCredentials,
} from "./lib/registry/auth.ts";
export { type DockerConfigOptions, dockerCredentials } from "./lib/registry/docker_config.ts";
