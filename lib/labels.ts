/**
 * The label keys this project and containerd put on what they create: one
 * place for all of them (the project's own under `wfe.containerd/`, and the
 * `containerd.io/` keys containerd acts on).
 *
 * @module
 */

/** Label keys this project puts on what it creates, so leftovers can be found. */
export const LABELS = {
  /** Always `@wfe/containerd`. */
  managedBy: "wfe.containerd/managed-by",
  /** `step` or `service`. */
  kind: "wfe.containerd/kind",
  /** The step or service name. */
  name: "wfe.containerd/name",
  /** RFC 3339 creation time. */
  createdAt: "wfe.containerd/created-at",
  /** The capture directory of the container's stdout and stderr. */
  ioDir: "wfe.containerd/io-dir",
  /** The signal number that stops the container (services: the image's StopSignal). */
  stopSignal: "wfe.containerd/stop-signal",
  /** Declared ports of a service, comma separated. */
  ports: "wfe.containerd/ports",
} as const;

/** Value of the managed-by label. */
export const MANAGED_BY = "@wfe/containerd";

/** Namespace label that names a namespace's default snapshotter. */
export const DEFAULT_SNAPSHOTTER_LABEL = "containerd.io/defaults/snapshotter";

/** Lease label: containerd's garbage collector deletes the lease after this RFC 3339 time. */
export const LEASE_EXPIRE_LABEL = "containerd.io/gc.expire";
