/**
 * Typed unary, server-stream and bidi calls over this project's HTTP/2
 * channel (`h2/`), with messages encoded and decoded by protobufjs from the
 * generated descriptor.
 *
 * @module
 */

import type { GrpcCall } from "./h2/call.ts";
import type { H2Channel } from "./h2/channel.ts";
import type protobuf from "protobufjs";
import { toContainerdError } from "./errors.ts";

/** Options every call takes, last. */
export interface CallOptions {
  /** Cancels the call; the call rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Deadline of the call in milliseconds; past it the call fails DEADLINE_EXCEEDED (4). */
  timeoutMs?: number;
  /** Overrides the client's namespace for this call. */
  namespace?: string;
  /** Overrides the client's lease for this call (`""` sends no lease). */
  lease?: string;
}

/**
 * The request shape of a message: every field optional, recursively. Unset
 * fields take proto3 defaults.
 */
export type Init<T> = T extends Uint8Array ? T
  : T extends (infer U)[] ? Init<U>[]
  : T extends object ? { [K in keyof T]?: Init<T[K]> | null }
  : T;

/**
 * A bidirectional stream. `send` writes one request (honouring backpressure),
 * `recv` reads the next response (`undefined` at the end), `closeSend`
 * half-closes, `cancel` aborts. Iterating it yields the responses.
 */
export interface BidiStream<Req, Res> extends AsyncIterable<Res> {
  /** Writes one request; resolves once it is handed to the transport. */
  send(request: Req): Promise<void>;
  /** The next response, or `undefined` when the server has ended the stream. */
  recv(): Promise<Res | undefined>;
  /** Half-closes the stream: no more requests. */
  closeSend(): void;
  /** Cancels the call; pending `recv` calls reject with CANCELLED. */
  cancel(): void;
}

const DECODE_OPTIONS: protobuf.IConversionOptions = {
  longs: Number,
  defaults: true,
  arrays: true,
  objects: true,
};

let sharedRoot: protobuf.Root | undefined;
let loading: Promise<void> | undefined;

/**
 * Loads protobufjs and the generated descriptor. `connect()` does it, so
 * that commands which never connect (`--version`, `--help`) do not pay for it.
 */
export function loadProtobuf(): Promise<void> {
  return loading ??= Promise.all([
    import("protobufjs"),
    import("../../proto/gen/descriptor.ts"),
  ]).then(([pb, { descriptor }]) => {
    sharedRoot = pb.default.Root.fromJSON(descriptor as protobuf.INamespace);
    sharedRoot.resolveAll();
  });
}

/** The protobufjs root built from the generated descriptor (after {@linkcode loadProtobuf}). */
export function protoRoot(): protobuf.Root {
  if (!sharedRoot) {
    throw new Error(
      "protobuf messages are not loaded yet: connect() (or await loadProtobuf()) first",
    );
  }
  return sharedRoot;
}

/** Encodes a plain object as the message `typeName` (e.g. `"containerd.types.Mount"`). */
export function encodeMessage(typeName: string, value: Record<string, unknown>): Uint8Array {
  const type = protoRoot().lookupType(typeName);
  return type.encode(type.fromObject(value)).finish();
}

/** Decodes bytes as the message `typeName` into the shape the client exposes. */
export function decodeMessage<T>(typeName: string, bytes: Uint8Array): T {
  const type = protoRoot().lookupType(typeName);
  return type.toObject(type.decode(bytes), DECODE_OPTIONS) as T;
}

/** Supplies the metadata (namespace, lease) of each call. */
export type MetadataSource = (options: CallOptions | undefined) => Record<string, string>;

function timeoutOf(options: CallOptions | undefined): number | undefined {
  const ms = options?.timeoutMs;
  if (ms !== undefined && !(ms > 0)) {
    throw new RangeError(`Cannot use timeoutMs ${ms}: expected a positive number`);
  }
  return ms;
}

function onAbort(signal: AbortSignal | undefined, cancel: () => void): () => void {
  if (!signal) return () => {};
  signal.addEventListener("abort", cancel, { once: true });
  return () => signal.removeEventListener("abort", cancel);
}

/**
 * Builds a client object for one service: one function per RPC, named in
 * lowerCamelCase, typed by the caller through `T`.
 */
