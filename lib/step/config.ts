/**
 * The configuration of a workflow step (wfe-containerd's fields in
 * camelCase) and its validation, done before anything touches the daemon.
 *
 * @module
 */

import { DEFAULT_RUNTIME } from "../runtime/task.ts";
import type { TlsOptions } from "../grpc/connection.ts";
import type { Init } from "../grpc/rpc.ts";
import type { BindMount } from "../oci/spec.ts";
import type { RuncOptions } from "../../proto/gen/types.ts";

import type { PullPolicy } from "../image/policy.ts";
import type { SeccompProfile } from "../oci/seccomp.ts";
import { errorMessage } from "../_util/errors.ts";
import { parseReference } from "../oci/reference.ts";
import { parsePlatform } from "../oci/platform.ts";
export type { PullPolicy };
import { parseCpu, parseMemory } from "./limits.ts";
import { type Input, validateInputs } from "../runtime/inputs.ts";
import { type CollectSpec, validateCollect } from "../runtime/collect.ts";
export { MIN_MEMORY_BYTES, parseCpu, parseMemory } from "./limits.ts";

/** Network mode of a step. */
export type NetworkMode = "none" | "host";

/** A workflow step, as wfe-containerd's config fields in camelCase. */
export interface StepConfig {
  /** Image reference, e.g. `alpine:3.18` or a full name; short names resolve as containerd users expect. */
  image: string;
  /** A shell command: runs as `["/bin/sh", "-c", run]`, replacing the image's Entrypoint and Cmd. */
  run?: string;
  /** Arguments that replace the image's Cmd (the image's Entrypoint stays in front). */
  command?: string[];
  /**
   * Replaces the image's Entrypoint and drops its Cmd (as `docker run
   * --entrypoint` does): the process is `[...entrypoint, ...command]`.
   */
  entrypoint?: string[];
  /**
   * Files and directories from this side (or tar streams) placed in the
   * container's filesystem before it starts, through containerd's content
   * store: no directory needs to be shared with the daemon.
   */
  inputs?: Input[];
  /**
   * Files or directories the step created or changed, copied out after it
   * exits (also when it fails), through containerd's differ and content
   * store: no directory needs to be shared with the daemon.
   */
  collect?: CollectSpec[];
  /** Environment; wins over `workflowData` and the image's Env. */
  env?: Record<string, string>;
  /** Bind mounts from the daemon's host. */
  volumes?: BindMount[];
  /** Working directory (absolute); defaults to the image's WorkingDir, else `/`. */
  workingDir?: string;
  /**
   * `uid:gid`, `uid`, `name` or `name:group`; names resolve from the image's
   * /etc/passwd and /etc/group. Defaults to the image's User, else `65534:65534`.
   */
  user?: string;
  /**
   * `"none"`: a private network namespace with only `lo`; `"host"`: the host's network.
   * @default {"none"}
   */
  network?: NetworkMode;
  /** Memory limit: bytes as a number, or `"512m"`, `"1g"`, `"1048576"`; at least 6 MiB. */
  memory?: string | number;
  /** CPU limit in cores, e.g. `"1.5"` or `0.5`. */
  cpu?: string | number;
  /**
   * Image pull policy: `"if-not-present"` pulls a missing image,
   * `"always"` asks the registry every time (fetching only what changed),
   * `"never"` uses only what is stored.
   * @default {"if-not-present"}
   */
  pull?: PullPolicy;
  /** Address of containerd; see {@linkcode connect}. */
  containerdAddr?: string;
  /** containerd namespace; defaults to `CONTAINERD_NAMESPACE`, else `default`. */
  namespace?: string;
  /** TLS files for an `https://` address. */
  tls?: TlsOptions;
  /** Kill the step after this many milliseconds (SIGTERM, grace period, SIGKILL). */
  timeoutMs?: number;
  /**
   * At most this many bytes of stdout and of stderr are kept in memory (the
   * last ones); outputs are parsed from the whole stream.
   * @default {16777216}
   */
  maxOutputBytes?: number;
  /** Workflow data: each key upper-cased becomes an environment variable. */
  workflowData?: Record<string, unknown>;
  /** Step name, used in output data keys (`<step>.stdout`) and labels. */
  stepName?: string;
  /** Image platform, e.g. `linux/arm64/v8`; defaults to the host's. */
  platform?: string;
  /** Snapshotter; defaults to the namespace's default, else `overlayfs`. */
  snapshotter?: string;
  /**
   * Runtime name.
   * @default {"io.containerd.runc.v2"}
   */
  runtime?: string;
  /** Options of the runc runtime (e.g. `root`, `binaryName`, `systemdCgroup`). */
  runcOptions?: Init<RuncOptions>;
  /** Extra labels on the container. */
  labels?: Record<string, string>;
  /**
   * The seccomp filter: `"default"` is containerd's default profile (as
   * `ctr run --seccomp` and nerdctl apply it), `"unconfined"` none, any other
   * value the path of a JSON profile (OCI `linux.seccomp` form) on this host.
   * @default {"default"}
   */
  seccomp?: string;
}

