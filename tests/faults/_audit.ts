/**
 * One audit of everything a step or service can leave behind on a daemon: containers, tasks,
 * active snapshots, leases, ingests, capture dirs and live shims, filtered to what a test made.
 *
 * @module
 */

import { connect } from "../../lib/grpc/connection.ts";
import { Kind } from "../../proto/gen/types.ts";
import { ourShims } from "../harness.ts";

/** What an audit found (ids, paths, PIDs). */
export interface Leftovers {
  containers: string[];
  tasks: string[];
  activeSnapshots: string[];
  leases: string[];
  ingests: string[];
  captureDirs: string[];
  shims: number[];
}

/** Where to look, and which names belong to the test. */
export interface AuditScope {
  /** The daemon's socket path. */
  address: string;
  /** The daemon's directory (its shims name it). */
  dir: string;
  namespace: string;
  snapshotter: string;
  /** The IO base dir the test's steps used. */
  ioDir: string;
  /** True for a container id (or lease / snapshot / capture dir name) the test made. */
  mine: (name: string) => boolean;
}

/** Lists what is left of the test's steps and services. */
export async function audit(scope: AuditScope): Promise<Leftovers> {
  await using c = await connect(`unix://${scope.address}`, { namespace: scope.namespace });
  const { mine } = scope;
  const containers = (await c.containers.list({})).containers.map((x) => x.id).filter(mine);
  const tasks = (await c.tasks.list({})).tasks.map((t) => t.id).filter(mine);
  const activeSnapshots: string[] = [];
  for await (const res of c.snapshots.list({ snapshotter: scope.snapshotter })) {
    for (const info of res.info) {
      if (info.kind === Kind.ACTIVE && mine(info.name)) activeSnapshots.push(info.name);
    }
  }
  const leases = (await c.leases.list({})).leases.map((l) => l.id).filter(mine);
  const ingests = (await c.content.listStatuses({})).statuses.map((s) => s.ref).filter(mine);
  const captureDirs: string[] = [];
  for await (const e of Deno.readDir(scope.ioDir)) {
    if (e.name.startsWith("wfe-io-") && mine(e.name)) captureDirs.push(e.name);
  }
  const shims = ourShims(scope.dir).filter((pid) => {
    const args = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
    const id = args[args.indexOf("-id") + 1];
    return id !== undefined && mine(id);
  });
  return { containers, tasks, activeSnapshots, leases, ingests, captureDirs, shims };
}

/** Nothing at all. */
export const NOTHING: Leftovers = {
  containers: [],
  tasks: [],
  activeSnapshots: [],
  leases: [],
  ingests: [],
  captureDirs: [],
  shims: [],
};
