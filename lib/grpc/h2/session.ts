/**
 * A client HTTP/2 connection (RFC 9113) over a Deno connection (Unix socket,
 * TCP or TLS): frames, settings, flow control in both directions, PING and
 * GOAWAY. Streams are handed to the gRPC layer (`call.ts`).
 *
 * @module
 */

import { encodeHeaders, HpackDecoder } from "./hpack.ts";
import { F, frame, T } from "./frames.ts";
import { concat } from "../../_util/bytes.ts";

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/**
 * Our receive window per stream and for the connection: larger than the
 * largest message (16 MiB and its prefix), since a stream's credit comes back
 * only as whole messages are consumed.
 */
const RECV_WINDOW = 32 * 1024 * 1024;
const DEFAULT_WINDOW = 65535;
/** A header block larger than this is refused. */
const MAX_HEADER_BLOCK = 1024 * 1024;

/** What a stream's owner hears from the connection. */
export interface StreamEvents {
  /** A complete header block (response headers, or trailers when `end`). */
  onHeaders(headers: [string, string][], end: boolean): void;
  /** Data (already counted against the window: call `consumed` when it is used). */
  onData(data: Uint8Array, end: boolean): void;
  /** The stream ended abnormally (RST_STREAM, GOAWAY, connection loss). */
  onReset(code: number, reason: string): void;
}

/** One open stream. */
export class H2Stream {
  readonly id: number;
  readonly #session: H2Session;
  /** Send window. */
  window: number;
  closed = false;
  /** Received bytes not yet handed back to the peer by WINDOW_UPDATE. */
  #unacked = 0;

  constructor(session: H2Session, id: number, window: number, readonly events: StreamEvents) {
    this.#session = session;
    this.id = id;
    this.window = window;
  }

  /** Sends data, waiting for flow-control credit; `end` closes our side. */
  send(data: Uint8Array, end: boolean): Promise<void> {
    return this.#session.sendData(this, data, end);
  }

  /** Tells the peer that `n` received bytes were used (stream-level WINDOW_UPDATE). */
  consumed(n: number): void {
    if (this.closed) return;
    this.#unacked += n;
    if (this.#unacked >= RECV_WINDOW / 4) {
      this.#session.windowUpdate(this.id, this.#unacked);
      this.#unacked = 0;
    }
  }

  /** Resets the stream (CANCEL by default). */
  reset(code = 0x8): void {
    if (this.closed) return;
    this.#session.resetStream(this, code);
  }
}

