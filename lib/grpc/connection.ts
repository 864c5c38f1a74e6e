/**
 * Opening and closing a gRPC channel to containerd: address checks, connect
 * deadline, TLS, version check, and the namespace and lease headers.
 *
 * @module
 */

import { deadline } from "../_util/async.ts";
import { readEnv } from "../_util/env.ts";
import { isIdentifier } from "../_util/identifiers.ts";
import { type ContainerdAddress, defaultAddress, parseAddress } from "./address.ts";
import { ContainerdError, GrpcCode } from "./errors.ts";
import { type CallOptions, loadProtobuf, makeServiceClient } from "./rpc.ts";
import { type ChannelTls, H2Channel } from "./h2/channel.ts";
import {
  type ContainerdServices,
  type ContainersClient,
  type ContentClient,
  type DiffClient,
  type EventsClient,
  type ImagesClient,
  type IntrospectionClient,
  type LeasesClient,
  type NamespacesClient,
  SERVICE_NAMES,
  type SnapshotsClient,
  type TasksClient,
  type VersionClient,
  type VersionResponse,
} from "../../proto/gen/types.ts";

/** Header that selects the containerd namespace of a call. */
export const NAMESPACE_HEADER = "containerd-namespace";
/** Header that attaches what a call creates to a lease. */
export const LEASE_HEADER = "containerd-lease";
/** containerd's default (and the Go client's) message size limit: 16 MiB. */
export const MAX_MESSAGE_BYTES: number = 16 * 1024 * 1024;

/** TLS material for `https://` addresses: file paths, PEM encoded. */
export interface TlsOptions {
  /** CA certificate that signed the server's certificate; system roots when omitted. */
  ca?: string;
  /** Client certificate, for mutual TLS (needs `key`). */
  cert?: string;
  /** Client private key, for mutual TLS (needs `cert`). */
  key?: string;
}

/** Options of {@linkcode connect}. */
export interface ConnectOptions {
  /**
   * Namespace sent with every call.
   * @default {CONTAINERD_NAMESPACE or "default"}
   */
  namespace?: string;
  /** Lease attached to every mutating call (see {@linkcode ContainerdClient.withLease}). */
  lease?: string;
  /**
   * How long to wait for the connection and the version check, in milliseconds.
   * @default {5000}
   */
  connectTimeoutMs?: number;
  /** TLS files for `https://` addresses. */
  tls?: TlsOptions;
  /** Cancels connecting. */
  signal?: AbortSignal;
}

interface Shared {
  channel: H2Channel;
  address: ContainerdAddress;
  closed: boolean;
}

/**
 * A connection to containerd. Every service of the API is a property with one
 * typed method per RPC (`client.content.read(...)`, `client.tasks.create(...)`):
 * unary calls return promises, server streams async iterables (`break` cancels
 * the call), `content.write` a bidi stream. Every method takes
 * {@linkcode CallOptions} last.
 *
 * {@linkcode ContainerdClient.withNamespace} and
 * {@linkcode ContainerdClient.withLease} return views that share the channel;
 * closing any of them closes the channel.
 *
 * @example
 * ```ts
 * import { connect } from "@wfe/containerd";
 *
 * await using client = await connect("/run/containerd/containerd.sock");
 * console.log(client.serverVersion.version);
 * for await (const info of client.content.list({})) console.log(info.info?.digest);
 * ```
 */
export class ContainerdClient implements ContainerdServices, AsyncDisposable {
  /** The address as parsed. */
  readonly address: ContainerdAddress;
  /** Namespace sent with every call (the `containerd-namespace` header). */
  readonly namespace: string;
  /** Lease sent with every call (the `containerd-lease` header), if any. */
  readonly lease: string | undefined;
  /** What the server's Version RPC answered at connect time. */
  readonly serverVersion: VersionResponse;
  /** `containerd.services.version.v1.Version` */
  readonly version: VersionClient;
  /** `containerd.services.containers.v1.Containers` */
  readonly containers: ContainersClient;
  /** `containerd.services.content.v1.Content` */
  readonly content: ContentClient;
  /** `containerd.services.images.v1.Images` */
  readonly images: ImagesClient;
  /** `containerd.services.snapshots.v1.Snapshots` */
  readonly snapshots: SnapshotsClient;
  /** `containerd.services.tasks.v1.Tasks` */
  readonly tasks: TasksClient;
  /** `containerd.services.diff.v1.Diff` */
  readonly diff: DiffClient;
  /** `containerd.services.leases.v1.Leases` */
  readonly leases: LeasesClient;
  /** `containerd.services.events.v1.Events` */
  readonly events: EventsClient;
  /** `containerd.services.introspection.v1.Introspection` */
  readonly introspection: IntrospectionClient;
  /** `containerd.services.namespaces.v1.Namespaces` */
  readonly namespaces: NamespacesClient;