/** A step config after validation, with parsed limits. */
export interface ValidatedStep extends StepConfig {
  /** `network` with its default. */
  network: NetworkMode;
  /** `pull` with its default. */
  pull: PullPolicy;
  /** `runtime` with its default. */
  runtime: string;
  /** Memory limit in bytes, if any. */
  memoryBytes?: number;
  /** CPU limit in cores, if any. */
  cpus?: number;
  /** Environment entries, `KEY=value`: workflow data, then `env`. */
  envEntries: string[];
  /** `inputs`, checked, targets normalised. */
  inputs: Input[];
  /** `collect`, checked, paths normalised. */
  collect: CollectSpec[];
  /** The seccomp profile to apply, `undefined` for unconfined. */
  seccompProfile?: SeccompProfile | "default";
}

const ENV_KEY_FORBIDDEN = /[=\0\n\r]/;

/** Checks an environment key and value; `field` names where they came from. */
export function validateEnvEntry(key: string, value: string, field: string): void {
  if (key === "" || ENV_KEY_FORBIDDEN.test(key)) {
    throw new TypeError(
      `Cannot use ${field} key '${key.replace(/\0/g, "\\0")}': keys must be non-empty and ` +
        "contain no '=', NUL or line break",
    );
  }
  if (value.includes("\0")) {
    throw new TypeError(`Cannot use ${field}.${key}: the value contains NUL`);
  }
}

/** The longest step name: it is stored as a container label (containerd: key + value <= 4 KiB). */
const MAX_STEP_NAME = 1024;

/** Volume targets that would hide the container's own root, /proc, /sys or /dev. */
const SYSTEM_MOUNTS = ["/proc", "/sys", "/dev"];

function validatePath(path: string, field: string): void {
  if (typeof path !== "string" || !path.startsWith("/")) {
    throw new TypeError(`Cannot use ${field} '${path}': expected an absolute path`);
  }
  if (path.includes("\0")) throw new TypeError(`Cannot use ${field}: the path contains NUL`);
}

function envValue(value: unknown): string {
  // wfe: strings as they are, anything else as JSON.
  return typeof value === "string" ? value : JSON.stringify(value) ?? "null";
}

/**
 * Validates a step config and fills in defaults. Every message names the
 * field and the bad value. No daemon is contacted.
 *
 * @throws {TypeError | RangeError} Naming the field and value.
 */
