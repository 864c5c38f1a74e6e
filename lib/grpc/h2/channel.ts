/**
 * A gRPC channel to one containerd address: one HTTP/2 connection, opened on
 * first use and again after it is lost (a restarted daemon), carrying every
 * call.
 *
 * @module
 */

import type { ContainerdAddress } from "../address.ts";
import { GrpcCall, GrpcStatusError } from "./call.ts";
import { H2Session } from "./session.ts";

/** TLS material for an `https://` address (PEM texts). */
export interface ChannelTls {
  /** CA certificates to trust (else the system's). */
  ca?: string;
  /** Client certificate. */
  cert?: string;
  /** Client key. */
  key?: string;
}

/** What a call needs besides its messages. */
export interface ChannelCall {
  /** `/package.Service/Method`. */
  path: string;
  /** Custom metadata (lower-case keys). */
  metadata: Record<string, string>;
  /** Milliseconds until the deadline. */
  timeoutMs?: number;
}

/** The largest message either way (containerd's limit). */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** A channel to containerd. */
export class H2Channel {
  readonly #address: ContainerdAddress;
  readonly #tls: ChannelTls | undefined;
  #session: Promise<H2Session> | undefined;
  #closed = false;

  constructor(address: ContainerdAddress, tls?: ChannelTls) {
    this.#address = address;
    this.#tls = tls;
  }

  /** The connection, opened (or re-opened after a loss) when needed. */
  session(): Promise<H2Session> {
    if (this.#closed) return Promise.reject(new GrpcStatusError(1, "Channel has been shut down"));
    const current = this.#session;
    if (current) {
      return current.then(
        // A lost connection, or one the server is closing (GOAWAY): new calls go on a new one.
        (s) => (s.usable ? s : this.#reconnect(current)),
        () => this.#reconnect(current),
      );
    }
    return this.#reconnect(undefined);
  }

  #reconnect(previous: Promise<H2Session> | undefined): Promise<H2Session> {
    if (this.#session !== previous) return this.session(); // another call reconnected
    const opening = this.#open();
    this.#session = opening;
    return opening;
  }

  async #open(): Promise<H2Session> {
    const a = this.#address;
    let conn: Deno.Conn;
    try {
      if (a.transport === "unix") {
        conn = await Deno.connect({ transport: "unix", path: a.path });
      } else if (a.tls) {
        conn = await Deno.connectTls({
          hostname: a.host,
          port: a.port,
          caCerts: this.#tls?.ca ? [this.#tls.ca] : undefined,
          cert: this.#tls?.cert,
          key: this.#tls?.key,
          alpnProtocols: ["h2"],
        });
      } else {
        const tcp = await Deno.connect({ hostname: a.host, port: a.port });
        tcp.setNoDelay(true);
        conn = tcp;
      }
    } catch (err) {
      throw new GrpcStatusError(14, `cannot connect: ${(err as Error).message}`);
    }
    const session = new H2Session(conn);
    try {
      await session.ready;
    } catch (err) {
      throw new GrpcStatusError(14, (err as Error).message);
    }
    return session;
  }

  /** Starts a call. */
  async call(call: ChannelCall): Promise<GrpcCall> {
    const session = await this.session();
    const a = this.#address;
    return new GrpcCall(session, {
      ...call,
      authority: a.transport === "unix"
        ? "localhost"
        : a.host.includes(":")
        ? `[${a.host}]:${a.port}`
        : `${a.host}:${a.port}`,
      scheme: a.transport === "tcp" && a.tls ? "https" : "http",
      maxMessageBytes: MAX_MESSAGE_BYTES,
    });
  }

  /** Closes the connection; calls in flight fail. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#session?.then((s) => s.close(), () => {});
  }
}
