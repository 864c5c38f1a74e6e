/**
 * Finds and removes what this project left behind: containers (with their
 * tasks), snapshots and leases labelled `wfe.containerd/managed-by`, and
 * capture directories `wfe-io-<id>` whose container and lease are gone. A
 * process killed in the middle of a step leaves exactly these.
 *
 * @module
 */

import {
  iso,
  modifiedMs,
  ourSnapshots,
  ownersInAllNamespaces,
  pruneCaptureDirs,
  REMOVE_CONCURRENCY,
  stopTogether,
  taskIsOurs,
  timestampMs,
} from "./_prune_sweep.ts";
import { TaskStatus } from "../proto/gen/types.ts";
import { pooledMap } from "./_util/async.ts";
import { daemonUuid } from "./runtime/owner.ts";
import { errorMessage } from "./_util/errors.ts";
import type { ContainerdClient } from "./grpc/connection.ts";
import { isNotFound } from "./grpc/errors.ts";
import { LABELS, MANAGED_BY } from "./labels.ts";
import { ioBaseDir } from "./runtime/capture.ts";
import { removeContainer } from "./runtime/remove.ts";
import { taskStatusName } from "./runtime/task.ts";

/** Options of {@linkcode prune}. */
export interface PruneOptions {
  /**
   * Only remove what was created at least this many milliseconds ago, so
   * steps and services that are starting or running right now are spared.
   * @default {0}
   */
  olderThanMs?: number;
  /**
   * Report what would be removed, and remove nothing.
   * @default {false}
   */
  dryRun?: boolean;
  /**
   * Also remove services (they are long-running on purpose; by default they
   * are kept and listed in {@linkcode PruneReport.kept}).
   * @default {false}
   */
  includeServices?: boolean;
  /**
   * Time between SIGTERM and SIGKILL for a task that still runs, in milliseconds.
   * @default {10000}
   */
  gracePeriodMs?: number;
  /**
   * Directory whose `wfe-io-*` capture directories are examined.
   * @default {ioBaseDir()} (`WFE_IO_DIR`, else the system temp dir)
   */
  ioDir?: string;
}

/** Parts of a container that {@linkcode removeContainer} removes. */
export type ContainerPart = "task" | "container" | "snapshot" | "lease" | "capture dir";

/** A container (or a task whose container record is gone) that was or would be removed. */
export interface PrunedContainer {
  /** The container id. */
  id: string;
  /** `step`, `service`, or `""` for a task without a container record. */
  kind: string;
  /** The step or service name from its labels. */
  name: string;
  /** The image name of the container record. */
  image: string;
  /** When it was created (RFC 3339), `""` when unknown. */
  createdAt: string;
  /** Its age in milliseconds, `null` when unknown. */
  ageMs: number | null;
  /** Its task's status (`running`, `stopped`, ...), `no task`, or `no container record`. */
  status: string;
  /** What was removed (empty in a dry run). */
  removed: ContainerPart[];
}

/** A lease that was or would be removed. */
export interface PrunedLease {
  /** The lease id. */
  id: string;
  /** When it was created (RFC 3339). */
  createdAt: string;
  /** Its age in milliseconds. */
  ageMs: number;
}

/** A snapshot that was or would be removed. */
export interface PrunedSnapshot {
  /** The snapshotter holding it. */
  snapshotter: string;
  /** The snapshot key. */
  key: string;
  /** When it was created (RFC 3339). */
  createdAt: string;
  /** Its age in milliseconds. */
  ageMs: number;
}

/** A capture directory that was or would be removed. */
export interface PrunedCaptureDir {
  /** The directory's path. */
  path: string;
  /** The container id in its name. */
  containerId: string;
  /** When it or its files were last modified (RFC 3339). */
  modifiedAt: string;
  /** Time since then, in milliseconds. */
  ageMs: number;
}

/** Something of ours that {@linkcode prune} found and kept. */
export interface KeptItem {
  /** What it is. */
  what: "container" | "lease" | "snapshot" | "capture dir";
  /** Its id, key or path. */
  id: string;
  /** Why it was kept: `service`, `created 12s ago`, `modified 3s ago` or `age unknown`. */
  reason: string;
}

