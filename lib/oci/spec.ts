/**
 * OCI runtime specs: containerd's default Linux spec, the image config
 * applied to it, then the step's options, each as a small function that
 * changes one part of the spec (like containerd's SpecOpts).
 *
 * @module
 */

import type { SeccompProfile } from "./seccomp.ts";

/** The OCI runtime-spec version containerd 1.6 writes. */
export const OCI_VERSION = "1.0.2-dev";
/** `type_url` of a runtime spec inside a protobuf Any, as containerd expects it. */
export const SPEC_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
/** PATH used when the image config has none. */
export const DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Capabilities containerd grants by default (given to uid 0 only). */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

/** A mount of the runtime spec. */
export interface OciMount {
  /** Absolute path inside the container. */
  destination: string;
  /** Filesystem type, e.g. `bind`, `proc`, `tmpfs`. */
  type: string;
  /** Source: a path for bind mounts, else a device or name. */
  source: string;
  /** Mount options, e.g. `["rbind", "ro"]`. */
  options?: string[];
}

/** A device cgroup rule. */
export interface OciDeviceRule {
  /** Allow (true) or deny (false). */
  allow: boolean;
  /** `c` (char), `b` (block) or `a` (all); omitted means all. */
  type?: string;
  /** Major number; omitted means all. */
  major?: number;
  /** Minor number; omitted means all. */
  minor?: number;
  /** Access: a combination of `r`, `w`, `m`. */
  access: string;
}

/** Linux capability sets of the process. */
export interface OciCapabilities {
  /** Bounding set. */
  bounding: string[];
  /** Effective set. */
  effective: string[];
  /** Permitted set. */
  permitted: string[];
  /** Inheritable set (empty unless asked for). */
  inheritable?: string[];
  /** Ambient set (empty unless asked for). */
  ambient?: string[];
}

/** The subset of the OCI runtime spec this project writes. */
export interface OciSpec {
  /** Spec version. */
  ociVersion: string;
  /** The container's init process. */
  process: {
    /** Attach a terminal (never for steps). */
    terminal: boolean;
    /** uid, gid and supplementary groups. */
    user: { uid: number; gid: number; additionalGids?: number[] };
    /** argv. */
    args: string[];
    /** `KEY=value` entries. */
    env: string[];
    /** Working directory (absolute). */
    cwd: string;
    /** Capability sets. */
    capabilities: OciCapabilities;
    /** Resource limits. */
    rlimits: { type: string; hard: number; soft: number }[];
    /** Forbid gaining privileges (setuid binaries). */
    noNewPrivileges: boolean;
  };
  /** Root filesystem (the shim mounts the task's rootfs at `rootfs`). */
  root: { path: string; readonly?: boolean };
  /** Host name inside the UTS namespace, if set. */
  hostname?: string;
  /** Mounts, in order. */
  mounts: OciMount[];
  /** Linux-specific settings. */
  linux: {
    /** Namespaces the container gets of its own. */
    namespaces: { type: string; path?: string }[];
    /** Paths masked in the container. */
    maskedPaths: string[];
    /** Paths made read-only in the container. */
    readonlyPaths: string[];
    /** The cgroup path, `/<namespace>/<container id>`. */
    cgroupsPath: string;
    /** The seccomp filter, if any. */
    seccomp?: SeccompProfile;
    /** Cgroup resources. */
    resources: {
      /** Device rules. */
      devices: OciDeviceRule[];
      /** Memory limit and swap (bytes). */
      memory?: { limit: number; swap?: number };
      /** CFS quota and period (microseconds). */
      cpu?: { quota: number; period: number };
    };
  };
}

/** A change to a spec, applied in order by {@linkcode buildSpec}. */
export type SpecOpt = (spec: OciSpec) => void;

