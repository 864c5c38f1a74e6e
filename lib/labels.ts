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
  /** On a pull's or import's lease: the image being stored. */
  pull: "wfe.containerd/pull",
  /** Declared ports of a service, comma separated. */
  ports: "wfe.containerd/ports",
} as const;

/** Value of the managed-by label. */
export const MANAGED_BY = "@wfe/containerd";

/** Namespace label that names a namespace's default snapshotter. */
export const DEFAULT_SNAPSHOTTER_LABEL = "containerd.io/defaults/snapshotter";

/** Lease label: containerd's garbage collector deletes the lease after this RFC 3339 time. */
export const LEASE_EXPIRE_LABEL = "containerd.io/gc.expire";

/** Snapshot label: the chain ID an extraction snapshot is committed as (set while unpacking). */
export const SNAPSHOT_REF_LABEL = "containerd.io/snapshot.ref";

/** Layer blob label: the layer's diff ID, set once it was unpacked and verified. */
export const UNCOMPRESSED_LABEL = "containerd.io/uncompressed";

/**
 * Prefix of the content labels that keep other content alive: `.m.<i>` on
 * indexes, `.config` and `.l.<i>` on manifests (value: the child's digest).
 */
export const GC_REF_CONTENT_PREFIX = "containerd.io/gc.ref.content.";

/** Prefix of the config label that keeps an image's top snapshot: `<prefix><snapshotter>`. */
export const GC_REF_SNAPSHOT_PREFIX = "containerd.io/gc.ref.snapshot.";

/** Prefix of the blob label naming where it was pulled from: `<prefix><host>` = repositories. */
export const DISTRIBUTION_SOURCE_PREFIX = "containerd.io/distribution.source.";

/** Index annotation: the full image name of a manifest in an OCI layout (containerd's). */
export const IMAGE_NAME_ANNOTATION = "io.containerd.image.name";

/** Index annotation: the reference name (often only the tag) of a manifest in an OCI layout. */
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";