/** What {@linkcode prune} found, removed (or, in a dry run, would remove) and kept. */
export interface PruneReport {
  /** The namespace examined. */
  namespace: string;
  /** Whether this was a dry run. */
  dryRun: boolean;
  /** The age threshold used. */
  olderThanMs: number;
  /** The directory whose capture directories were examined. */
  ioDir: string;
  /** Containers, each with its task, snapshot, lease and capture directory. */
  containers: PrunedContainer[];
  /** Leases whose container is gone. */
  leases: PrunedLease[];
  /** Snapshots whose container is gone. */
  snapshots: PrunedSnapshot[];
  /** Capture directories whose container and lease are gone (in every namespace). */
  captureDirs: PrunedCaptureDir[];
  /** Things of ours that were left alone, and why. */
  kept: KeptItem[];
  /** Failures; each other item was still attempted. */
  errors: string[];
}

/**
 * Finds what this project created in the client's namespace and no longer
 * needs, and removes it:
 *
 * 1. containers labelled `wfe.containerd/managed-by` (services only with
 *    `includeServices`), each with its task (stopped first: SIGTERM, grace
 *    period, SIGKILL), snapshot, lease and capture directory, through
 *    {@linkcode removeContainer}; also tasks whose container record is gone
 *    but whose output goes to one of our capture directories;
 * 2. leases labelled as ours whose container is gone;
 * 3. snapshots labelled as ours, in every usable snapshotter, whose
 *    container is gone;
 * 4. `wfe-io-<id>` directories under the IO base dir for which no container
 *    and no lease `<id>-lease` exists in any namespace of the daemon (a lease
 *    is created before the directory, so a step that is starting keeps it).
 *
 * With `olderThanMs`, only what is at least that old is touched; capture
 * directories are aged by their last modification. With `dryRun`, nothing
 * is removed and the report says what would be.
 *
 * Capture directories name their daemon (server UUID) in an `owner` file:
 * a directory another daemon sharing the IO base dir owns is kept (reported
 * in `kept`). Directories without that file (made by older versions) are
 * judged by this daemon's containers alone: use `olderThanMs` for those.
 *
 * @param client A connected client; its namespace is pruned.
 * @param options Age threshold, dry run, services, grace period, IO dir.
 * @returns What was (or would be) removed, what was kept, and failures.
 * @throws {ContainerdError} When containers, tasks or leases cannot be listed.
 *
 * @example
 * ```ts
 * import { connect, prune } from "@wfe/containerd";
 *
 * await using client = await connect();
 * const report = await prune(client, { olderThanMs: 3600_000, dryRun: true });
 * for (const c of report.containers) console.log(`would remove ${c.id} (${c.status})`);
 * ```
 */