  #shared: Shared;

  /** Use {@linkcode connect}; this constructor is internal. */
  private constructor(
    shared: Shared,
    namespace: string,
    lease: string | undefined,
    serverVersion: VersionResponse,
  ) {
    validateNamespace(namespace);
    this.#shared = shared;
    this.address = shared.address;
    this.namespace = namespace;
    this.lease = lease;
    this.serverVersion = serverVersion;
    const metadata = (options: CallOptions | undefined): Record<string, string> => {
      const md: Record<string, string> = {
        [NAMESPACE_HEADER]: options?.namespace ?? this.namespace,
      };
      const lease = options?.lease ?? this.lease;
      if (lease) md[LEASE_HEADER] = lease;
      return md;
    };
    const make = <K extends keyof ContainerdServices>(key: K): ContainerdServices[K] =>
      makeServiceClient<ContainerdServices[K]>(shared.channel, SERVICE_NAMES[key], metadata);
    this.version = make("version");
    this.containers = make("containers");
    this.content = make("content");
    this.images = make("images");
    this.snapshots = make("snapshots");
    this.tasks = make("tasks");
    this.diff = make("diff");
    this.leases = make("leases");
    this.events = make("events");
    this.introspection = make("introspection");
    this.namespaces = make("namespaces");
  }

  /** @internal Opens the channel; used by {@linkcode connect}. */
  static async open(address: string, options: ConnectOptions = {}): Promise<ContainerdClient> {
    const parsed = parseAddress(address);
    const timeoutMs = options.connectTimeoutMs ?? 5000;
    if (!(timeoutMs > 0)) {
      throw new RangeError(
        `Cannot use connectTimeoutMs ${timeoutMs}: expected a positive number of milliseconds`,
      );
    }
    const namespace = options.namespace ?? readEnv("CONTAINERD_NAMESPACE") ?? "default";
    validateNamespace(namespace);
    options.signal?.throwIfAborted();
    const deadline = Date.now() + timeoutMs;
    await Promise.all([preflight(parsed, address, timeoutMs), loadProtobuf()]);
    const channel = new H2Channel(parsed, await tlsMaterial(parsed, options.tls));
    const shared: Shared = { channel, address: parsed, closed: false };
    try {
      await waitForReady(channel, deadline, `${address} within ${timeoutMs} ms`, options.signal);
      const probe = new ContainerdClient(shared, namespace, options.lease, {
        version: "",
        revision: "",
      });
      const version = await probe.version.version({}, {
        signal: options.signal,
        timeoutMs: Math.max(1, deadline - Date.now()),
      });
      checkServerVersion(version.version, address);
      return new ContainerdClient(shared, namespace, options.lease, version);
    } catch (err) {
      channel.close();
      throw err;
    }
  }

