/**
 * A fast path for reading a few regular files out of a stack of layers: the
 * layers are read from the top down, and reading stops at the first point
 * where every file is decided (found as a regular file, or whited out), so a
 * base layer is read only up to its `/etc` entries and lower layers not at all.
 *
 * It handles the common case only: when a requested file or one of its parent
 * directories is anything but a regular file or a directory (a link, a
 * whiteout or opaque marker of a parent, a sparse file, a file over the size
 * cap), it gives up and returns `undefined`, and the caller uses
 * {@linkcode readLayeredFiles}, which handles all of that bottom up. Like a
 * tar extraction, a later entry of a path in the same layer would replace an
 * earlier one; this fast path takes the first, as no image builder writes a
 * path twice into one layer.
 *
 * @module
 */

import { basename, dirname, join, normalizePath, withAncestors } from "./_paths.ts";
import { DEFAULT_MAX_FILE_BYTES, layerError, type LayerSource } from "./layered.ts";
import { readTar } from "./tar.ts";

/** Options of {@linkcode readFilesTopDown}. */
export interface ReadFilesTopDownOptions {
  /** Checked between entries; the call rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Give up (return `undefined`) on a file larger than this many bytes.
   * @default {1048576} (1 MiB)
   */
  maxFileBytes?: number;
}

/**
 * Reads regular files from layers, top layer first, stopping as soon as each
 * file is decided.
 *
 * @param layers The layers, bottom first (as in the manifest).
 * @param paths Absolute paths of the files.
 * @param options Signal and size cap.
 * @returns Each path (as given) to its bytes or `undefined` when absent, or
 *   `undefined` as a whole when the layers need the full reader.
 * @throws {Error} When a layer is not a valid tar archive.
 */
export async function readFilesTopDown(
  layers: readonly LayerSource[],
  paths: readonly string[],
  options: ReadFilesTopDownOptions = {},
): Promise<Map<string, Uint8Array | undefined> | undefined> {
  const { signal, maxFileBytes = DEFAULT_MAX_FILE_BYTES } = options;
  const targets = new Set(paths.map(normalizePath));
  const parents = new Set<string>(["/"]);
  for (const t of targets) for (const a of withAncestors(dirname(t))) parents.add(a);
  for (const t of targets) if (parents.has(t)) return undefined; // a file below another
  const decided = new Map<string, Uint8Array | undefined>();
  for (let i = layers.length - 1; i >= 0 && decided.size < targets.size; i--) {
    signal?.throwIfAborted();
    try {
      for await (const entry of readTar(layers[i].open())) {
        signal?.throwIfAborted();
        const path = normalizePath(entry.path);
        const name = basename(path);
        if (name.startsWith(".wh.")) {
          if (name === ".wh..wh..opq") {
            if (parents.has(dirname(path))) return undefined;
            continue;
          }
          const hidden = join(dirname(path), name.slice(4));
          if (parents.has(hidden)) return undefined;
          if (targets.has(hidden) && !decided.has(hidden)) decided.set(hidden, undefined);
        } else if (parents.has(path)) {
          if (entry.type !== "dir") return undefined;
        } else if (targets.has(path) && !decided.has(path)) {
          if (entry.type !== "file" || entry.sparse || entry.size > maxFileBytes) return undefined;
          decided.set(path, await entry.bytes());
        }
        if (decided.size === targets.size) break; // stops reading this layer's stream
      }
    } catch (err) {
      throw layerError(layers[i], err, signal);
    }
  }
  return new Map(paths.map((p) => [p, decided.get(normalizePath(p))]));
}
