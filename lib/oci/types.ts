/**
 * The shapes of OCI and Docker image documents: the one descriptor type,
 * platform, index, manifest and image config.
 *
 * @module
 */

/** A platform as OCI documents spell it (an index entry's `platform`, a config's fields). */
export interface OciPlatform {
  /** Operating system, e.g. `linux`. */
  os: string;
  /** CPU architecture in Go's spelling, e.g. `amd64`, `arm64`, `arm`. */
  architecture: string;
  /** CPU variant, e.g. `v7` for arm, `v8` for arm64. */
  variant?: string;
  /** Operating system version (Windows images). */
  "os.version"?: string;
  /** Required operating system features (Windows images). */
  "os.features"?: string[];
}

/** A reference to a blob: what it is, its digest and size. */
export interface OciDescriptor {
  /** The blob's media type. */
  mediaType: string;
  /** The blob's digest, `sha256:<hex>`. */
  digest: string;
  /** The blob's size in bytes. */
  size: number;
  /** Where else the blob can be downloaded from. */
  urls?: string[];
  /** Free-form annotations. */
  annotations?: Record<string, string>;
  /** The platform of the manifest this descriptor points to (index entries). */
  platform?: OciPlatform;
  /** The artifact type of the manifest this descriptor points to. */
  artifactType?: string;
}

/** An OCI image index or a Docker manifest list. */
export interface OciIndex {
  /** Always 2. */
  schemaVersion: 2;
  /** The index's own media type, when the document states it. */
  mediaType?: string;
  /** The artifact type, for artifact indexes. */
  artifactType?: string;
  /** The manifests, usually one per platform. */
  manifests: OciDescriptor[];
  /** A manifest this index refers to (referrers API). */
  subject?: OciDescriptor;
  /** Free-form annotations. */
  annotations?: Record<string, string>;
}

/** An OCI image manifest or a Docker schema 2 manifest. */
export interface OciManifest {
  /** Always 2. */
  schemaVersion: 2;
  /** The manifest's own media type, when the document states it. */
  mediaType?: string;
  /** The artifact type, for artifact manifests. */
  artifactType?: string;
  /** The image config blob. */
  config: OciDescriptor;
  /** The layer blobs, bottom layer first. */
  layers: OciDescriptor[];
  /** A manifest this manifest refers to (referrers API). */
  subject?: OciDescriptor;
  /** Free-form annotations. */
  annotations?: Record<string, string>;
}

/** The runtime defaults of an image (the `config` object of an image config). */
export interface OciContainerConfig {
  /** User to run as: `name`, `uid`, `uid:gid`, `name:group`. */
  User?: string;
  /** Ports the image listens on, e.g. `{ "80/tcp": {} }`. */
  ExposedPorts?: Record<string, unknown>;
  /** Environment, `KEY=value` entries. */
  Env?: string[];
  /** Program and leading arguments. */
  Entrypoint?: string[];
  /** Default arguments (after `Entrypoint`), or the command when there is no entrypoint. */
  Cmd?: string[];
  /** Paths that should be volumes, e.g. `{ "/data": {} }`. */
  Volumes?: Record<string, unknown>;
  /** Working directory. */
  WorkingDir?: string;
  /** Labels. */
  Labels?: Record<string, string>;
  /** Signal that stops the container, e.g. `SIGTERM`. */
  StopSignal?: string;
}

/** One entry of an image config's history. */
export interface OciHistory {
  /** When the step ran (RFC 3339). */
  created?: string;
  /** The command of the step. */
  created_by?: string;
  /** Who made the step. */
  author?: string;
  /** A comment. */
  comment?: string;
  /** True when the step produced no layer. */
  empty_layer?: boolean;
}

/** An OCI or Docker image config. */
export interface OciImageConfig {
  /** When the image was created (RFC 3339). */
  created?: string;
  /** Who made the image. */
  author?: string;
  /** CPU architecture, e.g. `amd64`. */
  architecture: string;
  /** Operating system, e.g. `linux`. */
  os: string;
  /** CPU variant, e.g. `v8`. */
  variant?: string;
  /** Operating system version (Windows images). */
  "os.version"?: string;
  /** Required operating system features (Windows images). */
  "os.features"?: string[];
  /** Runtime defaults: user, env, entrypoint, command, working directory, ... */
  config?: OciContainerConfig;
  /** The layers' diff IDs. */
  rootfs: {
    /** Always `layers`. */
    type: "layers";
    /** sha256 of each uncompressed layer tar, bottom layer first. */
    diff_ids: string[];
  };
  /** How the image was built. */
  history?: OciHistory[];
}

/** Options of {@linkcode parseIndex}, {@linkcode parseManifest} and {@linkcode parseImageConfig}. */
export interface ParseOptions {
  /**
   * The media type of the descriptor that pointed at the blob. When given it
   * must be a media type of the right kind, and a `mediaType` stated in the
   * document must equal it.
   */
  mediaType?: string;
}

// ---------------------------------------------------------------------------------------------
