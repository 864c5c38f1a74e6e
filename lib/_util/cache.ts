/**
 * One small least-recently-used cache bounded by entries and bytes. Private
 * to this package.
 *
 * @module
 */

/** Limits of a {@linkcode LruCache}. */
export interface LruCacheOptions<V> {
  /** At most this many entries. */
  maxEntries: number;
  /** At most this many bytes in all, as `sizeOf` counts them. */
  maxBytes: number;
  /** Values larger than this are not kept. @default {maxBytes} */
  maxEntryBytes?: number;
  /** The size of a value in bytes. */
  sizeOf: (value: V) => number;
}

/** A map that forgets its least recently used entries beyond its limits. */
export class LruCache<K, V> {
  #map = new Map<K, V>();
  #bytes = 0;
  #options: Required<LruCacheOptions<V>>;

  /** Creates an empty cache with these limits. */
  constructor(options: LruCacheOptions<V>) {
    this.#options = { maxEntryBytes: options.maxBytes, ...options };
  }

  /** Entries in the cache now. */
  get size(): number {
    return this.#map.size;
  }

  /** Bytes the entries count for now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The entry for `key` (made the most recently used), or undefined when absent. */
  get(key: K): { value: V } | undefined {
    if (!this.#map.has(key)) return undefined;
    const value = this.#map.get(key) as V;
    this.#map.delete(key);
    this.#map.set(key, value);
    return { value };
  }

  /** Stores `value` under `key` unless it is too large, then trims to the limits. */
  set(key: K, value: V): void {
    const { maxEntries, maxBytes, maxEntryBytes, sizeOf } = this.#options;
    const size = sizeOf(value);
    if (size > maxEntryBytes) return;
    this.delete(key);
    this.#map.set(key, value);
    this.#bytes += size;
    for (const [k, v] of this.#map) {
      if (this.#map.size <= maxEntries && this.#bytes <= maxBytes) break;
      this.#map.delete(k);
      this.#bytes -= sizeOf(v);
    }
  }

  /** Removes the entry for `key`, if any. */
  delete(key: K): void {
    if (!this.#map.has(key)) return;
    this.#bytes -= this.#options.sizeOf(this.#map.get(key) as V);
    this.#map.delete(key);
  }

  /** Removes every entry. */
  clear(): void {
    this.#map.clear();
    this.#bytes = 0;
  }
}
