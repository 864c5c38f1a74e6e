/**
 * Bind mounts (`SRC:DST[:ro]`) and inputs (`SRC:TARGET[:MODE]`) as written on
 * command lines and in step files.
 * Apart from the YAML parser, so that the CLI loads that only for `--file`.
 *
 * @module
 */

import type { BindMount } from "../oci/spec.ts";
import type { Input } from "../runtime/inputs.ts";
import type { CollectSpec } from "../runtime/collect.ts";

/**
 * Parses a bind mount written as `SRC:DST`, `SRC:DST:ro` or `SRC:DST:rw`
 * (both paths absolute; checked later by {@linkcode validateStepConfig}).
 *
 * @param spec The volume as written.
 * @param field What the value is, for error messages.
 * @returns The bind mount.
 * @throws {TypeError} When the text has not two or three parts or the mode is unknown.
 *
 * @example
 * ```ts
 * import { parseVolume } from "@wfe/containerd";
 *
 * parseVolume("/srv/cache:/cache:ro"); // { source: "/srv/cache", target: "/cache", readonly: true }
 * ```
 */
export function parseVolume(spec: string, field = "volume"): BindMount {
  const parts = spec.split(":");
  if (parts.length < 2 || parts.length > 3 || parts[0] === "" || parts[1] === "") {
    throw new TypeError(
      `Cannot parse ${field} '${spec}': expected SRC:DST or SRC:DST:ro (absolute paths)`,
    );
  }
  const mode = parts[2];
  if (mode !== undefined && mode !== "ro" && mode !== "rw") {
    throw new TypeError(`Cannot parse ${field} '${spec}': mode '${mode}' is not 'ro' or 'rw'`);
  }
  return { source: parts[0], target: parts[1], readonly: mode === "ro" };
}

/**
 * Parses permission bits written in octal (`"0640"`, `"640"`, `"0o640"`).
 *
 * @throws {TypeError} When the text is not 1 to 4 octal digits.
 */
export function parseOctalMode(text: string, field = "mode"): number {
  const m = /^(?:0o)?([0-7]{1,4})$/i.exec(text.trim());
  if (!m) {
    throw new TypeError(
      `Cannot parse ${field} '${text}': expected octal permission bits, e.g. 0640`,
    );
  }
  return parseInt(m[1], 8);
}

/**
 * Parses an input written as `SRC:TARGET` or `SRC:TARGET:MODE` (MODE in
 * octal, for regular files); a relative SRC is taken from `baseDir`.
 *
 * @param spec The input as written.
 * @param field What the value is, for error messages.
 * @param baseDir Where relative sources are.
 * @returns The input (checked later by {@linkcode validateStepConfig}).
 * @throws {TypeError} When the text has not two or three parts or MODE is not octal.
 *
 * @example
 * ```ts
 * import { parseInput } from "@wfe/containerd";
 *
 * parseInput("/srv/app.conf:/etc/app.conf:0640"); // { source: ..., target: ..., mode: 0o640 }
 * ```
 */
export function parseInput(spec: string, field = "input", baseDir?: string): Input {
  const parts = spec.split(":");
  if (parts.length < 2 || parts.length > 3 || parts[0] === "" || parts[1] === "") {
    throw new TypeError(
      `Cannot parse ${field} '${spec}': expected SRC:TARGET or SRC:TARGET:MODE (e.g. 0640)`,
    );
  }
  const input: Input = { source: resolveSource(parts[0], baseDir), target: parts[1] };
  if (parts[2] !== undefined) input.mode = parseOctalMode(parts[2], `${field} mode`);
  return input;
}

/** A source path made absolute against `baseDir` (as given when there is none). */
export function resolveSource(path: string, baseDir?: string): string {
  if (path.startsWith("/") || baseDir === undefined) return path;
  return `${baseDir.replace(/\/+$/, "")}/${path.replace(/^\.\//, "")}`;
}

/**
 * Parses a collect item written as `PATH:DEST` (PATH in the container, DEST
 * on this side; a relative DEST is taken from `baseDir`).
 *
 * @throws {TypeError} When the text is not two non-empty parts.
 *
 * @example
 * ```ts
 * import { parseCollect } from "@wfe/containerd";
 *
 * parseCollect("/out:/tmp/out"); // { path: "/out", to: "/tmp/out" }
 * ```
 */
export function parseCollect(spec: string, field = "collect", baseDir?: string): CollectSpec {
  const i = spec.indexOf(":");
  if (i <= 0 || i === spec.length - 1) {
    throw new TypeError(`Cannot parse ${field} '${spec}': expected PATH:DEST`);
  }
  return { path: spec.slice(0, i), to: resolveSource(spec.slice(i + 1), baseDir) };
}
