/**
 * Service containers: long-running, host-network containers next to the
 * steps of a workflow (a database, a cache, a mock server), with readiness
 * checks and a clean stop.
 *
 * @module
 */

import { type ContainerdClient, type TlsOptions, withClient } from "./connection.ts";
import { ContainerdError, GrpcCode, ServiceError } from "./errors.ts";
import {
  createContainerTask,
  defaultSnapshotter,
  LABELS,
  parseSignal,
  removeContainer,
  type RemovedContainer,
  taskStatusName,
  within,
} from "./container.ts";
import { isIdentifier } from "./identifiers.ts";
import type { ImageProcessConfig, OciSpec } from "./oci_spec.ts";
import type { Init } from "./rpc.ts";
import { buildStepSpec, ensureImage } from "./step.ts";
import { type PullPolicy, validateStepConfig } from "./step_config.ts";
import type { RuncOptions } from "../proto/gen/types.ts";

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

/** Options of {@linkcode runService}. */
export interface RunServiceOptions {
  /** Service name for `SVC_<NAME>_HOST/PORT` and labels; defaults to the container id. */
  name?: string;
  /** Replaces the image's Entrypoint (and, unless `args` is given, its Cmd). */
  command?: string[];
  /** Replaces the image's Cmd. */
  args?: string[];
  /** Memory limit, e.g. `"256m"`. */
  memory?: string | number;
  /** CPU limit in cores, e.g. `"0.5"`. */
  cpu?: string | number;
  /** More labels on the container. */
  labels?: Record<string, string>;
  /** containerd namespace. */
  namespace?: string;
  /** Ports the service listens on (host network): for readiness and the endpoints. */
  ports?: number[];
  /** Host the endpoints and network checks use. @default {"127.0.0.1"} */
  host?: string;
  /** Readiness; `false` returns as soon as the task has started. */
  readiness?: ReadinessOptions | false;
  /** Pull policy (pulling arrives with its own release). @default {"if-not-present"} */
  pull?: PullPolicy;
  /** Base directory of the output files (kept until cleanupService); defaults to `WFE_IO_DIR`. */
  ioDir?: string;
  /** A connected client to use (and leave open). */
  client?: ContainerdClient;
  /** TLS files for an `https://` address. */
  tls?: TlsOptions;
  /** Snapshotter; defaults to the namespace's default, else `overlayfs`. */
  snapshotter?: string;
  /** Runtime name. @default {"io.containerd.runc.v2"} */
  runtime?: string;
  /** runc options (e.g. `root`). */
  runcOptions?: Init<RuncOptions>;
  /** Image platform, e.g. `linux/amd64`. */
  platform?: string;
  /** Cancels starting (and waiting for readiness); what was created is removed. */
  signal?: AbortSignal;
}

/** A running service. */
export interface ServiceHandle {
  /** The container id. */
  containerId: string;
  /** The service name. */
  name: string;
  /** The stored image name. */
  image: string;
  /** PID of the service's init process (on the daemon's host). */
  pid: number;
  /** `host:port` for each declared port. */
  endpoints: string[];
  /** What a following step needs: `SVC_<NAME>_HOST` and `SVC_<NAME>_PORT` (first port). */
  env: Record<string, string>;
  /** Capture files of the service's stdout and stderr. */
  logFiles: { stdout: string; stderr: string };
}

const TAIL_BYTES = 4096;

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `SVC_<NAME>` for a service name: upper case, other characters as `_`. */
export function serviceEnvPrefix(name: string): string {
  return `SVC_${name.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
}

function checkLabel(check: ReadinessCheck, host: string): string {
  if ("tcp" in check) return `tcp ${host}:${check.tcp}`;
  if ("http" in check) return `http http://${host}:${check.http.port}${check.http.path ?? "/"}`;
  if ("exec" in check) return `exec ${JSON.stringify(check.exec)}`;
  return `log ${check.log}`;
}

function validPort(port: unknown, field: string): number {
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
      throw new TypeError(`Cannot use readiness log '${pattern}': ${describe(err)}`);
    }
    return (line) => {
      re.lastIndex = 0;
      return re.test(line);
    };
  }
  if (pattern === "") throw new TypeError("Cannot use readiness log '': the text is empty");
  return (line) => line.includes(pattern);
}

