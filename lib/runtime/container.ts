/**
 * The container lifecycle shared by steps and services: create everything a
 * task needs (lease, capture files, snapshot, container record, task) and
 * remove it all again, whatever state it is in.
 *
 * @module
 */

import type { ContainerdClient } from "../grpc/connection.ts";
import { ContainerdError, GrpcCode, isNotFound } from "../grpc/errors.ts";
import type { Init } from "../grpc/rpc.ts";
import { LABELS, LEASE_EXPIRE_LABEL, MANAGED_BY } from "../labels.ts";
import { type OciSpec, specToAny } from "../oci/spec.ts";
import { type Capture, type CaptureOptions, createCapture } from "./capture.ts";
import { applyInputs, deleteBlob, type Input, type InputOwner, writeInputs } from "./inputs.ts";
import { daemonUuid } from "./owner.ts";
import { removeContainer } from "./remove.ts";
import { leaseIdOf, runtimeOptions } from "./task.ts";
import type { Container, RuncOptions } from "../../proto/gen/types.ts";

/** What {@linkcode createContainerTask} needs. */
export interface ContainerTaskRequest {
  /** The container id (see {@linkcode newContainerId}). */
  containerId: string;
  /** `step` or `service`, for the labels. */
  kind: "step" | "service";
  /** Step or service name, for the labels. */
  name: string;
  /** Stored image name. */
  imageName: string;
  /** Chain ID of the image's layers: the snapshot's parent. */
  chainId: string;
  /** The runtime spec. */
  spec: OciSpec;
  /** Snapshotter holding the unpacked image. */
  snapshotter: string;
  /** Runtime name. */
  runtime: string;
  /** runc options, if any. */
  runcOptions?: Init<RuncOptions>;
  /** More labels for the container. */
  labels?: Record<string, string>;
  /** Capture file options (base dir, live callbacks, memory cap). */
  capture?: CaptureOptions;
  /** Lease expiry, in milliseconds from now. */
  leaseExpireMs: number;
  /** Files to place in the snapshot before the task is created, and their default owner. */
  inputs?: { inputs: readonly Input[]; owner: InputOwner };
}

/** A created (not yet started) task and what was made for it. */
export interface CreatedTask {
  /** The container id. */
  containerId: string;
  /** The capture files of stdout and stderr. */
  capture: Capture;
  /** Tasks.Wait, registered right after Tasks.Create (before Start). */
  wait: Promise<{ exitStatus: number }>;
  /** The container record as containerd stored it. */
  record: Container;
}

/**
 * Creates, in order: an expiring lease, the capture files, the snapshot
 * (parent = the image's chain ID) together with the container record
 * (labelled as ours), the inputs' blob, all three at once; applies the inputs
 * onto the snapshot, then creates the task and registers Wait. On failure removes whatever was created.
 */
export async function createContainerTask(
  client: ContainerdClient,
  req: ContainerTaskRequest,
): Promise<CreatedTask> {
  const { containerId, snapshotter } = req;
  const leaseId = leaseIdOf(containerId);
  let capture: Capture | undefined;
  let owned = false; // only clean up an id whose lease this call created
  try {
    await client.leases.create({
      id: leaseId,
      labels: {
        [LEASE_EXPIRE_LABEL]: new Date(Date.now() + req.leaseExpireMs).toISOString(),
        [LABELS.managedBy]: MANAGED_BY,
        [LABELS.kind]: req.kind,
      },
    });
    owned = true;
    const leased = client.withLease(leaseId);
    capture = await createCapture(containerId, {
      ...req.capture,
      owner: { daemon: await daemonUuid(client), namespace: client.namespace },
    });
    // The snapshot and the container record do not depend on each other: both at once.
    const dir = capture.dir;
    const inputs = req.inputs?.inputs.length
      ? writeInputs(leased, req.inputs.inputs, req.inputs.owner, containerId)
      : undefined;
    const [prepared, created, written] = await Promise.allSettled([
      leased.snapshots.prepare({
        snapshotter,
        key: containerId,
        parent: req.chainId,
        labels: { [LABELS.managedBy]: MANAGED_BY },
      }),
      leased.containers.create({
        container: {
          id: containerId,
          image: req.imageName,
          labels: {
            ...req.labels,
            [LABELS.managedBy]: MANAGED_BY,
            [LABELS.kind]: req.kind,
            [LABELS.name]: req.name,
            [LABELS.createdAt]: new Date().toISOString(),
            [LABELS.ioDir]: dir,
          },
          runtime: { name: req.runtime, options: runtimeOptions(req.runcOptions) },
          spec: specToAny(req.spec),
          snapshotter,
          snapshotKey: containerId,
        },
      }),
      inputs,
    ]);
    if (
      written.status === "fulfilled" && written.value &&
      [prepared, created].some((r) => r.status === "rejected")
    ) {
      await deleteBlob(client, written.value.digest).catch(() => {});
    }
    if (prepared.status === "rejected") {
      const err = prepared.reason;
      if (!isNotFound(err)) throw err;
      throw new ContainerdError({
        code: GrpcCode.NOT_FOUND,
        method: "Snapshots.Prepare",
        details: `image '${req.imageName}' is not unpacked in snapshotter '${snapshotter}' ` +
          `(no snapshot ${req.chainId}); unpack it, e.g. with \`ctr images import\` or ` +
          `\`ctr images unpack --snapshotter ${snapshotter}\``,
        cause: err,
      });
    }
    if (created.status === "rejected") throw created.reason;
    if (written.status === "rejected") throw written.reason;
    const { mounts } = prepared.value;
    if (written.value) await applyInputs(leased, written.value, mounts);
    const record = created.value.container!;
    await leased.tasks.create({
      containerId,
      rootfs: mounts,
      stdout: capture.stdoutPath,
      stderr: capture.stderrPath,
    });
    const wait = client.tasks.wait({ containerId });
    wait.catch(() => {});
    return { containerId, capture, wait, record };
  } catch (err) {
    if (!owned) throw err;
    await removeContainer(client, containerId, {
      gracePeriodMs: 0,
      captureDir: capture?.dir,
      snapshotter,
    });
    throw err;
  }
}
