/**
 * Byte array helpers. Private to this package.
 *
 * @module
 */

/** Joins byte arrays into one new array. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * The index of the first `value` byte in `bytes` at or after `from`, else -1: the same as
 * `bytes.indexOf(value, from)`, about twice as fast on long ranges (it tests four bytes at once).
 */
export function indexOfByte(bytes: Uint8Array, value: number, from = 0): number {
  const n = bytes.length;
  if (n - from < 64) return bytes.indexOf(value, from);
  // Bytes up to a 4-byte aligned address, then whole words, then the rest.
  const start = from + ((4 - ((bytes.byteOffset + from) & 3)) & 3);
  for (let i = from; i < start; i++) if (bytes[i] === value) return i;
  const count = (n - start) >>> 2;
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset + start, count);
  const pattern = value * 0x01010101;
  for (let w = 0; w < count; w++) {
    const x = words[w] ^ pattern;
    // Non-zero when some byte of x is zero, i.e. that byte of the word equals value.
    if (((x - 0x01010101) & ~x & 0x80808080) !== 0) {
      const at = start + w * 4;
      for (let i = at; i < at + 4; i++) if (bytes[i] === value) return i;
    }
  }
  for (let i = start + count * 4; i < n; i++) if (bytes[i] === value) return i;
  return -1;
}

/** Formats a byte count: `512 B`, `1.5 KiB`, `12.3 MiB`, `64 MiB` (a whole number without decimals). */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${bytes} B`;
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit]}`;
}
