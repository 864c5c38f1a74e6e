/**
 * Managing running services: stop and remove, list, read their logs.
 *
 * @module
 */

import { isIdentifier } from "../_util/identifiers.ts";
import { type ContainerdClient, type TlsOptions, withClient } from "../grpc/connection.ts";
import { isNotFound } from "../grpc/errors.ts";
import { serviceCaptureDir } from "./logs.ts";
import { LABELS, MANAGED_BY } from "../labels.ts";
import { removeContainer, type RemovedContainer } from "../runtime/remove.ts";
import { taskStatusName } from "../runtime/task.ts";

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
  /**
   * Remove the container even when this project did not create it (it has
   * no `wfe.containerd/managed-by` label).
   * @default {false}
   */
  force?: boolean;
}

/**
 * Stops and removes a service: its stop signal (the image's StopSignal, else
 * SIGTERM), up to `gracePeriodMs` for it to exit, SIGKILL to all its
 * processes, then Tasks.Delete, Containers.Delete, snapshot Remove, lease
 * Delete and the capture files. Idempotent: an id that is already gone
 * succeeds, and a partly created service (a container without a task, a task
 * without a container record) is still fully removed. A container this
 * project did not create is refused unless `force` is set.
 *
 * @returns What existed and was removed.
 * @throws {TypeError} When the container exists but has no
 *   `wfe.containerd/managed-by: @wfe/containerd` label (and `force` is not set).
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
    if (!options.force) {
      const record = await client.containers.get({ id: containerId }).then(
        (r) => r.container,
        (err) => {
          if (isNotFound(err)) return null;
          throw err;
        },
      );
      if (record && record.labels[LABELS.managedBy] !== MANAGED_BY) {
        throw new TypeError(
          `Cannot clean up container '${containerId}' in namespace '${client.namespace}': ` +
            `it was not created by ${MANAGED_BY} (no ${LABELS.managedBy} label); pass ` +
            "force: true to remove it anyway",
        );
      }
    }
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
    const dir = await serviceCaptureDir(client, containerId, "serviceLogs");
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