/** containerd's default Linux spec for a container in `namespace` (oci/spec.go). */
export function defaultSpec(namespace: string, containerId: string): OciSpec {
  const caps = [...DEFAULT_CAPABILITIES];
  return {
    ociVersion: OCI_VERSION,
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: [],
      env: [],
      cwd: "/",
      capabilities: { bounding: caps, effective: [...caps], permitted: [...caps] },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: "rootfs" },
    mounts: [
      {
        destination: "/proc",
        type: "proc",
        source: "proc",
        options: ["nosuid", "noexec", "nodev"],
      },
      {
        destination: "/dev",
        type: "tmpfs",
        source: "tmpfs",
        options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
      },
      {
        destination: "/dev/pts",
        type: "devpts",
        source: "devpts",
        options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
      },
      {
        destination: "/dev/shm",
        type: "tmpfs",
        source: "shm",
        options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
      },
      {
        destination: "/dev/mqueue",
        type: "mqueue",
        source: "mqueue",
        options: ["nosuid", "noexec", "nodev"],
      },
      {
        destination: "/sys",
        type: "sysfs",
        source: "sysfs",
        options: ["nosuid", "noexec", "nodev", "ro"],
      },
      {
        destination: "/run",
        type: "tmpfs",
        source: "tmpfs",
        options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
      },
    ],
    linux: {
      namespaces: ["pid", "ipc", "uts", "mount", "network"].map((type) => ({ type })),
      maskedPaths: [
        "/proc/acpi",
        "/proc/asound",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/sys/firmware",
        "/proc/scsi",
      ],
      readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
      cgroupsPath: `/${namespace}/${containerId}`,
      resources: { devices: [{ allow: false, access: "rwm" }] },
    },
  };
}

/** The character devices `ctr run` allows on top of the default deny-all rule. */
export function withDefaultDevices(spec: OciSpec): void {
  const rule = (major: number, minor?: number): OciDeviceRule => ({
    allow: true,
    type: "c",
    major,
    ...(minor === undefined ? {} : { minor }),
    access: "rwm",
  });
  spec.linux.resources.devices.push(
    rule(1, 3), // /dev/null
    rule(1, 8), // /dev/random
    rule(1, 7), // /dev/full
    rule(5, 0), // /dev/tty
    rule(1, 5), // /dev/zero
    rule(1, 9), // /dev/urandom
    rule(5, 1), // /dev/console
    rule(136), // /dev/pts/*
    rule(5, 2), // /dev/ptmx
  );
}

/** The process-related part of an image config (OCI `config` object). */
export interface ImageProcessConfig {
  /** `User` of the image. */
  User?: string;
  /** `Env` of the image, `KEY=value` entries. */
  Env?: string[] | null;
  /** `Entrypoint` of the image. */
  Entrypoint?: string[] | null;
  /** `Cmd` of the image. */
  Cmd?: string[] | null;
  /** `WorkingDir` of the image. */
  WorkingDir?: string;
}

/**
 * Sets `KEY=value` entries, replacing entries with the same key and keeping
 * the order of first appearance.
 */
export function withEnv(entries: readonly string[]): SpecOpt {
  return (spec) => {
    // Map.set on an existing key keeps its position and replaces the value.
    const byKey = new Map<string, string>();
    for (const entry of [...spec.process.env, ...entries]) {
      const eq = entry.indexOf("=");
      byKey.set(eq === -1 ? entry : entry.slice(0, eq), entry);
    }
    spec.process.env = [...byKey.values()];
  };
}

/**
 * Applies an image config as containerd's WithImageConfig does: Env (or the
 * default PATH), Entrypoint + Cmd as args, WorkingDir (else "/"). The user is
 * applied separately (it may need the image's /etc/passwd).
 */
export function withImageConfig(config: ImageProcessConfig | undefined): SpecOpt {
  return (spec) => {
    const env = config?.Env ?? [];
    const hasPath = env.some((e) => e.startsWith("PATH="));
    withEnv(hasPath ? env : [DEFAULT_PATH, ...env])(spec);
    spec.process.args = [...(config?.Entrypoint ?? []), ...(config?.Cmd ?? [])];
    spec.process.cwd = config?.WorkingDir || "/";
  };
}

/** Replaces the whole argv. */
export function withArgs(args: readonly string[]): SpecOpt {
  return (spec) => {
    spec.process.args = [...args];
  };
}

/** Sets the working directory. */
export function withCwd(cwd: string): SpecOpt {
  return (spec) => {
    spec.process.cwd = cwd;
  };
}

