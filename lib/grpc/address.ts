/**
 * Parsing of containerd addresses.
 *
 * @module
 */

import { readEnv } from "../_util/env.ts";
/** Where and how to reach containerd, as parsed by {@linkcode parseAddress}. */
export type ContainerdAddress =
  | {
    /** A Unix domain socket. */
    transport: "unix";
    /** Absolute path of the socket. */
    path: string;
    /** The target as a URI, `unix:///path` (names the daemon in caches and messages). */
    target: string;
  }
  | {
    /** A TCP connection (plain for `tcp://` and `http://`, TLS for `https://`). */
    transport: "tcp";
    /** Host name or IP address (IPv6 without brackets). */
    host: string;
    /** TCP port. */
    port: number;
    /** Whether the connection uses TLS. */
    tls: boolean;
    /** The target, e.g. `ipv4:127.0.0.1:2500` (names the daemon in caches and messages). */
    target: string;
  };

/** The socket a system containerd listens on. */
export const DEFAULT_ADDRESS = "/run/containerd/containerd.sock";

function isIPv4(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host);
}

/**
 * Parses a containerd address. Accepted forms:
 *
 * - `/run/containerd/containerd.sock` or `./relative.sock` (a Unix socket path)
 * - `unix:///run/containerd/containerd.sock`
 * - `tcp://host:port` and `http://host:port` (plain TCP, e.g. a socat proxy)
 * - `https://host:port` (TLS; see `tls` in the connect options)
 *
 * @param address The address as a user wrote it.
 * @returns The transport, its coordinates and a target string.
 * @throws {TypeError} When the address is empty, has another scheme, or lacks a port.
 *
 * @example
 * ```ts
 * import { parseAddress } from "@wfe/containerd/api";
 *
 * parseAddress("tcp://127.0.0.1:2500");
 * // { transport: "tcp", host: "127.0.0.1", port: 2500, tls: false, target: "ipv4:127.0.0.1:2500" }
 * ```
 */
export function parseAddress(address: string): ContainerdAddress {
  const raw = address.trim();
  if (raw === "") throw new TypeError("Cannot parse containerd address: it is empty");
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(raw)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    if (raw.includes("://")) {
      throw new TypeError(`Cannot parse containerd address '${address}': malformed scheme`);
    }
    return unixAddress(raw, address);
  }
  if (scheme === "unix") {
    const path = raw.slice("unix://".length);
    if (!path.startsWith("/")) {
      throw new TypeError(
        `Cannot parse containerd address '${address}': unix:// needs an absolute path (unix:///path)`,
      );
    }
    return unixAddress(path, address);
  }
  if (scheme !== "tcp" && scheme !== "http" && scheme !== "https") {
    throw new TypeError(
      `Cannot parse containerd address '${address}': unsupported scheme '${scheme}' ` +
        "(expected a socket path, unix://, tcp://, http:// or https://)",
    );
  }
  let url: URL;
  try {
    // URL parses tcp:// as an opaque scheme; reuse the http parser for all three.
    url = new URL(`http://${raw.slice(scheme.length + 3)}`);
  } catch {
    // URL refuses ports above 65535 too: name that case precisely.
    const bigPort = /:(\d+)\/?$/.exec(raw.slice(scheme.length + 3))?.[1];
    const why = bigPort !== undefined && Number(bigPort) > 65535
      ? `port ${bigPort} is out of range`
      : "invalid host or port";
    throw new TypeError(`Cannot parse containerd address '${address}': ${why}`);
  }
  if (url.pathname !== "/" || url.search || url.hash || url.username) {
    throw new TypeError(
      `Cannot parse containerd address '${address}': expected ${scheme}://host:port and nothing more`,
    );
  }
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (host === "") {
    throw new TypeError(`Cannot parse containerd address '${address}': missing host`);
  }
  // URL drops default ports (80 for http), so read the port from the text.
  const portText = /:(\d+)\/?$/.exec(raw.slice(scheme.length + 3))?.[1];
  if (portText === undefined) {
    throw new TypeError(
      `Cannot parse containerd address '${address}': missing port (${scheme}://host:port)`,
    );
  }
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TypeError(
      `Cannot parse containerd address '${address}': port ${portText} is out of range`,
    );
  }
  const target = host.includes(":")
    ? `ipv6:[${host}]:${port}`
    : isIPv4(host)
    ? `ipv4:${host}:${port}`
    : `dns:${host}:${port}`;
  return { transport: "tcp", host, port, tls: scheme === "https", target };
}

function unixAddress(path: string, original: string): ContainerdAddress {
  if (path.includes("\0")) {
    throw new TypeError(`Cannot parse containerd address '${original}': the path contains NUL`);
  }
  let abs = path;
  if (!path.startsWith("/")) {
    abs = `${Deno.cwd()}/${path.replace(/^\.\//, "")}`;
  }
  return { transport: "unix", path: abs, target: `unix://${abs}` };
}

/**
 * The address to use when none is given: `WFE_CONTAINERD_ADDR`, then
 * `CONTAINERD_ADDRESS`, else {@linkcode DEFAULT_ADDRESS}. Unreadable environment
 * (no `--allow-env`) counts as unset.
 */
export function defaultAddress(): string {
  for (const name of ["WFE_CONTAINERD_ADDR", "CONTAINERD_ADDRESS"]) {
    const value = readEnv(name);
    if (value) return value;
  }
  return DEFAULT_ADDRESS;
}
