/**
 * Service containers: long-running, host-network containers next to the
 * steps of a workflow (a database, a cache, a mock server), with readiness
 * checks and a clean stop.
 *
 * @module
 */

import { isIdentifier } from "../_util/identifiers.ts";
import { type ContainerdClient, type TlsOptions, withClient } from "../grpc/connection.ts";
import { ContainerdError, GrpcCode } from "../grpc/errors.ts";
import type { Init } from "../grpc/rpc.ts";
import { LABELS } from "../labels.ts";
import type { ImageProcessConfig } from "../oci/spec.ts";
import { createContainerTask } from "../runtime/container.ts";
import { watchOom } from "../runtime/oom.ts";
import { formatBytes } from "../_util/bytes.ts";
import { removeContainer } from "../runtime/remove.ts";
import { defaultSnapshotter, parseSignal } from "../runtime/task.ts";
import { PortInUseError, ServiceError } from "./errors.ts";
import {
  checkLabel,
  logMatcher,
  normalizeReadiness,
  type ReadinessOptions,
  validPort,
  waitReady,
} from "./readiness.ts";
import { type PullPolicy, validateArgs, validateStepConfig } from "../step/config.ts";
import { checkInputSources, type Input } from "../runtime/inputs.ts";
import type { PullProgress } from "../image/store.ts";
import type { RegistryClient, RegistryClientOptions } from "../registry/client.ts";
import { buildStepSpec, ensureStepImage } from "../step/run.ts";
import { type RuncOptions, TaskStatus } from "../../proto/gen/types.ts";

/** Options of {@linkcode runService}. */
export interface RunServiceOptions {
  /** Service name for `SVC_<NAME>_HOST/PORT` and labels; defaults to the container id. */
  name?: string;
  /** Replaces the image's Entrypoint (and, unless `args` is given, its Cmd). */
  entrypoint?: string[];
  /**
   * The old name of `entrypoint`.
   * @deprecated Use `entrypoint`; `command` will take Docker's meaning (the Cmd) as in steps.
   */
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
  /** Pull policy. @default {"if-not-present"} */
  pull?: PullPolicy;
  /** Registry access for pulls, or a registry client to share. */
  registry?: RegistryClient | RegistryClientOptions;
  /** Progress of a pull the pull policy causes. */
  onPullProgress?: (event: PullProgress) => void;
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
  /**
   * `"default"` (containerd's seccomp profile), `"unconfined"`, or a JSON profile's path.
   * @default {"default"}
   */
  seccomp?: string;
  /** Cancels starting (and waiting for readiness); what was created is removed. */
  signal?: AbortSignal;
  /** Files, directories or tar streams placed in the container before it starts (owner 0:0 by default). */
  inputs?: Input[];
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

/** `SVC_<NAME>` for a service name: upper case, other characters as `_`. */
export function serviceEnvPrefix(name: string): string {
  return `SVC_${name.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
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
 *   entrypoint: ["httpd", "-f", "-p", "8080"],
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
  if (typeof name !== "string" || name.trim() === "" || /[\0\n\r]/.test(name)) {
    throw new TypeError(`Cannot use name ${JSON.stringify(name)}: expected a non-empty string`);
  }
  for (const field of ["entrypoint", "command", "args"] as const) {
    validateArgs(options[field], field);
  }
  if (options.entrypoint !== undefined && options.command !== undefined) {
    throw new TypeError(
      "Cannot use both 'entrypoint' and 'command': 'command' is the old name of 'entrypoint'",
    );
  }
  const ports = (options.ports ?? []).map((p, i) => validPort(p, `ports[${i}]`));
  const host = options.host ?? "127.0.0.1";
  if (typeof host !== "string" || !/^[^\s/]+$/.test(host)) {
    throw new TypeError(`Cannot use host ${JSON.stringify(host)}: expected a host name or address`);
  }
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
    seccomp: options.seccomp,
    platform: options.platform,
    stepName: name,
    inputs: options.inputs,
  });
  options.signal?.throwIfAborted();
  return await withClient(
    addr,
    options,
    (client) => start(client, containerId, name, step, ports, host, readiness, options),
  );
}

/** Throws {@linkcode PortInUseError} when something listens on `port` on any local address. */
function assertPortFree(port: number, containerId: string): void {
  for (const hostname of ["0.0.0.0", "::"]) {
    let listener: Deno.Listener;
    try {
      listener = Deno.listen({ hostname, port });
    } catch (err) {
      if (err instanceof Deno.errors.AddrInUse) throw new PortInUseError(port, containerId);
      continue; // e.g. no IPv6 on this host
    }
    listener.close();
  }
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
  // On this host's daemon, a port another process holds fails the service
  // before anything is created (on a remote daemon, this host's ports say nothing).
  if (client.address.transport === "unix") {
    for (const port of ports) assertPortFree(port, containerId);
  }
  await checkInputSources(step.inputs);
  const resolved = await ensureStepImage(client, step, options);
  const imageConfig: ImageProcessConfig = { ...resolved.config.config };
  const entrypoint = options.entrypoint ?? options.command;
  if (entrypoint) {
    imageConfig.Entrypoint = entrypoint;
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
    inputs: { inputs: step.inputs, owner: { uid: 0, gid: 0 } },
  });

  const fail = async (
    message: string,
    extra: { exitCode?: number; lastError?: string; oomKilled?: boolean },
  ) => {
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

  // An out-of-memory kill before the service is ready is reported as such.
  const oom = step.memoryBytes !== undefined ? watchOom(client, containerId) : undefined;
  let pid: number;
  try {
    if (log) capture.startTailing();
    signal?.throwIfAborted(); // aborted while being created: never start it
    ({ pid } = await client.tasks.start({ containerId }));
  } catch (err) {
    oom?.close();
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
      oom?.close();
      await capture.remove().catch(() => {});
      await removeContainer(client, containerId, { gracePeriodMs: 2000, snapshotter });
      throw err;
    }
    await capture.stopTailing().catch(() => {});
    if (!outcome.ok && exited) {
      const oomKilled = (await oom?.settle(exited.exitStatus)) ?? false;
      oom?.close();
      const why = oomKilled
        ? `was killed: out of memory (limit ${formatBytes(step.memoryBytes!)}), exit code`
        : "exited with code";
      throw await fail(
        `service ${name} (${containerId}) ${why} ${exited.exitStatus} before it was ready`,
        { exitCode: exited.exitStatus, oomKilled },
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
  oom?.close();
  if (readiness) {
    // A check that passed counts only while the service's own task still runs.
    const { process } = await client.tasks.get({ containerId });
    if (process?.status !== TaskStatus.RUNNING) {
      const exitCode = process?.exitStatus;
      throw await fail(
        `service ${name} (${containerId}) exited (code ${exitCode}) although its readiness ` +
          `check ${checkLabel(readiness.check, host)} passed: another process may answer there`,
        { exitCode },
      );
    }
  }

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