export async function prune(
  client: ContainerdClient,
  options: PruneOptions = {},
): Promise<PruneReport> {
  const olderThanMs = options.olderThanMs ?? 0;
  if (!(olderThanMs >= 0)) {
    throw new RangeError(`Cannot use olderThanMs ${olderThanMs}: expected a number >= 0`);
  }
  const grace = options.gracePeriodMs ?? 10_000;
  const dryRun = options.dryRun ?? false;
  const ioDir = options.ioDir ?? ioBaseDir();
  const now = Date.now();
  const old = (ms: number | undefined): boolean =>
    olderThanMs === 0 || (ms !== undefined && now - ms >= olderThanMs);
  const age = (ms: number | undefined): number | null => (ms === undefined ? null : now - ms);
  const report: PruneReport = {
    namespace: client.namespace,
    dryRun,
    olderThanMs,
    ioDir,
    containers: [],
    leases: [],
    snapshots: [],
    captureDirs: [],
    kept: [],
    errors: [],
  };
  const tooRecent = (ms: number | undefined) =>
    ms === undefined ? "age unknown" : `created ${Math.round((now - ms) / 1000)}s ago`;

  // Our snapshots, listed first: a task without a container record needs its snapshotter.
  const snapshots = await ourSnapshots(client, report);

  // 1. containers (and tasks without a container record)
  const { containers } = await client.containers.list({});
  const { tasks } = await client.tasks.list({});
  const taskById = new Map(tasks.map((t) => [t.id, t]));
  const containerById = new Map(containers.map((c) => [c.id, c]));
  const existing = new Set(containers.map((c) => c.id));
  const removing: { item: PrunedContainer; captureDir?: string; snapshotter?: string }[] = [];
  for (const c of containers) {
    if (c.labels[LABELS.managedBy] !== MANAGED_BY) continue;
    const kind = c.labels[LABELS.kind] ?? "";
    const labelled = Date.parse(c.labels[LABELS.createdAt] ?? "");
    const created = Number.isFinite(labelled) ? labelled : timestampMs(c.createdAt);
    if (kind === "service" && !options.includeServices) {
      report.kept.push({
        what: "container",
        id: c.id,
        reason: "service",
      });
      continue;
    }
    if (!old(created)) {
      report.kept.push({ what: "container", id: c.id, reason: tooRecent(created) });
      continue;
    }
    const task = taskById.get(c.id);
    removing.push({
      item: {
        id: c.id,
        kind,
        name: c.labels[LABELS.name] ?? "",
        image: c.image,
        createdAt: iso(created),
        ageMs: age(created),
        status: task ? taskStatusName(task.status) : "no task",
        removed: [],
      },
    });
  }
  for (const task of tasks) {
    if (existing.has(task.id) || !taskIsOurs(task)) continue;
    const captureDir = task.stdout.slice(0, -"/stdout".length);
    const modified = await modifiedMs(captureDir);
    if (!old(modified)) {
      report.kept.push({ what: "container", id: task.id, reason: tooRecent(modified) });
      continue;
    }
    removing.push({
      item: {
        id: task.id,
        kind: "",
        name: "",
        image: "",
        createdAt: iso(modified),
        ageMs: age(modified),
        status: "no container record",
        removed: [],
      },
      captureDir,
      snapshotter: snapshots.find((s) => s.info.name === task.id)?.snapshotter,
    });
  }
  report.containers = removing.map((r) => r.item);
  if (!dryRun) {
    // One shared grace period for all running tasks, rather than one per container in turn.
    await stopTogether(
      client,
      removing.flatMap(({ item }) => {
        const task = taskById.get(item.id);
        if (!task || !existing.has(item.id) || task.status === TaskStatus.STOPPED) return [];
        const label = containerById.get(item.id)?.labels[LABELS.stopSignal];
        return [{ id: item.id, signal: label ? Number(label) : 15 }];
      }),
      grace,
    );
    await pooledMap(removing, REMOVE_CONCURRENCY, async ({ item, captureDir, snapshotter }) => {
      const record = containerById.get(item.id);
      const task = taskById.get(item.id);
      const removed = await removeContainer(client, item.id, {
        gracePeriodMs: grace,
        captureDir,
        snapshotter,
        // Listed above, and stopped together: no lookups, no second round of signals.
        known: record ? { record, task } : undefined,
        killed: !!record,
      });
      item.removed = removed.removed;
      for (const err of removed.errors) report.errors.push(`container ${item.id}: ${err.message}`);
    });
  }
  // What the containers above cover (removed, or kept on purpose).
  const covered = new Set([...existing, ...removing.map((r) => r.item.id)]);

  // 2. leases
  const { leases } = await client.leases.list({});
  const leaseIds = new Set(leases.map((l) => l.id));
  const doomedLeases = new Set<string>();
  for (const lease of leases) {
    if (lease.labels[LABELS.managedBy] !== MANAGED_BY) continue;
    const owner = lease.id.endsWith("-lease") ? lease.id.slice(0, -"-lease".length) : undefined;
    if (owner !== undefined && covered.has(owner)) continue;
    const created = timestampMs(lease.createdAt);
    if (!old(created)) {
      report.kept.push({ what: "lease", id: lease.id, reason: tooRecent(created) });
      continue;
    }
    doomedLeases.add(lease.id);
    report.leases.push({ id: lease.id, createdAt: iso(created), ageMs: age(created) ?? 0 });
  }
  if (!dryRun) {
    for (const lease of report.leases) {
      try {
        await client.leases.delete({ id: lease.id });
      } catch (err) {
        if (!isNotFound(err)) report.errors.push(`lease ${lease.id}: ${errorMessage(err)}`);
      }
    }
  }

  // 3. snapshots
  for (const { snapshotter, info } of snapshots) {
    if (covered.has(info.name)) continue;
    const created = timestampMs(info.createdAt);
    if (!old(created)) {
      report.kept.push({ what: "snapshot", id: info.name, reason: tooRecent(created) });
      continue;
    }
    report.snapshots.push({
      snapshotter,
      key: info.name,
      createdAt: iso(created),
      ageMs: age(created) ?? 0,
    });
    if (!dryRun) {
      try {
        await client.snapshots.remove({ snapshotter, key: info.name });
      } catch (err) {
        if (!isNotFound(err)) report.errors.push(`snapshot ${info.name}: ${errorMessage(err)}`);
      }
    }
  }

  // 4. capture directories, unless some namespace cannot be examined
  const owners = await ownersInAllNamespaces(client, report);
  if (owners) {
    for (const id of covered) owners.add(id);
    for (const task of tasks) owners.add(task.id);
    for (const id of leaseIds) if (!doomedLeases.has(id)) owners.add(id);
    await pruneCaptureDirs(ioDir, await daemonUuid(client), owners, old, now, dryRun, report);
  }
  return report;
}