function normalizeReadiness(
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

/**
 * Starts a long-running service container on the host network (as
 * wfe-containerd's `run_service`, user 0:0), waits until it is ready, and
 * returns a handle with its endpoints and the env a following step needs.
 *
 * If the task exits before it is ready, or readiness does not pass within
 * `timeoutMs`/`retries`, everything is removed and a {@linkcode ServiceError}
 * says why (exit code, or the check and its last error, with output tails).
 *
 * @param addr containerd address (undefined: `WFE_CONTAINERD_ADDR`, ...).
 * @param containerId The container id, e.g. `svc-postgres`.
 * @param image Image reference.
 * @param env Environment of the service.
 * @param options Command, limits, ports, readiness, ...
 * @returns The running service.
 * @throws {ServiceError} When the service exits early or is not ready in time.
 * @throws {TypeError | RangeError} For invalid options, before anything is created.
 *
 * @example
 * ```ts
 * import { cleanupService, runService } from "@wfe/containerd";
 *
 * const svc = await runService(undefined, "svc-web", "wfe.test/busybox:one-layer", {}, {
 *   command: ["httpd", "-f", "-p", "8080"],
 *   ports: [8080],
 *   readiness: { check: { http: { port: 8080 } }, intervalMs: 200, timeoutMs: 10_000 },
 * });
 * console.log(svc.endpoints, svc.env); // ["127.0.0.1:8080"], { SVC_SVC_WEB_HOST: ..., ... }
 * await cleanupService(undefined, svc.containerId);
 * ```
 */
export async function runService(
  addr: string | undefined,
  containerId: string,
  image: string,
  env: Record<string, string>,
  options: RunServiceOptions = {},
): Promise<ServiceHandle> {
  if (!isIdentifier(containerId)) {
    throw new TypeError(
      `Cannot use container id '${containerId}': expected letters and digits separated by ` +
        "'.', '_' or '-', at most 76 characters",
    );
  }
  const name = options.name ?? containerId;
  const ports = (options.ports ?? []).map((p, i) => validPort(p, `ports[${i}]`));
  const host = options.host ?? "127.0.0.1";
  const readiness = normalizeReadiness(options.readiness, ports);
  const step = validateStepConfig({
    image,
    env,
    network: "host",
    user: "0:0",
    memory: options.memory,
    cpu: options.cpu,
    pull: options.pull,
    labels: options.labels,
    runtime: options.runtime,
    runcOptions: options.runcOptions,
    snapshotter: options.snapshotter,
    platform: options.platform,
    stepName: name,
  });
  options.signal?.throwIfAborted();
  return await withClient(
    addr,
    options,
    (client) => start(client, containerId, name, step, ports, host, readiness, options),
  );
}

async function start(
  client: ContainerdClient,
  containerId: string,
  name: string,
  step: ReturnType<typeof validateStepConfig>,
  ports: number[],
  host: string,
  readiness: Required<ReadinessOptions> | undefined,
  options: RunServiceOptions,
): Promise<ServiceHandle> {
  const signal = options.signal;
  try {
    await client.containers.get({ id: containerId });
    throw new ContainerdError({
      code: GrpcCode.ALREADY_EXISTS,
      method: "runService",
      details: `container ${containerId} already exists; stop it with cleanupService first`,
    });
  } catch (err) {
    if (!(err instanceof ContainerdError) || err.code !== GrpcCode.NOT_FOUND) throw err;
  }
  const resolved = await ensureImage(client, step, signal);
  const imageConfig: ImageProcessConfig = { ...resolved.config.config };
  if (options.command) {
    imageConfig.Entrypoint = options.command;
    imageConfig.Cmd = options.args ?? [];
  } else if (options.args) imageConfig.Cmd = options.args;
  const spec = buildStepSpec(step, imageConfig, { uid: 0, gid: 0 }, client.namespace, containerId);
  const stopSignalText = resolved.config.config?.StopSignal;
  const stopSignal = stopSignalText ? parseSignal(stopSignalText) : 15;
  const snapshotter = step.snapshotter ?? await defaultSnapshotter(client);
  signal?.throwIfAborted();

  const log = readiness && "log" in readiness.check ? logMatcher(readiness.check.log) : undefined;
  let logMatched: () => void = () => {};
  const logSeen = new Promise<void>((resolve) => (logMatched = resolve));
  const onLine = log ? (line: string) => log(line) && logMatched() : undefined;

  const { capture, wait } = await createContainerTask(client, {
    containerId,
    kind: "service",
    name,
    imageName: resolved.name,
    chainId: resolved.chainId,
    spec,
    snapshotter,
    runtime: step.runtime,
    runcOptions: step.runcOptions,
    labels: {
      ...step.labels,
      [LABELS.stopSignal]: String(stopSignal),
      [LABELS.ports]: ports.join(","),
    },
    capture: { ioDir: options.ioDir, onStdout: onLine, onStderr: onLine },
    leaseExpireMs: 24 * 3600_000,
  });

  const fail = async (message: string, extra: { exitCode?: number; lastError?: string }) => {
    const [stdoutTail, stderrTail] = await Promise.all([
      capture.tail("stdout", TAIL_BYTES).catch(() => ""),
      capture.tail("stderr", TAIL_BYTES).catch(() => ""),
    ]);
    await capture.remove().catch(() => {});
    await removeContainer(client, containerId, { gracePeriodMs: 2000, snapshotter });
    return new ServiceError(message, {
      containerId,
      check: readiness ? checkLabel(readiness.check, host) : undefined,
      stdoutTail,
      stderrTail,
      ...extra,
    });
  };

  let pid: number;
  try {
    if (log) capture.startTailing();
    ({ pid } = await client.tasks.start({ containerId }));
  } catch (err) {
    await capture.remove().catch(() => {});
    await removeContainer(client, containerId, { gracePeriodMs: 0, snapshotter });
    throw err;
  }

  if (readiness) {
    let exited: { exitStatus: number } | undefined;
    const exit = wait.then((w) => (exited = w));
    exit.catch(() => {});
    let outcome: { ok: true } | { ok: false; lastError: string; attempts: number };
    try {
      outcome = await waitReady(client, containerId, spec, capture.dir, readiness, host, {
        exit,
        logSeen,
        signal,
      });
    } catch (err) {
      // Aborted: remove what was created and pass the reason on.
      await capture.remove().catch(() => {});
      await removeContainer(client, containerId, { gracePeriodMs: 2000, snapshotter });
      throw err;
    }
    await capture.stopTailing().catch(() => {});
    if (!outcome.ok && exited) {
      throw await fail(
        `service ${name} (${containerId}) exited with code ${exited.exitStatus} before it was ready`,
        { exitCode: exited.exitStatus },
      );
    }
    if (!outcome.ok) {
      throw await fail(
        `service ${name} (${containerId}) was not ready: ${
          checkLabel(readiness.check, host)
        } failed ${outcome.attempts} time(s) within ${readiness.timeoutMs} ms; last error: ` +
          outcome.lastError,
        { lastError: outcome.lastError },
      );
    }
  }
  await capture.stopTailing().catch(() => {});

  const prefix = serviceEnvPrefix(name);
  const envOut: Record<string, string> = { [`${prefix}_HOST`]: host };
  if (ports.length > 0) envOut[`${prefix}_PORT`] = String(ports[0]);
  return {
    containerId,
    name,
    image: resolved.name,
    pid,
    endpoints: ports.map((p) => `${host}:${p}`),
    env: envOut,
    logFiles: { stdout: capture.stdoutPath, stderr: capture.stderrPath },
  };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      signal?.removeEventListener("abort", abort);
      resolve();
    }
    function abort(): void {
      clearTimeout(timer);
      reject(signal!.reason);
    }
    signal?.addEventListener("abort", abort, { once: true });
  });
}

