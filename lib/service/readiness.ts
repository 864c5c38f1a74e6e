/**
 * Readiness checks of services: tcp, http, exec (Tasks.Exec inside the
 * container) and log lines, retried until a deadline.
 *
 * @module
 */

import { deadline, delay, timeoutSignal, within } from "../_util/async.ts";
import { errorMessage } from "../_util/errors.ts";
import { createExec } from "../runtime/exec.ts";
import type { ContainerdClient } from "../grpc/connection.ts";
import type { OciSpec } from "../oci/spec.ts";

/** A readiness check, following wfe's `services:` schema plus `log`. */
export type ReadinessCheck =
  | {
    /** Ready when a TCP connection to this port succeeds. */
    tcp: number;
  }
  | {
    /** Ready when GET `path` (default `/`) on this port answers 2xx or 3xx. */
    http: { port: number; path?: string };
  }
  | {
    /** Ready when this command, run inside the container (Tasks.Exec), exits 0. */
    exec: string[];
  }
  | {
    /** Ready when a line of the service's output contains this text, or matches `/regex/flags`. */
    log: string;
  };

/** When a service counts as ready. */
export interface ReadinessOptions {
  /** The check; without one, TCP on the first declared port (or none without ports). */
  check?: ReadinessCheck;
  /**
   * Time between attempts, in milliseconds.
   * @default {5000}
   */
  intervalMs?: number;
  /**
   * Give up after this many milliseconds.
   * @default {60000}
   */
  timeoutMs?: number;
  /**
   * Give up after this many failed attempts.
   * @default {12}
   */
  retries?: number;
}

/** How a check reads in messages, e.g. `tcp 127.0.0.1:5432`. */
export function checkLabel(check: ReadinessCheck, host: string): string {
  if ("tcp" in check) return `tcp ${host}:${check.tcp}`;
  if ("http" in check) return `http http://${host}:${check.http.port}${check.http.path ?? "/"}`;
  if ("exec" in check) return `exec ${JSON.stringify(check.exec)}`;
  return `log ${check.log}`;
}

/** Checks a port number (1-65535), naming the field. */
export function validPort(port: unknown, field: string): number {
  if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) {
    throw new RangeError(`Cannot use ${field} ${port}: expected a port from 1 to 65535`);
  }
  return port as number;
}

/** Turns `log` text into a line matcher: `/re/flags` is a regex, anything else a substring. */
export function logMatcher(pattern: string): (line: string) => boolean {
  const m = /^\/(.*)\/([a-z]*)$/s.exec(pattern);
  if (m) {
    let re: RegExp;
    try {
      re = new RegExp(m[1], m[2]);
    } catch (err) {
      throw new TypeError(`Cannot use readiness log '${pattern}': ${errorMessage(err)}`);
    }
    return (line) => {
      re.lastIndex = 0;
      return re.test(line);
    };
  }
  if (pattern === "") throw new TypeError("Cannot use readiness log '': the text is empty");
  return (line) => line.includes(pattern);
}

/** Validates readiness options and fills in defaults; undefined when nothing is checked. */
export function normalizeReadiness(
  readiness: ReadinessOptions | false | undefined,
  ports: number[],
): Required<ReadinessOptions> | undefined {
  if (readiness === false) return undefined;
  const check = readiness?.check ?? (ports.length > 0 ? { tcp: ports[0] } : undefined);
  if (!check) return undefined;
  if ("tcp" in check) validPort(check.tcp, "readiness tcp port");
  else if ("http" in check) {
    validPort(check.http.port, "readiness http port");
    if (check.http.path !== undefined && !check.http.path.startsWith("/")) {
      throw new TypeError(`Cannot use readiness http path '${check.http.path}': expected /...`);
    }
  } else if ("exec" in check) {
    if (!Array.isArray(check.exec) || check.exec.length === 0) {
      throw new TypeError("Cannot use readiness exec: expected a non-empty argv array");
    }
  } else if ("log" in check) logMatcher(check.log);
  else throw new TypeError(`Cannot use readiness check ${JSON.stringify(check)}`);
  const out = {
    check,
    intervalMs: readiness?.intervalMs ?? 5000,
    timeoutMs: readiness?.timeoutMs ?? 60_000,
    retries: readiness?.retries ?? 12,
  };
  for (const key of ["intervalMs", "timeoutMs", "retries"] as const) {
    if (!(out[key] > 0)) {
      throw new RangeError(`Cannot use readiness ${key} ${out[key]}: expected a positive number`);
    }
  }
  return out;
}

