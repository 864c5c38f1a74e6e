/**
 * Durations as people write them on command lines and in step files:
 * `250ms`, `30s`, `5m`, `1h`, `1h30m`, `2d`, or a plain number of
 * milliseconds.
 *
 * @module
 */

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const PART = /(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h|d)/y;

function invalid(field: string, value: unknown): TypeError {
  return new TypeError(
    `Cannot parse ${field} '${String(value)}': expected milliseconds (e.g. 1500) or a duration ` +
      "such as 250ms, 30s, 5m, 1h or 1h30m",
  );
}

/**
 * Parses a duration into milliseconds: a plain number of milliseconds
 * (`1500`, `"1500"`), or one or more parts of a number and a unit (`ms`, `s`,
 * `m`, `h`, `d`) written together, e.g. `"250ms"`, `"30s"`, `"1.5s"`,
 * `"5m"`, `"1h30m"`. Fractions of a millisecond are rounded.
 *
 * @param value The duration as written.
 * @param field What the value is, for error messages (e.g. `"--timeout"`).
 * @returns The duration in whole milliseconds (0 or more).
 * @throws {TypeError} When the text is not a duration; the message names the
 *   field and value and shows the accepted forms.
 * @throws {RangeError} When the value is negative or too large.
 *
 * @example
 * ```ts
 * import { parseDuration } from "@wfe/containerd";
 *
 * parseDuration("5m"); // 300000
 * parseDuration("1h30m"); // 5400000
 * parseDuration("250ms"); // 250
 * parseDuration(1500); // 1500
 * ```
 */
export function parseDuration(value: string | number, field = "duration"): number {
  let ms: number;
  if (typeof value === "number") {
    if (Number.isNaN(value)) throw invalid(field, value);
    ms = value;
  } else if (typeof value === "string") {
    const text = value.trim().toLowerCase();
    if (text.startsWith("-")) {
      throw new RangeError(`Cannot use ${field} '${value}': a duration cannot be negative`);
    }
    if (/^\d+(\.\d+)?$/.test(text)) {
      ms = Number(text);
    } else {
      if (text === "") throw invalid(field, value);
      ms = 0;
      PART.lastIndex = 0;
      while (PART.lastIndex < text.length) {
        const at = PART.lastIndex;
        const m = PART.exec(text);
        if (!m || m.index !== at) throw invalid(field, value);
        ms += Number(m[1]) * UNIT_MS[m[2]];
      }
    }
  } else {
    throw invalid(field, value);
  }
  if (ms < 0) throw new RangeError(`Cannot use ${field} '${value}': a duration cannot be negative`);
  const rounded = Math.round(ms);
  if (!Number.isSafeInteger(rounded)) {
    throw new RangeError(`Cannot use ${field} '${value}': the duration is too large`);
  }
  return rounded;
}

/**
 * Formats milliseconds compactly for people: `250ms`, `1.5s`, `42s`,
 * `5m`, `1h2m3s`, `2d3h`. The inverse of {@linkcode parseDuration} up to
 * rounding (below a minute, seconds keep one decimal; above, whole seconds).
 *
 * @param ms A duration in milliseconds (negative values are shown as 0ms).
 * @returns The duration as text.
 *
 * @example
 * ```ts
 * import { formatDuration } from "@wfe/containerd";
 *
 * formatDuration(250); // "250ms"
 * formatDuration(90_000); // "1m30s"
 * formatDuration(3_723_000); // "1h2m3s"
 * ```
 */
export function formatDuration(ms: number): string {
  if (!(ms > 0)) return "0ms";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) {
    const s = Math.round(ms / 100) / 10;
    return s >= 60 ? "1m" : `${s}s`;
  }
  let rest = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [["d", 86_400], ["h", 3600], ["m", 60], ["s", 1]] as const) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0) parts.push(`${n}${unit}`);
  }
  return parts.join("");
}
