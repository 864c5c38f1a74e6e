/**
 * Typed unary, server-stream and bidi calls over grpc-js, with messages encoded
 * and decoded by protobufjs from the generated descriptor.
 *
 * @module
 */

import type * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { toContainerdError } from "./errors.ts";
import { descriptor } from "../../proto/gen/descriptor.ts";

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

/** The protobufjs root built once from the generated descriptor. */
export function protoRoot(): protobuf.Root {
  if (!sharedRoot) {
    sharedRoot = protobuf.Root.fromJSON(descriptor as protobuf.INamespace);
    sharedRoot.resolveAll();
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
export type MetadataSource = (options: CallOptions | undefined) => grpc.Metadata;

function callOptions(options: CallOptions | undefined): grpc.CallOptions {
  const out: grpc.CallOptions = {};
  if (options?.timeoutMs !== undefined) {
    if (!(options.timeoutMs > 0)) {
      throw new RangeError(`Cannot use timeoutMs ${options.timeoutMs}: expected a positive number`);
    }
    out.deadline = Date.now() + options.timeoutMs;
  }
  return out;
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
  channel: grpc.Client,
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
    const serialize = (value: Record<string, unknown>): Buffer =>
      reqType.encode(reqType.fromObject(value)).finish() as Buffer;
    const deserialize = (bytes: Buffer): unknown =>
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
  channel: grpc.Client;
  /** `/package.Service/Method` */
  path: string;
  /** `Service.Method`, for error messages. */
  label: string;
  serialize: (value: Record<string, unknown>) => Buffer;
  deserialize: (bytes: Buffer) => unknown;
  metadata: MetadataSource;
}

function unary(
  { channel, path, label, serialize, deserialize, metadata }: Rpc,
  request: Record<string, unknown>,
  options: CallOptions | undefined,
): Promise<unknown> {
  const signal = options?.signal;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    let call: grpc.ClientUnaryCall | undefined;
    let release = (): void => {};
    try {
      call = channel.makeUnaryRequest(
        path,
        serialize,
        deserialize,
        request,
        metadata(options),
        callOptions(options),
        (err, value) => {
          release();
          if (err) reject(toContainerdError(err, label, signal));
          else resolve(value);
        },
      );
      release = onAbort(signal, () => call?.cancel());
    } catch (err) {
      reject(toContainerdError(err, label, signal));
    }
  });
}

async function* serverStream(
  { channel, path, label, serialize, deserialize, metadata }: Rpc,
  request: Record<string, unknown>,
  options: CallOptions | undefined,
): AsyncGenerator<unknown, void, undefined> {
  const signal = options?.signal;
  signal?.throwIfAborted();
  let call: grpc.ClientReadableStream<unknown>;
  try {
    call = channel.makeServerStreamRequest(
      path,
      serialize,
      deserialize,
      request,
      metadata(options),
      callOptions(options),
    );
  } catch (err) {
    throw toContainerdError(err, label, signal);
  }
  const release = onAbort(signal, () => call.cancel());
  let done = false;
  try {
    for await (const message of call) yield message;
    done = true;
  } catch (err) {
    throw toContainerdError(err, label, signal);
  } finally {
    release();
    // `break` (or an error in the consumer) ends the call on the server too.
    if (!done) call.cancel();
  }
}

function bidi(
  { channel, path, label, serialize, deserialize, metadata }: Rpc,
  options: CallOptions | undefined,
): BidiStream<Record<string, unknown>, unknown> {
  const signal = options?.signal;
  signal?.throwIfAborted();
  const call = channel.makeBidiStreamRequest(
    path,
    serialize,
    deserialize,
    metadata(options),
    callOptions(options),
  );
  // The first failure (server error, cancel, abort) settles `failed`, so a
  // send() whose write callback never fires still rejects.
  let failure: unknown;
  let rejectFailed: (reason: unknown) => void = () => {};
  const failed = new Promise<never>((_, reject) => (rejectFailed = reject));
  failed.catch(() => {});
  const fail = (err: unknown): void => {
    failure ??= toContainerdError(err, label, signal);
    rejectFailed(failure);
  };
  call.on("error", fail);
  const release = onAbort(signal, () => {
    fail(signal!.reason);
    call.cancel();
  });
  const iterator = call[Symbol.asyncIterator]();
  let ended = false;

  const recv = async (): Promise<unknown> => {
    if (ended) return undefined;
    try {
      const next = await Promise.race([iterator.next(), failed]);
      if (next.done) {
        ended = true;
        release();
        return undefined;
      }
      return next.value;
    } catch (err) {
      ended = true;
      release();
      throw failure ?? toContainerdError(err, label, signal);
    }
  };

  return {
    send(request: Record<string, unknown>): Promise<void> {
      if (failure) return Promise.reject(failure);
      const written = new Promise<void>((resolve, reject) => {
        try {
          call.write(request, (err?: Error | null) => {
            if (err) reject(failure ?? toContainerdError(err, label, signal));
            else resolve();
          });
        } catch (err) {
          reject(failure ?? toContainerdError(err, label, signal));
        }
      });
      return Promise.race([written, failed]);
    },
    recv,
    closeSend(): void {
      call.end();
    },
    cancel(): void {
      ended = true;
      release();
      call.cancel();
      fail(new Error("cancelled by the client"));
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