/** Probes until the check passes, the task exits, the deadline passes or retries run out. */
export async function waitReady(
  client: ContainerdClient,
  containerId: string,
  spec: OciSpec,
  dir: string,
  readiness: Required<ReadinessOptions>,
  host: string,
  watch: { exit: Promise<unknown>; logSeen: Promise<void>; signal?: AbortSignal },
): Promise<{ ok: true } | { ok: false; lastError: string; attempts: number }> {
  const deadline = Date.now() + readiness.timeoutMs;
  const check = readiness.check;
  let exited = false;
  watch.exit.then(() => (exited = true), () => (exited = true));
  if ("log" in check) {
    const remaining = Math.max(0, deadline - Date.now());
    await within(Promise.race([watch.logSeen, watch.exit]), remaining);
    watch.signal?.throwIfAborted();
    let matched = false;
    await within(watch.logSeen.then(() => (matched = true)), 0);
    if (matched) return { ok: true };
    return { ok: false, lastError: `no output line matched ${check.log}`, attempts: 1 };
  }
  let lastError = "";
  for (let attempt = 1;; attempt++) {
    watch.signal?.throwIfAborted();
    if (exited) return { ok: false, lastError: "the task exited", attempts: attempt - 1 };
    const budget = Math.max(1, Math.min(readiness.intervalMs, deadline - Date.now()));
    try {
      await probe(client, containerId, spec, dir, check, host, budget, attempt);
      return { ok: true };
    } catch (err) {
      lastError = errorMessage(err);
    }
    if (attempt >= readiness.retries || Date.now() >= deadline) {
      return { ok: false, lastError, attempts: attempt };
    }
    const pause = Math.min(readiness.intervalMs, Math.max(0, deadline - Date.now()));
    await within(Promise.race([delay(pause, watch.signal), watch.exit]), pause + 50);
  }
}

async function probe(
  client: ContainerdClient,
  containerId: string,
  spec: OciSpec,
  dir: string,
  check: ReadinessCheck,
  host: string,
  budgetMs: number,
  attempt: number,
): Promise<void> {
  if ("tcp" in check) {
    const conn = await deadline(Deno.connect({ hostname: host, port: check.tcp }), budgetMs, {
      what: "connect",
      dispose: (c) => c.close(),
    });
    conn.close();
    return;
  }
  if ("http" in check) {
    const url = `http://${host}:${check.http.port}${check.http.path ?? "/"}`;
    const res = await fetch(url, { redirect: "manual", signal: timeoutSignal(budgetMs) });
    await res.body?.cancel();
    if (res.status < 200 || res.status >= 400) throw new Error(`GET ${url}: HTTP ${res.status}`);
    return;
  }
  if ("exec" in check) {
    await execProbe(client, containerId, spec, dir, check.exec, budgetMs, attempt);
    return;
  }
  throw new TypeError("log checks are not probed");
}

/** Runs `argv` inside the container with Tasks.Exec; resolves when it exits 0. */
async function execProbe(
  client: ContainerdClient,
  containerId: string,
  spec: OciSpec,
  dir: string,
  argv: string[],
  budgetMs: number,
  attempt: number,
): Promise<void> {
  const execId = `ready-${attempt}`;
  const out = `${dir}/exec-${attempt}.out`;
  const err = `${dir}/exec-${attempt}.err`;
  // Created exclusively (never an existing file or a symlink planted there),
  // with the capture directory's openness; never chmod'ed by path.
  const permissive = ((await Deno.stat(dir)).mode! & 0o002) !== 0;
  const umask = permissive ? Deno.umask(0) : undefined;
  try {
    for (const path of [out, err]) {
      (await Deno.open(path, { write: true, createNew: true, mode: permissive ? 0o666 : 0o600 }))
        .close();
    }
  } finally {
    if (umask !== undefined) Deno.umask(umask);
  }
  try {
    const { wait } = await createExec(
      client,
      containerId,
      execId,
      { ...spec.process, args: argv },
      out,
      err,
    );
    try {
      await client.tasks.start({ containerId, execId });
      if (!await within(wait, budgetMs)) {
        await client.tasks.kill({ containerId, execId, signal: 9 }).catch(() => {});
        await within(wait, 5000);
        throw new Error(`exec ${JSON.stringify(argv)}: still running after ${budgetMs} ms`);
      }
      const { exitStatus } = await wait;
      if (exitStatus !== 0) {
        const stderr = new TextDecoder().decode(await Deno.readFile(err)).trim().slice(-500);
        throw new Error(
          `exec ${JSON.stringify(argv)} exited with code ${exitStatus}${
            stderr ? `: ${stderr}` : ""
          }`,
        );
      }
    } finally {
      await client.tasks.deleteProcess({ containerId, execId }).catch(() => {});
    }
  } finally {
    await Deno.remove(out).catch(() => {});
    await Deno.remove(err).catch(() => {});
  }
}
