/**
 * One gRPC call on an HTTP/2 stream: length-prefixed messages both ways,
 * status from the trailers (or a trailers-only response), deadline and
 * cancellation, stream flow control as the messages are consumed.
 *
 * @module
 */

import type { H2Session, H2Stream } from "./session.ts";

/** gRPC status codes used here. */
const CODE = {
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** A call that ended with a non-OK status (the shape `toContainerdError` reads). */
export class GrpcStatusError extends Error {
  /** The gRPC status code. */
  readonly code: number;
  /** The status message. */
  readonly details: string;

  /** Creates the error. */
  constructor(code: number, details: string) {
    super(`${code} ${details}`);
    this.name = "GrpcStatusError";
    this.code = code;
    this.details = details;
  }
}

/** What a call is sent with. */
export interface CallSetup {
  /** `/package.Service/Method`. */
  path: string;
  /** `:authority`. */
  authority: string;
  /** `http` or `https`. */
  scheme: string;
  /** Custom metadata (lower-case keys). */
  metadata: Record<string, string>;
  /** Milliseconds until the deadline. */
  timeoutMs?: number;
  /** The largest message accepted. */
  maxMessageBytes: number;
}

function httpStatusCode(status: number): number {
  if (status === 400) return CODE.INTERNAL;
  if (status === 401) return CODE.UNAUTHENTICATED;
  if (status === 403) return CODE.PERMISSION_DENIED;
  if (status === 404) return CODE.UNIMPLEMENTED;
  if ([429, 502, 503, 504].includes(status)) return CODE.UNAVAILABLE;
  return CODE.UNKNOWN;
}

function percentDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** A gRPC call in progress. */
export class GrpcCall {
  readonly #stream: H2Stream;
  readonly #max: number;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #messages: Uint8Array[] = [];
  #status: GrpcStatusError | "ok" | undefined;
  #wake: (() => void) | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #gotHeaders = false;

  constructor(session: H2Session, setup: CallSetup) {
    this.#max = setup.maxMessageBytes;
    const headers: [string, string][] = [
      [":method", "POST"],
      [":scheme", setup.scheme],
      [":path", setup.path],
      [":authority", setup.authority],
      ["content-type", "application/grpc"],
      ["te", "trailers"],
      ["user-agent", "wfe-containerd"],
    ];
    if (setup.timeoutMs !== undefined) {
      headers.push(["grpc-timeout", `${Math.max(1, Math.ceil(setup.timeoutMs))}m`]);
      this.#timer = setTimeout(
        () => this.cancel(CODE.DEADLINE_EXCEEDED, "Deadline exceeded"),
        Math.max(1, setup.timeoutMs),
      );
    }
    for (const [k, v] of Object.entries(setup.metadata)) headers.push([k, v]);
    this.#stream = session.open(headers, {
      onHeaders: (h, end) => this.#onHeaders(h, end),
      onData: (data, end) => this.#onData(data, end),
      onReset: (code, reason) => this.#onReset(code, reason),
    });
  }

  #finish(status: GrpcStatusError | "ok"): void {
    if (this.#status !== undefined) return;
    this.#status = status;
    clearTimeout(this.#timer);
    this.#signal();
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #onHeaders(headers: [string, string][], end: boolean): void {
    const get = (name: string) => headers.find(([k]) => k === name)?.[1];
    const grpcStatus = get("grpc-status");
    if (!this.#gotHeaders) {
      this.#gotHeaders = true;
      const http = Number(get(":status") ?? 0);
      if (http !== 200 && grpcStatus === undefined) {
        this.#stream.reset();
        this.#finish(new GrpcStatusError(httpStatusCode(http), `HTTP status ${http}`));
        return;
      }
    }
    if (grpcStatus !== undefined) {
      const code = Number(grpcStatus);
      const message = percentDecode(get("grpc-message") ?? "");
      this.#finish(code === 0 ? "ok" : new GrpcStatusError(code, message || `status ${code}`));
    } else if (end) {
      this.#finish(
        new GrpcStatusError(CODE.INTERNAL, "the server ended the call without a status"),
      );
    }
  }

  #onData(data: Uint8Array, end: boolean): void {
    if (data.length > 0) {
      this.#chunks.push(data);
      this.#buffered += data.length;
      try {
        this.#split();
      } catch (err) {
        this.cancel(CODE.RESOURCE_EXHAUSTED, (err as Error).message);
        return;
      }
    }
    if (end) {
      this.#finish(
        new GrpcStatusError(CODE.INTERNAL, "the server ended the call without trailers"),
      );
    }
    this.#signal();
  }

  /** Cuts complete length-prefixed messages off the received bytes. */
  #split(): void {
    while (this.#buffered >= 5) {
      const head = this.#peek(5);
      if (head[0] !== 0) throw new Error("compressed messages are not supported");
      const size = ((head[1] << 24) >>> 0) + (head[2] << 16) + (head[3] << 8) + head[4];
      if (size > this.#max) {
        throw new Error(`a message of ${size} bytes is over the limit of ${this.#max}`);
      }
      if (this.#buffered < 5 + size) return;
      this.#take(5);
      this.#messages.push(this.#take(size));
    }
  }

  #peek(n: number): Uint8Array {
    if (this.#chunks[0].length >= n) return this.#chunks[0];
    const out = new Uint8Array(n);
    let at = 0;
    for (const c of this.#chunks) {
      const part = c.subarray(0, n - at);
      out.set(part, at);
      at += part.length;
      if (at === n) break;
    }
    return out;
  }

  #take(n: number): Uint8Array {
    this.#buffered -= n;
    const first = this.#chunks[0];
    if (first && first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return out;
    }
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const c = this.#chunks[0];
      const part = c.subarray(0, n - at);
      out.set(part, at);
      at += part.length;
      if (part.length === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(part.length);
    }
    return out;
  }

  #onReset(code: number, reason: string): void {
    if (this.#status !== undefined) return;
    if (code === 0x8) this.#finish(new GrpcStatusError(CODE.CANCELLED, "Cancelled"));
    else if (code === -1 || code === 0x7) {
      this.#finish(new GrpcStatusError(CODE.UNAVAILABLE, reason));
    } else this.#finish(new GrpcStatusError(CODE.INTERNAL, `${reason} (HTTP/2 code ${code})`));
  }

  /** Sends one message; `last` also closes the request side. */
  send(message: Uint8Array, last = false): Promise<void> {
    if (this.#status instanceof GrpcStatusError) return Promise.reject(this.#status);
    const framed = new Uint8Array(5 + message.length);
    new DataView(framed.buffer).setUint32(1, message.length);
    framed.set(message, 5);
    return this.#stream.send(framed, last).catch((err) => {
      throw this.#status instanceof GrpcStatusError
        ? this.#status
        : new GrpcStatusError(CODE.UNAVAILABLE, (err as Error).message);
    });
  }

  /** Closes the request side. */
  end(): Promise<void> {
    if (this.#status !== undefined || this.#stream.closed) return Promise.resolve();
    return this.#stream.send(new Uint8Array(0), true).catch(() => {});
  }

  /** The next response message; `undefined` after the last one when the call ended OK. */
  async next(): Promise<Uint8Array | undefined> {
    while (true) {
      const message = this.#messages.shift();
      if (message) {
        this.#stream.consumed(5 + message.length);
        return message;
      }
      if (this.#status === "ok") return undefined;
      if (this.#status) throw this.#status;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /** Ends the call from this side (RST_STREAM CANCEL); `next()` then fails with `code`. */
  cancel(code: number = CODE.CANCELLED, details = "Cancelled on client"): void {
    if (this.#status !== undefined) return;
    this.#stream.reset();
    this.#messages = [];
    this.#finish(new GrpcStatusError(code, details));
  }
}