async function waitReady(
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
      lastError = describe(err);
    }
    if (attempt >= readiness.retries || Date.now() >= deadline) {
      return { ok: false, lastError, attempts: attempt };
    }
    const pause = Math.min(readiness.intervalMs, Math.max(0, deadline - Date.now()));
    await within(Promise.race([sleep(pause, watch.signal), watch.exit]), pause + 50);
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
    const conn = await withTimeout(
      Deno.connect({ hostname: host, port: check.tcp }),
      budgetMs,
      "connect",
      (c) => c.close(),
    );
    conn.close();
    return;
  }
  if ("http" in check) {
    const url = `http://${host}:${check.http.port}${check.http.path ?? "/"}`;
    const res = await fetch(url, { redirect: "manual", signal: AbortSignal.timeout(budgetMs) });
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

async function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
  dispose: (value: T) => void,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          timedOut = true;
          reject(new Error(`${what}: no answer within ${ms} ms`));
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (timedOut) promise.then(dispose, () => {});
  }
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
  const mode = (await Deno.stat(dir)).mode! & 0o777;
  for (const path of [out, err]) {
    await Deno.writeFile(path, new Uint8Array(), { mode: mode & 0o666 });
    await Deno.chmod(path, mode & 0o666);
  }
  const process = { ...spec.process, args: argv, terminal: false };
  try {
    await client.tasks.exec({
      containerId,
      execId,
      stdout: out,
      stderr: err,
      spec: {
        typeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Process",
        value: new TextEncoder().encode(JSON.stringify(process)),
      },
    });
    try {
      const wait = client.tasks.wait({ containerId, execId });
      wait.catch(() => {});
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

/** Options of {@linkcode cleanupService} and {@linkcode listServices}. */
export interface ServiceClientOptions {
  /** containerd namespace. */
  namespace?: string;
  /** A connected client to use (and leave open). */
  client?: ContainerdClient;
  /** TLS files for an `https://` address. */
  tls?: TlsOptions;
}

/** Options of {@linkcode cleanupService}. */
export interface CleanupServiceOptions extends ServiceClientOptions {
  /**
   * Time between the stop signal and SIGKILL, in milliseconds.
   * @default {10000}
   */
  gracePeriodMs?: number;
}

/**
 * Stops and removes a service: its stop signal (the image's StopSignal, else
 * SIGTERM), up to `gracePeriodMs` for it to exit, SIGKILL to all its
 * processes, then Tasks.Delete, Containers.Delete, snapshot Remove, lease
 * Delete and the capture files. Idempotent: an id that is already gone
 * succeeds, and a partly created service (a container without a task, a task
 * without a container record) is still fully removed.
 *
 * @returns What existed and was removed.
 * @throws {Error} When a part could not be removed (the others still were).
 *
 * @example
 * ```ts
 * import { cleanupService } from "@wfe/containerd";
 *
 * await cleanupService(undefined, "svc-web", { gracePeriodMs: 5000 });
 * ```
 */
export async function cleanupService(
  addr: string | undefined,
  containerId: string,
  options: CleanupServiceOptions = {},
): Promise<RemovedContainer> {
  if (!isIdentifier(containerId)) {
    throw new TypeError(`Cannot clean up container id '${containerId}': not a valid id`);
  }
  return await withClient(addr, options, async (client) => {
    const removed = await removeContainer(client, containerId, {
      gracePeriodMs: options.gracePeriodMs ?? 10_000,
    });
    if (removed.errors.length > 0) {
      throw new AggregateError(
        removed.errors,
        `cleanupService ${containerId}: ${removed.errors.map((e) => e.message).join("; ")}`,
      );
    }
    return removed;
  });
}

/** A service found by {@linkcode listServices}. */
export interface ServiceInfo {
  /** The container id. */
  containerId: string;
  /** The service name. */
  name: string;
  /** The stored image name. */
  image: string;
  /** When it was created (RFC 3339). */
  createdAt: string;
  /** Declared ports. */
  ports: number[];
  /** `running`, `stopped`, `created`, `paused`, or `no task`. */
  status: string;
  /** PID of the init process, 0 when there is no task. */
  pid: number;
  /** Capture directory of its output. */
  ioDir: string;
}

/**
 * Lists the services this project started in a namespace (by its labels).
 *
 * @example
 * ```ts
 * import { listServices } from "@wfe/containerd";
 *
 * for (const s of await listServices()) console.log(s.containerId, s.status, s.ports);
 * ```
 */
export async function listServices(
  addr?: string,
  options: ServiceClientOptions = {},
): Promise<ServiceInfo[]> {
  return await withClient(addr, options, async (client) => {
    const { containers } = await client.containers.list({
      filters: [`labels."${LABELS.kind}"==service,labels."${LABELS.managedBy}"`],
    });
    const { tasks } = await client.tasks.list({});
    return containers.map((c) => {
      const task = tasks.find((t) => t.id === c.id);
      return {
        containerId: c.id,
        name: c.labels[LABELS.name] ?? c.id,
        image: c.image,
        createdAt: c.labels[LABELS.createdAt] ?? "",
        ports: (c.labels[LABELS.ports] ?? "").split(",").filter(Boolean).map(Number),
        status: task ? taskStatusName(task.status) : "no task",
        pid: task?.pid ?? 0,
        ioDir: c.labels[LABELS.ioDir] ?? "",
      };
    });
  });
}

/**
 * Reads a service's captured output (the last `maxBytes` of each stream).
 *
 * @throws {ContainerdError} NOT_FOUND when there is no such service.
 */
export async function serviceLogs(
  addr: string | undefined,
  containerId: string,
  options: ServiceClientOptions & { maxBytes?: number } = {},
): Promise<{ stdout: string; stderr: string }> {
  return await withClient(addr, options, async (client) => {
    const { container } = await client.containers.get({ id: containerId });
    const dir = container?.labels[LABELS.ioDir];
    if (!dir) {
      throw new ContainerdError({
        code: GrpcCode.NOT_FOUND,
        method: "serviceLogs",
        details: `${containerId} has no capture directory label`,
      });
    }
    const max = options.maxBytes ?? 1024 * 1024;
    const read = async (name: string): Promise<string> => {
      const file = await Deno.open(`${dir}/${name}`, { read: true });
      try {
        const size = (await file.stat()).size;
        const start = Math.max(0, size - max);
        await file.seek(start, Deno.SeekMode.Start);
        const buf = new Uint8Array(size - start);
        let at = 0;
        while (at < buf.length) {
          const n = await file.read(buf.subarray(at));
          if (n === null) break;
          at += n;
        }
        return new TextDecoder().decode(buf.subarray(0, at));
      } finally {
        file.close();
      }
    };
    return { stdout: await read("stdout"), stderr: await read("stderr") };
  });
}