export function makeServiceClient<T>(
  channel: H2Channel,
  serviceName: string,
  metadata: MetadataSource,
): T {
  const service = protoRoot().lookupService(serviceName);
  const out: Record<string, unknown> = {};
  for (const method of service.methodsArray) {
    const reqType = method.resolvedRequestType!;
    const resType = method.resolvedResponseType!;
    const path = `/${serviceName}/${method.name}`;
    const label = `${service.name}.${method.name}`;
    const serialize = (value: Record<string, unknown>): Uint8Array =>
      reqType.encode(reqType.fromObject(value)).finish();
    const deserialize = (bytes: Uint8Array): unknown =>
      resType.toObject(resType.decode(bytes), DECODE_OPTIONS);
    const key = method.name[0].toLowerCase() + method.name.slice(1);

    const rpc: Rpc = { channel, path, label, serialize, deserialize, metadata };
    if (method.requestStream && method.responseStream) {
      out[key] = (options?: CallOptions) => bidi(rpc, options);
    } else if (method.responseStream) {
      out[key] = (request: Record<string, unknown>, options?: CallOptions) =>
        serverStream(rpc, request, options);
    } else {
      out[key] = (request: Record<string, unknown>, options?: CallOptions) =>
        unary(rpc, request, options);
    }
  }
  return out as T;
}

/** One RPC of a service: where it goes and how its messages are encoded. */
interface Rpc {
  channel: H2Channel;
  /** `/package.Service/Method` */
  path: string;
  /** `Service.Method`, for error messages. */
  label: string;
  serialize: (value: Record<string, unknown>) => Uint8Array;
  deserialize: (bytes: Uint8Array) => unknown;
  metadata: MetadataSource;
}

/** Opens the call; an abort cancels it (the call then fails with the signal's reason). */
async function open(
  rpc: Rpc,
  options: CallOptions | undefined,
): Promise<{ call: GrpcCall; release: () => void }> {
  const signal = options?.signal;
  signal?.throwIfAborted();
  const timeoutMs = timeoutOf(options);
  let call: GrpcCall;
  try {
    call = await rpc.channel.call({ path: rpc.path, metadata: rpc.metadata(options), timeoutMs });
  } catch (err) {
    throw toContainerdError(err, rpc.label, signal);
  }
  if (signal?.aborted) {
    call.cancel();
    throw signal.reason;
  }
  return { call, release: onAbort(signal, () => call.cancel()) };
}

async function unary(
  rpc: Rpc,
  request: Record<string, unknown>,
  options: CallOptions | undefined,
): Promise<unknown> {
  const signal = options?.signal;
  const bytes = rpc.serialize(request);
  const { call, release } = await open(rpc, options);
  try {
    await call.send(bytes, true);
    const reply = await call.next();
    if (reply === undefined) throw new Error("the server sent no response message");
    while (await call.next() !== undefined) { /* a unary call has one message */ }
    return rpc.deserialize(reply);
  } catch (err) {
    throw toContainerdError(err, rpc.label, signal);
  } finally {
    release();
  }
}

async function* serverStream(
  rpc: Rpc,
  request: Record<string, unknown>,
  options: CallOptions | undefined,
): AsyncGenerator<unknown, void, undefined> {
  const signal = options?.signal;
  const bytes = rpc.serialize(request);
  const { call, release } = await open(rpc, options);
  let done = false;
  try {
    await call.send(bytes, true);
    while (true) {
      const message = await call.next();
      if (message === undefined) break;
      yield rpc.deserialize(message);
    }
    done = true;
  } catch (err) {
    throw toContainerdError(err, rpc.label, signal);
  } finally {
    release();
    // `break` (or an error in the consumer) ends the call on the server too.
    if (!done) call.cancel();
  }
}

function bidi(
  rpc: Rpc,
  options: CallOptions | undefined,
): BidiStream<Record<string, unknown>, unknown> {
  const signal = options?.signal;
  signal?.throwIfAborted();
  const opening = open(rpc, options);
  opening.catch(() => {});
  let failure: unknown;
  let ended = false;
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    (await opening.catch(() => undefined))?.release();
  };
  const fail = (err: unknown): unknown => {
    failure ??= toContainerdError(err, rpc.label, signal);
    return failure;
  };
  const recv = async (): Promise<unknown> => {
    if (ended) return undefined;
    try {
      const { call } = await opening;
      const message = await call.next();
      if (message === undefined) {
        ended = true;
        await release();
        return undefined;
      }
      return rpc.deserialize(message);
    } catch (err) {
      ended = true;
      await release();
      throw failure ?? fail(err);
    }
  };
  return {
    async send(request: Record<string, unknown>): Promise<void> {
      if (failure) throw failure;
      const bytes = rpc.serialize(request);
      try {
        const { call } = await opening;
        await call.send(bytes);
      } catch (err) {
        throw failure ?? fail(err);
      }
    },
    recv,
    closeSend(): void {
      opening.then(({ call }) => call.end(), () => {});
    },
    cancel(): void {
      ended = true;
      fail(new Error("cancelled by the client"));
      opening.then(({ call }) => call.cancel(), () => {});
      void release();
    },
    async *[Symbol.asyncIterator](): AsyncGenerator<unknown, void, undefined> {
      while (true) {
        const next = await recv();
        if (next === undefined) return;
        yield next;
      }
    },
  };
}