/** An HTTP/2 client connection. */
export class H2Session {
  readonly #conn: Deno.Conn;
  readonly #streams = new Map<number, H2Stream>();
  readonly #hpack = new HpackDecoder();
  #nextId = 1;
  #sendWindow = DEFAULT_WINDOW;
  #peerInitialWindow = DEFAULT_WINDOW;
  #peerMaxFrame = 16384;
  #writing: Promise<void> = Promise.resolve();
  #creditWaiters: (() => void)[] = [];
  #recvUnacked = 0;
  #closed: { reason: string } | undefined;
  #goawayLast = Infinity;
  #headerBlock: { id: number; end: boolean; parts: Uint8Array[]; size: number } | undefined;
  /** Resolves when the peer's first SETTINGS arrived (the connection works). */
  readonly ready: Promise<void>;
  #settled!: { resolve: () => void; reject: (e: Error) => void };
  /** Called once when the connection ends. */
  onClose: ((reason: string) => void) | undefined;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.ready = new Promise((resolve, reject) => (this.#settled = { resolve, reject }));
    this.ready.catch(() => {});
    const settings = new Uint8Array(18);
    const view = new DataView(settings.buffer);
    view.setUint16(0, 0x2); // ENABLE_PUSH
    view.setUint32(2, 0);
    view.setUint16(6, 0x4); // INITIAL_WINDOW_SIZE
    view.setUint32(8, RECV_WINDOW);
    view.setUint16(12, 0x6); // MAX_HEADER_LIST_SIZE
    view.setUint32(14, MAX_HEADER_BLOCK);
    const inc = new Uint8Array(4);
    new DataView(inc.buffer).setUint32(0, RECV_WINDOW - DEFAULT_WINDOW);
    this.#write([PREFACE, frame(T.SETTINGS, 0, 0, settings), frame(T.WINDOW, 0, 0, inc)]);
    this.#readLoop();
  }

  /** Whether the connection ended. */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /** Whether new streams can be opened (the connection is up and the server is not going away). */
  get usable(): boolean {
    return this.#closed === undefined && this.#goawayLast === Infinity;
  }

  /** Opens a stream by sending its request headers. */
  open(headers: ReadonlyArray<readonly [string, string]>, events: StreamEvents): H2Stream {
    if (this.#closed) throw new Error(`the connection is closed: ${this.#closed.reason}`);
    const id = this.#nextId;
    this.#nextId += 2;
    if (id > this.#goawayLast) throw new Error("the server is going away");
    const stream = new H2Stream(this, id, this.#peerInitialWindow, events);
    this.#streams.set(id, stream);
    const block = encodeHeaders(headers);
    const frames: Uint8Array[] = [];
    for (let at = 0; at < block.length || at === 0; at += this.#peerMaxFrame) {
      const part = block.subarray(at, at + this.#peerMaxFrame);
      const last = at + this.#peerMaxFrame >= block.length;
      frames.push(frame(at === 0 ? T.HEADERS : T.CONT, last ? F.END_HEADERS : 0, id, part));
      if (last) break;
    }
    this.#write(frames);
    return stream;
  }

  /** @internal Sends DATA within the flow-control windows. */
  async sendData(stream: H2Stream, data: Uint8Array, end: boolean): Promise<void> {
    let at = 0;
    do {
      if (stream.closed || this.#closed) {
        throw new Error(
          this.#closed
            ? `the connection is closed: ${this.#closed.reason}`
            : "the stream is closed",
        );
      }
      const room = Math.min(this.#sendWindow, stream.window, this.#peerMaxFrame);
      if (room <= 0 && at < data.length) {
        await new Promise<void>((resolve) => this.#creditWaiters.push(resolve));
        continue;
      }
      const part = data.subarray(at, at + Math.max(0, room));
      at += part.length;
      this.#sendWindow -= part.length;
      stream.window -= part.length;
      const last = at >= data.length;
      await this.#write([frame(T.DATA, last && end ? F.END_STREAM : 0, stream.id, part)]);
    } while (at < data.length);
  }

  /** @internal */
  windowUpdate(id: number, n: number): void {
    const inc = new Uint8Array(4);
    new DataView(inc.buffer).setUint32(0, n);
    this.#write([frame(T.WINDOW, 0, id, inc)]);
  }

  /** @internal */
  resetStream(stream: H2Stream, code: number): void {
    const payload = new Uint8Array(4);
    new DataView(payload.buffer).setUint32(0, code);
    this.#write([frame(T.RST_STREAM, 0, stream.id, payload)]);
    this.#forget(stream);
  }

  #forget(stream: H2Stream): void {
    stream.closed = true;
    this.#streams.delete(stream.id);
    this.#wake(); // a sender waiting for credit on it gives up
  }

  /** Closes the connection; open streams are reset with `reason`. */
  close(reason = "closed by the client"): void {
    if (this.#closed) return;
    const goaway = new Uint8Array(8);
    this.#write([frame(T.GOAWAY, 0, 0, goaway)]);
    this.#shutdown(reason);
    this.#writing.finally(() => {
      try {
        this.#conn.close();
      } catch { /* already closed */ }
    });
  }

  #shutdown(reason: string): void {
    if (this.#closed) return;
    this.#closed = { reason };
    this.#settled.reject(new Error(reason));
    for (const stream of [...this.#streams.values()]) {
      this.#forget(stream);
      stream.events.onReset(-1, reason);
    }
    for (const wake of this.#creditWaiters.splice(0)) wake();
    this.onClose?.(reason);
  }

  #write(frames: Uint8Array[]): Promise<void> {
    const bytes = frames.length === 1 ? frames[0] : concat(frames);
    const next = this.#writing.then(async () => {
      for (let at = 0; at < bytes.length;) at += await this.#conn.write(bytes.subarray(at));
    });
    this.#writing = next.catch((err) => this.#shutdown(`write failed: ${errorText(err)}`));
    return next;
  }

  async #readLoop(): Promise<void> {
    let buf = new Uint8Array(64 * 1024);
    let len = 0;
    try {
      while (true) {
        if (len === buf.length) {
          const bigger = new Uint8Array(buf.length * 2);
          bigger.set(buf);
          buf = bigger;
        }
        const n = await this.#conn.read(buf.subarray(len));
        if (n === null) throw new Error("the server closed the connection");
        len += n;
        let at = 0;
        while (len - at >= 9) {
          const size = (buf[at] << 16) | (buf[at + 1] << 8) | buf[at + 2];
          if (size > RECV_WINDOW) throw new Error(`frame of ${size} bytes`);
          if (len - at < 9 + size) {
            if (buf.length < 9 + size) {
              const bigger = new Uint8Array(Math.max(buf.length * 2, 9 + size));
              bigger.set(buf.subarray(at, len));
              buf = bigger;
              len -= at;
              at = 0;
            }
            break;
          }
          const type = buf[at + 3];
          const flags = buf[at + 4];
          const id = ((buf[at + 5] & 0x7f) << 24) | (buf[at + 6] << 16) | (buf[at + 7] << 8) |
            buf[at + 8];
          // A copy: the buffer is reused for the next reads.
          this.#frame(type, flags, id, buf.slice(at + 9, at + 9 + size));
          at += 9 + size;
        }
        if (at > 0) {
          buf.copyWithin(0, at, len);
          len -= at;
        }
      }
    } catch (err) {
      this.#shutdown(this.#closed?.reason ?? `connection lost: ${errorText(err)}`);
    }
  }

  #frame(type: number, flags: number, id: number, payload: Uint8Array): void {
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    if (this.#headerBlock && type !== T.CONT) throw new Error("expected CONTINUATION");
    switch (type) {
      case T.SETTINGS: {
        if (flags & F.ACK) return;
        for (let at = 0; at + 6 <= payload.length; at += 6) {
          const key = view.getUint16(at);
          const value = view.getUint32(at + 2);
          if (key === 0x4) {
            const delta = value - this.#peerInitialWindow;
            this.#peerInitialWindow = value;
            for (const s of this.#streams.values()) s.window += delta;
          } else if (key === 0x5) this.#peerMaxFrame = value;
        }
        this.#write([frame(T.SETTINGS, F.ACK, 0, new Uint8Array(0))]);
        this.#wake();
        this.#settled.resolve();
        return;
      }
      case T.PING:
        if (!(flags & F.ACK)) this.#write([frame(T.PING, F.ACK, 0, payload)]);
        return;
      case T.WINDOW: {
        const inc = view.getUint32(0) & 0x7fffffff;
        if (id === 0) this.#sendWindow += inc;
        else {
          const s = this.#streams.get(id);
          if (s) s.window += inc;
        }
        this.#wake();
        return;
      }
      case T.GOAWAY: {
        this.#goawayLast = view.getUint32(0) & 0x7fffffff;
        const code = view.getUint32(4);
        const debug = new TextDecoder().decode(payload.subarray(8));
        for (const s of [...this.#streams.values()]) {
          if (s.id > this.#goawayLast) {
            this.#forget(s);
            s.events.onReset(
              0x7,
              `the server is going away (code ${code}${debug ? `: ${debug}` : ""})`,
            );
          }
        }
        if (this.#streams.size === 0) this.#shutdown("the server went away");
        return;
      }
      case T.RST_STREAM: {
        const s = this.#streams.get(id);
        if (!s) return;
        this.#forget(s);
        s.events.onReset(view.getUint32(0), "reset by the server");
        return;
      }
      case T.HEADERS:
      case T.CONT: {
        let body = payload;
        if (type === T.HEADERS) {
          let start = 0;
          let pad = 0;
          if (flags & F.PADDED) {
            pad = payload[0];
            start = 1;
          }
          if (flags & F.PRIORITY) start += 5;
          body = payload.subarray(start, payload.length - pad);
          this.#headerBlock = { id, end: (flags & F.END_STREAM) !== 0, parts: [], size: 0 };
        }
        const block = this.#headerBlock!;
        block.parts.push(body);
        block.size += body.length;
        if (block.size > MAX_HEADER_BLOCK) throw new Error("header block too large");
        if (!(flags & F.END_HEADERS)) return;
        this.#headerBlock = undefined;
        // Decoded for every stream, in order: the table is the connection's.
        const headers = this.#hpack.decode(
          block.parts.length === 1 ? block.parts[0] : concat(block.parts),
        );
        const s = this.#streams.get(block.id);
        if (!s) return;
        if (block.end) this.#forget(s);
        s.events.onHeaders(headers, block.end);
        return;
      }
      case T.DATA: {
        let body = payload;
        if (flags & F.PADDED) body = payload.subarray(1, payload.length - payload[0]);
        // Connection credit comes back at once; stream credit as the data is used.
        this.#recvUnacked += payload.length;
        if (this.#recvUnacked >= RECV_WINDOW / 4) {
          this.windowUpdate(0, this.#recvUnacked);
          this.#recvUnacked = 0;
        }
        const s = this.#streams.get(id);
        if (!s) return;
        const end = (flags & F.END_STREAM) !== 0;
        if (end) this.#forget(s);
        s.consumed(payload.length - body.length);
        s.events.onData(body, end);
        return;
      }
      default:
        return; // PRIORITY, PUSH_PROMISE (disabled), unknown types: ignored
    }
  }

  #wake(): void {
    for (const wake of this.#creditWaiters.splice(0)) wake();
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