/**
 * Sets uid, gid and supplementary groups; the default capability set stays
 * for uid 0 and is emptied for any other uid.
 */
export function withUser(
  uid: number,
  gid: number,
  additionalGids: readonly number[] = [],
): SpecOpt {
  return (spec) => {
    spec.process.user = { uid, gid };
    if (additionalGids.length > 0) spec.process.user.additionalGids = [...additionalGids];
    const caps = uid === 0 ? [...DEFAULT_CAPABILITIES] : [];
    spec.process.capabilities = {
      bounding: caps,
      effective: [...caps],
      permitted: [...caps],
    };
  };
}

/** A bind mount of the host (the daemon's host) into the container. */
export interface BindMount {
  /** Absolute path on the host where containerd runs. */
  source: string;
  /** Absolute path in the container. */
  target: string;
  /** Mount read-only. */
  readonly?: boolean;
}

/**
 * Adds bind mounts (`rbind`, plus `ro` or `rw`); with `recursive`, read-only
 * mounts also get `rro` (runc 1.1+, kernel 5.12+), so mounts below the source
 * are read-only too.
 */
export function withBindMounts(
  mounts: readonly BindMount[],
  options: { recursiveReadonly?: boolean } = {},
): SpecOpt {
  return (spec) => {
    for (const m of mounts) {
      const mode = m.readonly ? (options.recursiveReadonly ? ["ro", "rro"] : ["ro"]) : ["rw"];
      spec.mounts.push({
        destination: m.target,
        type: "bind",
        source: m.source,
        options: ["rbind", ...mode],
      });
    }
  };
}

/**
 * `"none"` keeps the container's own network namespace (only `lo`); `"host"`
 * shares the host's, binds /etc/hosts and /etc/resolv.conf read-only and sets
 * HOSTNAME, as `ctr run --net-host` does.
 */
export function withNetwork(mode: "none" | "host", hostname?: string): SpecOpt {
  return (spec) => {
    if (mode === "none") return;
    spec.linux.namespaces = spec.linux.namespaces.filter((ns) => ns.type !== "network");
    withBindMounts([
      { source: "/etc/hosts", target: "/etc/hosts", readonly: true },
      { source: "/etc/resolv.conf", target: "/etc/resolv.conf", readonly: true },
    ])(spec);
    if (hostname) withEnv([`HOSTNAME=${hostname}`])(spec);
  };
}

/** Limits memory to `bytes`, with no swap on top, so going over the limit means the OOM killer. */
export function withMemoryLimit(bytes: number): SpecOpt {
  return (spec) => {
    spec.linux.resources.memory = { limit: bytes, swap: bytes };
  };
}

/** Limits CPU to `cpus` cores: period 100000 µs, quota `cpus` × 100000. */
export function withCpus(cpus: number): SpecOpt {
  return (spec) => {
    spec.linux.resources.cpu = { period: 100_000, quota: Math.round(cpus * 100_000) };
  };
}

/**
 * Builds a spec: containerd's default Linux spec plus `ctr run`'s device
 * rules, then `opts` in order.
 *
 * @example
 * ```ts
 * import { buildSpec, withArgs, withImageConfig, withUser } from "@wfe/containerd/api";
 *
 * const spec = buildSpec("default", "wfe-1", [
 *   withImageConfig({ Env: ["PATH=/bin"], Cmd: ["/bin/sh"] }),
 *   withArgs(["/bin/sh", "-c", "echo hi"]),
 *   withUser(65534, 65534),
 * ]);
 * spec.process.args; // ["/bin/sh", "-c", "echo hi"]
 * ```
 */
export function buildSpec(
  namespace: string,
  containerId: string,
  opts: readonly SpecOpt[],
): OciSpec {
  const spec = defaultSpec(namespace, containerId);
  withDefaultDevices(spec);
  for (const opt of opts) opt(spec);
  return spec;
}

/** Wraps a spec as the protobuf Any that Containers.Create expects. */
export function specToAny(spec: OciSpec): { typeUrl: string; value: Uint8Array } {
  return { typeUrl: SPEC_TYPE_URL, value: new TextEncoder().encode(JSON.stringify(spec)) };
}