export function validateStepConfig(config: StepConfig): ValidatedStep {
  if (typeof config !== "object" || config === null) {
    throw new TypeError("Cannot run a step without a config object");
  }
  if (typeof config.image !== "string" || config.image.trim() === "") {
    throw new TypeError("Cannot run a step without an image: 'image' is empty");
  }
  try {
    parseReference(config.image);
  } catch (err) {
    throw new TypeError(`Cannot use image '${config.image}': ${errorMessage(err)}`, {
      cause: err,
    });
  }
  if (config.run !== undefined && config.command !== undefined) {
    throw new TypeError("Cannot use both 'run' and 'command': give one of them");
  }
  if (config.run !== undefined && (typeof config.run !== "string" || config.run.includes("\0"))) {
    throw new TypeError("Cannot use 'run': expected a string without NUL");
  }
  if (config.run !== undefined && config.entrypoint !== undefined) {
    throw new TypeError("Cannot use both 'run' and 'entrypoint': 'run' is a shell command");
  }
  validateArgs(config.command, "command");
  validateArgs(config.entrypoint, "entrypoint");
  for (const field of ["runtime", "snapshotter", "platform", "stepName", "namespace"] as const) {
    const value = config[field];
    if (value === undefined) continue;
    if (typeof value !== "string" || value.trim() === "" || /[\0\n\r]/.test(value)) {
      throw new TypeError(
        `Cannot use ${field} ${JSON.stringify(value)}: expected a non-empty string without ` +
          "NUL or line breaks",
      );
    }
  }
  if (config.stepName !== undefined && config.stepName.length > MAX_STEP_NAME) {
    throw new RangeError(
      `Cannot use stepName '${config.stepName.slice(0, 40)}...': ${config.stepName.length} ` +
        `characters, at most ${MAX_STEP_NAME} (it becomes a container label)`,
    );
  }
  if (config.platform !== undefined) {
    try {
      parsePlatform(config.platform);
    } catch (err) {
      throw new TypeError(`Cannot use platform '${config.platform}': ${errorMessage(err)}`, {
        cause: err,
      });
    }
  }
  const network = config.network ?? "none";
  if (network !== "none" && network !== "host") {
    throw new TypeError(`Cannot use network '${network}': expected 'none' or 'host'`);
  }
  const pull = config.pull ?? "if-not-present";
  if (!["if-not-present", "always", "never"].includes(pull)) {
    throw new TypeError(
      `Cannot use pull '${pull}': expected 'if-not-present', 'always' or 'never'`,
    );
  }
  if (config.workingDir !== undefined) validatePath(config.workingDir, "workingDir");
  if (config.volumes !== undefined && !Array.isArray(config.volumes)) {
    throw new TypeError(`Cannot use volumes: expected an array, got ${typeof config.volumes}`);
  }
  for (const [i, v] of (config.volumes ?? []).entries()) {
    validatePath(v?.source, `volumes[${i}].source`);
    validatePath(v?.target, `volumes[${i}].target`);
    const target = v.target.replace(/\/+$/, "") || "/";
    if (target === "/" || SYSTEM_MOUNTS.some((m) => target === m || target.startsWith(`${m}/`))) {
      throw new TypeError(
        `Cannot use volumes[${i}].target '${v.target}': it would cover the container's root or ` +
          "its /proc, /sys or /dev",
      );
    }
  }
  for (const [field, value] of [["env", config.env], ["workflowData", config.workflowData]]) {
    if (
      value !== undefined && (typeof value !== "object" || value === null || Array.isArray(value))
    ) {
      throw new TypeError(
        `Cannot use ${field}: expected an object of NAME: value pairs, got ` +
          `${Array.isArray(value) ? "an array" : value === null ? "null" : typeof value}`,
      );
    }
  }
  const envEntries: string[] = [];
  for (const [key, value] of Object.entries(config.workflowData ?? {})) {
    const upper = key.toUpperCase();
    const text = envValue(value);
    validateEnvEntry(upper, text, "workflowData");
    envEntries.push(`${upper}=${text}`);
  }
  for (const [key, value] of Object.entries(config.env ?? {})) {
    if (typeof value !== "string") {
      throw new TypeError(`Cannot use env.${key}: expected a string value, got ${typeof value}`);
    }
    validateEnvEntry(key, value, "env");
    envEntries.push(`${key}=${value}`);
  }
  if (config.timeoutMs !== undefined && !(config.timeoutMs > 0)) {
    throw new RangeError(`Cannot use timeoutMs ${config.timeoutMs}: expected a positive number`);
  }
  if (
    config.maxOutputBytes !== undefined &&
    !(Number.isSafeInteger(config.maxOutputBytes) && config.maxOutputBytes > 0)
  ) {
    throw new RangeError(
      `Cannot use maxOutputBytes ${config.maxOutputBytes}: expected a positive whole number`,
    );
  }
  for (const [key, value] of Object.entries(config.labels ?? {})) {
    if (key === "" || key.length + String(value).length > 4096) {
      throw new TypeError(
        `Cannot use label '${key}': keys must be non-empty and key + value at most 4096 bytes`,
      );
    }
  }
  return {
    ...config,
    seccompProfile: seccompOf(config.seccomp),
    network,
    pull: pull as PullPolicy,
    runtime: config.runtime ?? DEFAULT_RUNTIME,
    memoryBytes: config.memory === undefined ? undefined : parseMemory(config.memory),
    cpus: config.cpu === undefined ? undefined : parseCpu(config.cpu),
    envEntries,
    inputs: validateInputs(config.inputs),
    collect: validateCollect(config.collect),
  };
}

/** Checks an argv field: an array of strings without NUL. */
export function validateArgs(value: unknown, field: string): void {
  if (value === undefined) return;
  if (!Array.isArray(value) || value.some((a) => typeof a !== "string")) {
    throw new TypeError(`Cannot use '${field}': expected an array of strings`);
  }
  const i = value.findIndex((a) => a.includes("\0"));
  if (i >= 0) throw new TypeError(`Cannot use '${field}': argument ${i} contains NUL`);
}

/** Reads the `seccomp` field: the default profile, none, or a JSON profile from a file. */
function seccompOf(value: unknown): SeccompProfile | "default" | undefined {
  if (value === undefined || value === "default") return "default";
  if (value === "unconfined") return undefined;
  if (typeof value !== "string" || value === "") {
    throw new TypeError(
      `Cannot use seccomp ${JSON.stringify(value)}: expected 'default', 'unconfined' or the ` +
        "path of a JSON profile",
    );
  }
  let profile: Partial<SeccompProfile>;
  try {
    profile = JSON.parse(Deno.readTextFileSync(value));
  } catch (err) {
    throw new TypeError(`Cannot use seccomp '${value}': ${errorMessage(err)}`, { cause: err });
  }
  if (typeof profile?.defaultAction !== "string" || !Array.isArray(profile.syscalls ?? [])) {
    throw new TypeError(
      `Cannot use seccomp '${value}': not a seccomp profile (expected defaultAction and syscalls)`,
    );
  }
  return { architectures: [], syscalls: [], ...profile } as SeccompProfile;
}
