/**
 * The listing and sweeping helpers behind {@linkcode prune}.
 *
 * @module
 */

import { errorMessage } from "./_util/errors.ts";
import { readOwner } from "./runtime/owner.ts";
import { captureDirContainerId, isCaptureDirOf } from "./runtime/capture.ts";
import { isIdentifier } from "./_util/identifiers.ts";
import type { ContainerdClient } from "./grpc/connection.ts";
import { isNotFound, isUnimplemented } from "./grpc/errors.ts";
import { LABELS, MANAGED_BY } from "./labels.ts";
import type { PruneReport } from "./prune.ts";
import { killQuietly, leaseIdOf } from "./runtime/task.ts";
import { pooledMap } from "./_util/async.ts";
import {
  type Process,
  type SnapshotsInfo,
  TaskStatus,
  type Timestamp,
} from "../proto/gen/types.ts";

const SNAPSHOTTER_PLUGIN = "io.containerd.snapshotter.v1";
export const CONCURRENCY = 4;

export function timestampMs(ts: Timestamp | null | undefined): number | undefined {
  if (!ts || (ts.seconds === 0 && ts.nanos === 0)) return undefined;
  return ts.seconds * 1000 + Math.floor(ts.nanos / 1e6);
}

export function iso(ms: number | undefined): string {
  return ms === undefined ? "" : new Date(ms).toISOString();
}

export function taskIsOurs(task: Process): boolean {
  if (!task.stdout.endsWith("/stdout")) return false;
  return isCaptureDirOf(task.stdout.slice(0, -"/stdout".length), task.id);
}

/** Snapshots labelled as ours, in every snapshotter that loaded. */
export async function ourSnapshots(
  client: ContainerdClient,
  report: PruneReport,
): Promise<{ snapshotter: string; info: SnapshotsInfo }[]> {
  const out: { snapshotter: string; info: SnapshotsInfo }[] = [];
  for (const snapshotter of await usableSnapshotters(client, report)) {
    try {
      for await (
        const batch of client.snapshots.list({
          snapshotter,
          filters: [`labels."${LABELS.managedBy}"`],
        })
      ) {
        for (const info of batch.info) {
          if (info.labels[LABELS.managedBy] === MANAGED_BY) out.push({ snapshotter, info });
        }
      }
    } catch (err) {
      if (!isNotFound(err) && !isUnimplemented(err)) {
        report.errors.push(`snapshots of ${snapshotter}: ${errorMessage(err)}`);
      }
    }
  }
  return out;
}

async function usableSnapshotters(
  client: ContainerdClient,
  report: PruneReport,
): Promise<string[]> {
  try {
    const { plugins } = await client.introspection.plugins({
      filters: [`type==${SNAPSHOTTER_PLUGIN}`],
    });
    return plugins.filter((p) => p.type === SNAPSHOTTER_PLUGIN && !p.initErr).map((p) => p.id);
  } catch (err) {
    report.errors.push(`snapshotters: ${errorMessage(err)}`);
    return [];
  }
}

/**
 * Container, task and lease ids in every other namespace; undefined (and an
 * error in the report) when one cannot be listed, so no directory is removed
 * blindly.
 */
export async function ownersInAllNamespaces(
  client: ContainerdClient,
  report: PruneReport,
): Promise<Set<string> | undefined> {
  const owners = new Set<string>();
  try {
    const { namespaces } = await client.namespaces.list({});
    for (const { name } of namespaces) {
      if (name === client.namespace) continue; // the caller knows its own namespace
      const ns = client.withNamespace(name);
      for (const c of (await ns.containers.list({})).containers) owners.add(c.id);
      for (const t of (await ns.tasks.list({})).tasks) owners.add(t.id);
      for (const l of (await ns.leases.list({})).leases) owners.add(l.id);
    }
    return owners;
  } catch (err) {
    report.errors.push(`capture dirs skipped: cannot list every namespace: ${errorMessage(err)}`);
    return undefined;
  }
}

/** The latest modification time of a capture dir and its files. */
export async function modifiedMs(dir: string): Promise<number | undefined> {
  let latest: number | undefined;
  for (const path of [dir, `${dir}/stdout`, `${dir}/stderr`]) {
    try {
      const ms = (await Deno.lstat(path)).mtime?.getTime();
      if (ms !== undefined && (latest === undefined || ms > latest)) latest = ms;
    } catch {
      // missing or unreadable: the others decide
    }
  }
  return latest;
}

export async function pruneCaptureDirs(
  ioDir: string,
  daemon: string,
  owners: Set<string>,
  old: (ms: number | undefined) => boolean,
  now: number,
  dryRun: boolean,
  report: PruneReport,
): Promise<void> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(ioDir));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      report.errors.push(`capture dirs in ${ioDir}: ${errorMessage(err)}`);
    }
    return;
  }
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    if (!entry.isDirectory) continue;
    const id = captureDirContainerId(entry.name);
    if (id === undefined || !isIdentifier(id) || owners.has(id) || owners.has(leaseIdOf(id))) {
      continue;
    }
    const path = `${ioDir}/${entry.name}`;
    // A dir another daemon owns (several daemons may share an IO dir) is theirs to prune.
    const owner = await readOwner(path);
    if (owner && owner.daemon !== daemon) {
      report.kept.push({
        what: "capture dir",
        id: path,
        reason: `owned by another daemon (${owner.daemon}, namespace ${owner.namespace})`,
      });
      continue;
    }
    const modified = await modifiedMs(path);
    if (!old(modified)) {
      report.kept.push({
        what: "capture dir",
        id: path,
        reason: modified === undefined
          ? "age unknown"
          : `modified ${Math.round((now - modified) / 1000)}s ago`,
      });
      continue;
    }
    report.captureDirs.push({
      path,
      containerId: id,
      modifiedAt: iso(modified),
      ageMs: modified === undefined ? 0 : now - modified,
    });
    if (!dryRun) {
      try {
        await Deno.remove(path, { recursive: true });
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) {
          report.errors.push(`capture dir ${path}: ${errorMessage(err)}`);
        }
      }
    }
  }
}

/** How many containers prune removes at once. */
export const REMOVE_CONCURRENCY = 8;

/**
 * Stops many running tasks together: the stop signal to all, ONE grace period shared by all
 * (watched with Tasks.List), then SIGKILL to the processes of what still runs (at once without a
 * grace period). Removing them one by one afterwards only waits for the exits. Never throws.
 */
export async function stopTogether(
  client: ContainerdClient,
  targets: { id: string; signal: number }[],
  graceMs: number,
): Promise<void> {
  if (targets.length === 0) return;
  if (graceMs <= 0) {
    // No grace period: straight to SIGKILL (one runtime call per task instead of two).
    await pooledMap(targets, 16, (t) => killQuietly(client, t.id, 9, true).catch(() => {}));
    return;
  }
  await pooledMap(targets, 16, (t) => killQuietly(client, t.id, t.signal, false).catch(() => {}));
  const live = async () => {
    const { tasks } = await client.tasks.list({}).catch(() => ({ tasks: [] as Process[] }));
    const running = new Set(
      tasks.filter((t) => t.status !== TaskStatus.STOPPED && t.status !== TaskStatus.UNKNOWN)
        .map((t) => t.id),
    );
    return targets.filter((t) => running.has(t.id));
  };
  const deadline = Date.now() + graceMs;
  let left = await live();
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, Math.min(100, Math.max(1, deadline - Date.now()))));
    left = await live();
  }
  await pooledMap(left, 16, (t) => killQuietly(client, t.id, 9, true).catch(() => {}));
}
