/**
 * Bind mounts as written on command lines and in step files (`SRC:DST[:ro]`).
 * Apart from the YAML parser, so that the CLI loads that only for `--file`.
 *
 * @module
 */

import type { BindMount } from "../oci/spec.ts";

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