  /** A view of this client that sends `namespace` with every call. */
  withNamespace(namespace: string): ContainerdClient {
    return new ContainerdClient(this.#shared, namespace, this.lease, this.serverVersion);
  }

  /**
   * A view of this client that attaches what its calls create to the lease `id`
   * (or no lease for `undefined`).
   */
  withLease(id: string | undefined): ContainerdClient {
    return new ContainerdClient(this.#shared, this.namespace, id, this.serverVersion);
  }

  /** Whether {@linkcode ContainerdClient.close} has been called. */
  get closed(): boolean {
    return this.#shared.closed;
  }

  /** Closes the channel (shared by all views). Calls in flight fail CANCELLED. */
  close(): void {
    if (this.#shared.closed) return;
    this.#shared.closed = true;
    this.#shared.channel.close();
  }

  /** Closes the channel; enables `await using client = await connect()`. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/**
 * Connects to containerd and checks its version.
 *
 * @param address A socket path, `unix:///path`, `tcp://host:port`,
 *   `http://host:port` or `https://host:port`; defaults to
 *   `WFE_CONTAINERD_ADDR`, then `CONTAINERD_ADDRESS`, then
 *   `/run/containerd/containerd.sock`.
 * @param options Namespace, lease, connect deadline, TLS files, signal.
 * @returns A connected client; close it with `close()` or `await using`.
 * @throws {TypeError} When the address cannot be parsed.
 * @throws {ContainerdError} With code UNAVAILABLE (14) and method `connect`
 *   when the socket does not exist, nothing listens, or the connection and
 *   version check do not finish within `connectTimeoutMs`.
 *
 * @example
 * ```ts
 * import { connect } from "@wfe/containerd";
 *
 * await using client = await connect("tcp://127.0.0.1:2500", { namespace: "wfe" });
 * const { version } = await client.version.version({});
 * ```
 */
export function connect(
  address: string = defaultAddress(),
  options: ConnectOptions = {},
): Promise<ContainerdClient> {
  return ContainerdClient.open(address, options);
}

function unavailable(details: string, cause?: unknown): ContainerdError {
  return new ContainerdError({ code: GrpcCode.UNAVAILABLE, method: "connect", details, cause });
}

function validateNamespace(namespace: string): void {
  if (!isIdentifier(namespace)) {
    throw new TypeError(
      `Cannot use namespace '${namespace}': expected letters and digits separated by '.', '_' ` +
        "or '-', at most 76 characters",
    );
  }
}

async function preflight(
  address: ContainerdAddress,
  original: string,
  timeoutMs: number,
): Promise<void> {
  if (address.transport === "unix") {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(address.path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw unavailable(`containerd socket not found: ${address.path}`, err);
      }
      throw unavailable(`cannot access containerd socket ${address.path}: ${message(err)}`, err);
    }
    if (!info.isSocket) {
      throw unavailable(`not a socket: ${address.path} (is the containerd address right?)`);
    }
    return;
  }
  // A quick TCP dial turns "connection refused" into an immediate, clear error
  // instead of a wait until the deadline.
  try {
    const conn = await deadline(
      Deno.connect({ hostname: address.host, port: address.port }),
      timeoutMs,
      { dispose: (c) => c.close() },
    );
    conn.close();
  } catch (err) {
    throw unavailable(`cannot connect to containerd at ${original}: ${message(err)}`, err);
  }
}

function message(err: unknown): string {
  if (err instanceof Deno.errors.ConnectionRefused) return "connection refused";
  return err instanceof Error ? err.message : String(err);
}

async function tlsMaterial(
  address: ContainerdAddress,
  tls: TlsOptions | undefined,
): Promise<ChannelTls | undefined> {
  if (address.transport === "unix" || !address.tls) {
    if (tls && (tls.ca || tls.cert || tls.key) && address.transport === "tcp") {
      throw new TypeError(
        `Cannot use tls options with '${address.target}': only https:// addresses use TLS`,
      );
    }
    return undefined;
  }
  if (!!tls?.cert !== !!tls?.key) {
    throw new TypeError("Cannot use tls.cert without tls.key (or the reverse): give both");
  }
  const read = async (field: string, path: string | undefined): Promise<string | undefined> => {
    if (!path) return undefined;
    try {
      return await Deno.readTextFile(path);
    } catch (err) {
      throw new TypeError(`Cannot read tls.${field} '${path}': ${message(err)}`);
    }
  };
  return {
    ca: await read("ca", tls?.ca),
    cert: await read("cert", tls?.cert),
    key: await read("key", tls?.key),
  };
}

/** Opens the connection (HTTP/2 settings exchanged) within the deadline. */
async function waitForReady(
  channel: H2Channel,
  deadlineAt: number,
  what: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  const abort = new Promise<never>((_, reject) => {
    signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
  abort.catch(() => {});
  try {
    await Promise.race([
      deadline(channel.session(), Math.max(1, deadlineAt - Date.now()), { what: "connect" }),
      abort,
    ]);
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    const why = err instanceof Error
      ? ((err as { details?: string }).details ?? err.message)
      : String(err);
    throw unavailable(`cannot connect to containerd at ${what}: ${why}`, err);
  }
}

function checkServerVersion(version: string, address: string): void {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1]);
  if (!Number.isFinite(major)) return; // development builds report odd strings
  if (major < 1 || major > 2) {
    throw new ContainerdError({
      code: GrpcCode.FAILED_PRECONDITION,
      method: "connect",
      details: `containerd ${version} at ${address} is not supported (expected 1.x or 2.x)`,
    });
  }
}

/** Options of {@linkcode withClient}. */
export interface WithClientOptions {
  /** A connected client to use and leave open; otherwise one is opened and closed. */
  client?: ContainerdClient;
  /** Namespace for the calls (a view of `client`, or the new client's). */
  namespace?: string;
  /** TLS files for an `https://` address. */
  tls?: TlsOptions;
  /** Cancels connecting. */
  signal?: AbortSignal;
}

/**
 * Runs `fn` with `options.client` (in `options.namespace` when given), or
 * with a client connected to `address` for the call and closed afterwards.
 *
 * @example
 * ```ts
 * import { withClient } from "@wfe/containerd";
 *
 * const names = await withClient(undefined, { namespace: "default" }, async (client) =>
 *   (await client.images.list({})).images.map((i) => i.name));
 * ```
 */
export async function withClient<T>(
  address: string | undefined,
  options: WithClientOptions,
  fn: (client: ContainerdClient) => Promise<T>,
): Promise<T> {
  const owned = options.client ? undefined : await connect(address, {
    namespace: options.namespace,
    tls: options.tls,
    signal: options.signal,
  });
  try {
    let client = options.client ?? owned!;
    if (options.namespace !== undefined) client = client.withNamespace(options.namespace);
    return await fn(client);
  } finally {
    owned?.close();
  }
}
