/**
 * Resource limits of steps and services: memory sizes with units and CPU
 * cores, parsed with messages that name the field and value.
 *
 * @module
 */

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1024,
  ki: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  ti: 1024 ** 4,
  tib: 1024 ** 4,
};

/** The smallest memory limit accepted: runc refuses less than 6 MiB. */
export const MIN_MEMORY_BYTES: number = 6 * 1024 * 1024;

/**
 * Parses a memory size: a number of bytes, or a number with a unit
 * (`k`, `m`, `g`, `t`, optionally followed by `b`, `i` or `ib`; binary multiples).
 *
 * @throws {TypeError} When the value has no number or an unknown unit.
 * @throws {RangeError} When it is below 6 MiB or not a whole number of bytes.
 *
 * @example
 * ```ts
 * import { parseMemory } from "@wfe/containerd/api";
 *
 * parseMemory("512m"); // 536870912
 * ```
 */
export function parseMemory(value: string | number, field = "memory"): number {
  let bytes: number;
  if (typeof value === "number") {
    bytes = value;
  } else {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
    const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
    if (!m || unit === undefined) {
      throw new TypeError(
        `Cannot parse ${field} as '${value}' is not a size: expected bytes or a number with ` +
          "k, m, g or t (e.g. '512m', '1g')",
      );
    }
    bytes = Math.floor(Number(m[1]) * unit);
  }
  if (!Number.isSafeInteger(bytes)) {
    throw new RangeError(`Cannot use ${field} ${value}: expected a whole number of bytes`);
  }
  if (bytes < MIN_MEMORY_BYTES) {
    throw new RangeError(
      `Cannot use ${field} '${value}': ${bytes} bytes is below the minimum of 6 MiB runc accepts`,
    );
  }
  return bytes;
}

/**
 * Parses a CPU limit in cores (`"1.5"`, `2`, `"0.25"`).
 *
 * @throws {RangeError} When it is not a positive number of at most 1024 cores,
 *   or below 0.01 (a quota under 1 ms per period).
 */
export function parseCpu(value: string | number, field = "cpu"): number {
  const text = String(value).trim();
  const cpus = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(cpus) || cpus < 0.01 || cpus > 1024) {
    throw new RangeError(
      `Cannot use ${field} '${value}': expected a number of cores from 0.01 to 1024, e.g. '1.5'`,
    );
  }
  return cpus;
}
