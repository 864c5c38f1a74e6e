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
