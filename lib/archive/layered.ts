/**
 * Reading files out of a stack of layer tars as they appear in the final root
 * filesystem: OCI whiteouts (`.wh.<name>`, `.wh..wh..opq`), symbolic links
 * (also in parent directories) and hard links followed inside the layers.
 *
 * @module
 */

import { basename, dirname, isUnder, join, normalizePath, withAncestors } from "./_paths.ts";
import { readTar } from "./tar.ts";
import { ContainerdError } from "../grpc/errors.ts";

/** The default cap on the size of one file read by {@linkcode readImageFiles}: 1 MiB. */
export const DEFAULT_MAX_FILE_BYTES: number = 1024 * 1024;

const MAX_SYMLINK_HOPS = 40;
const MAX_PASSES = 8;

// ---------------------------------------------------------------------------------------------
// layers

/** A layer as {@linkcode readLayeredFiles} reads it. */
export interface LayerSource {
  /** Names the layer in error messages, e.g. its digest. */
  name: string;
  /** Opens the layer's uncompressed tar stream (called once per pass over the layers). */
  open(): AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
}

/** Options of {@linkcode readLayeredFiles}. */
export interface ReadLayeredFilesOptions {
  /** Checked between entries; the call rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Refuse files larger than this many bytes.
   * @default {1048576} (1 MiB)
   */
  maxFileBytes?: number;
  /** Names the image in error messages. */
  imageName?: string;
}

type Kind = "absent" | "file" | "symlink" | "dir" | "other";

/** What is known about one watched path while the layers are applied. */
interface Watch {
  /** The first layer that is observed completely for this path. */
  fromLayer: number;
  /** True when the state reflects every layer read so far. */
  known: boolean;
  kind: Kind;
  /** The layer that set the state (-1: none). */
  layer: number;
  data?: Uint8Array;
  size: number;
  sparse: boolean;
  target: string;
}

function newWatch(fromLayer: number): Watch {
  return {
    fromLayer,
    known: fromLayer === 0,
    kind: "absent",
    layer: -1,
    size: 0,
    sparse: false,
    target: "",
  };
}

function setState(w: Watch, layer: number, kind: Kind): void {
  w.known = true;
  w.kind = kind;
  w.layer = layer;
  w.data = undefined;
  w.size = 0;
  w.sparse = false;
  w.target = "";
}

/** A whiteout or opaque directory in `layer` hides what lower layers put at `w`. */
function hideLower(w: Watch, layer: number): void {
  if (w.known) {
    if (w.layer < layer) setState(w, layer, "absent");
  } else if (w.fromLayer <= layer) {
    setState(w, layer, "absent");
  }
}

/** One pass over all layers, tracking the watched paths. */
async function scanLayers(
  layers: readonly LayerSource[],
  watchPaths: Iterable<string>,
  maxFileBytes: number,
  signal: AbortSignal | undefined,
): Promise<Map<string, Watch>> {
  const watches = new Map<string, Watch>();
  for (const p of watchPaths) watches.set(p, newWatch(0));
  const addWatch = (path: string, fromLayer: number) => {
    for (const p of withAncestors(path)) if (!watches.has(p)) watches.set(p, newWatch(fromLayer));
  };
  for (let i = 0; i < layers.length; i++) {
    signal?.throwIfAborted();
    const layer = layers[i];
    try {
      for await (const entry of readTar(layer.open())) {
        signal?.throwIfAborted();
        const path = normalizePath(entry.path);
        if (path === "/") continue;
        const name = basename(path);
        if (name.startsWith(".wh.")) {
          const hidden = name === ".wh..wh..opq" ? undefined : join(dirname(path), name.slice(4));
          for (const [p, w] of watches) {
            if (
              hidden === undefined ? isUnder(p, dirname(path)) : p === hidden || isUnder(p, hidden)
            ) {
              hideLower(w, i);
            }
          }
          continue;
        }
        if (entry.type !== "dir") {
          // A non-directory replaces whatever tree was below its path.
          for (const [p, w] of watches) if (isUnder(p, path)) setState(w, i, "absent");
        }
        const w = watches.get(path);
        if (!w) continue;
        switch (entry.type) {
          case "file":
            setState(w, i, "file");
            w.size = entry.size;
            w.sparse = entry.sparse;
            if (!entry.sparse && entry.size <= maxFileBytes) w.data = await entry.bytes();
            break;
          case "symlink": {
            setState(w, i, "symlink");
            w.target = entry.linkname;
            // Watch the target, and for watched paths below the link, their new place.
            const target = normalizePath(
              entry.linkname.startsWith("/")
                ? entry.linkname
                : `${dirname(path)}/${entry.linkname}`,
            );
            const below = [...watches.keys()].filter((p) => isUnder(p, path));
            addWatch(target, i + 1);
            for (const p of below) addWatch(normalizePath(target + p.slice(path.length)), i + 1);
            break;
          }
          case "dir":
            setState(w, i, "dir");
            break;
          case "hardlink": {
            const targetPath = normalizePath(entry.linkname);
            const t = watches.get(targetPath);
            if (t?.known) {
              setState(w, i, t.kind);
              w.data = t.data;
              w.size = t.size;
              w.sparse = t.sparse;
              w.target = t.target;
            } else {
              // The link names an entry nobody watched: a later pass watches it from the start.
              addWatch(targetPath, i + 1);
              setState(w, i, "absent");
              w.known = false;
            }
            break;
          }
          default:
            setState(w, i, "other");
        }
      }
    } catch (err) {
      throw layerError(layer, err, signal);
    }
  }
  return watches;
}

type Resolution =
  | { found: true; watch?: Watch; path: string }
  | { found: false; watchMore: string[] };

/** Resolves `path` through symbolic links in the watched states, as the kernel would in a chroot. */
function resolveInWatches(
  path: string,
  watches: Map<string, Watch>,
  describe: () => string,
): Resolution {
  let remaining = path.split("/").filter((c) => c !== "");
  let cur = "/";
  let hops = 0;
  while (remaining.length > 0) {
    const component = remaining[0];
    remaining = remaining.slice(1);
    if (component === ".") continue;
    if (component === "..") {
      cur = dirname(cur);
      continue;
    }
    const next = join(cur, component);
    const w = watches.get(next);
    if (!w) return { found: false, watchMore: [next] };
    const last = remaining.length === 0;
    if (!w.known) {
      // An ancestor nobody saw an entry for is an implicit directory when what lies below it
      // is known to exist.
      const below = last ? undefined : watches.get(normalizePath(`${next}/${remaining.join("/")}`));
      if (below?.known && below.kind !== "absent") {
        cur = next;
        continue;
      }
      return { found: false, watchMore: [] };
    }
    switch (w.kind) {
      case "symlink":
        if (++hops > MAX_SYMLINK_HOPS) {
          throw new Error(`Cannot read ${describe()}: too many levels of symbolic links`);
        }
        if (w.target.startsWith("/")) cur = "/";
        remaining = [...w.target.split("/").filter((c) => c !== ""), ...remaining];
        continue;
      case "file":
        if (last) return { found: true, watch: w, path: next };
        return { found: true, path: next }; // a file where a directory is needed
      case "dir":
      case "absent": // a directory without an entry of its own
        if (last) return { found: true, path: next };
        cur = next;
        continue;
      default:
        return { found: true, path: next };
    }
  }
  return { found: true, path: cur };
}

/** The error to throw for a failure while reading a layer: the abort reason, or one naming it. */
export function layerError(layer: LayerSource, err: unknown, signal?: AbortSignal): unknown {
  if (signal?.aborted) return signal.reason;
  if (err instanceof ContainerdError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new Error(`Cannot read layer ${layer.name}: ${message}`, { cause: err });
}

/** The error for a file above the size cap. */
export function tooLarge(
  path: string,
  resolved: string,
  size: number,
  max: number,
  image: string,
): Error {
  const via = resolved === normalizePath(path) ? "" : ` (resolved to ${resolved})`;
  return new RangeError(
    `Cannot read ${path}${via} from image ${image}: its ${size} bytes exceed maxFileBytes ${max}`,
  );
}

/**
 * Reads files as they appear in the root filesystem built from tar layers: layers apply bottom
 * first, `.wh.<name>` entries delete `<name>` (and what is below it) from lower layers,
 * `.wh..wh..opq` hides everything lower layers put in its directory, a non-directory entry
 * replaces a whole tree, symbolic links (in the file or its parent directories) are followed
 * inside the image (absolute targets from the image root, `..` stops at the root) and hard
 * links take the content of the entry they name. When a link leads to a path that was not
 * watched in a lower layer, the layers are read again (at most 8 passes).
 *
 * @param layers The layers, bottom first, each able to open its uncompressed tar stream.
 * @param paths Absolute paths to read, e.g. `/etc/passwd`.
 * @param options Signal, file size cap and the image name for messages.
 * @returns A map from each requested path (as given) to its bytes, or `undefined` when it does
 *   not exist or is not a regular file (a directory, device, dangling link).
 * @throws {RangeError} When a requested file is larger than `maxFileBytes`.
 * @throws {Error} When a layer is not a valid tar archive, a file is sparse (not supported), or
 *   links loop.
 *
 * @example
 * ```ts
 * import { readLayeredFiles } from "@wfe/containerd/api";
 *
 * const tar = await Deno.readFile("layer.tar");
 * const files = await readLayeredFiles([{ name: "layer.tar", open: () => [tar] }], ["/etc/passwd"]);
 * console.log(files.get("/etc/passwd")?.length);
 * ```
 */
export async function readLayeredFiles(
  layers: readonly LayerSource[],
  paths: readonly string[],
  options: ReadLayeredFilesOptions = {},
): Promise<Map<string, Uint8Array | undefined>> {
  const { signal, maxFileBytes = DEFAULT_MAX_FILE_BYTES, imageName = "(layers)" } = options;
  if (!Number.isSafeInteger(maxFileBytes) || maxFileBytes < 0) {
    throw new RangeError(`Cannot use maxFileBytes ${maxFileBytes}: expected an integer >= 0`);
  }
  for (const p of paths) {
    if (typeof p !== "string" || p === "" || p.includes("\0")) {
      throw new TypeError(`Cannot read path '${p}' from image ${imageName}: expected a file path`);
    }
  }
  signal?.throwIfAborted();
  const watchSet = new Set<string>();
  for (const p of paths) for (const a of withAncestors(normalizePath(p))) watchSet.add(a);

  for (let pass = 0; pass < MAX_PASSES; pass++) {
    const watches = await scanLayers(layers, watchSet, maxFileBytes, signal);
    const results = new Map<string, Uint8Array | undefined>();
    let again = false;
    for (const p of paths) {
      const describe = () => `${p} from image ${imageName}`;
      const r = resolveInWatches(normalizePath(p), watches, describe);
      if (!r.found) {
        again = true;
        for (const more of r.watchMore) for (const a of withAncestors(more)) watchSet.add(a);
        continue;
      }
      const w = r.watch;
      if (!w) {
        results.set(p, undefined);
      } else if (w.sparse) {
        throw new Error(`Cannot read ${describe()}: it is a sparse file (not supported)`);
      } else if (w.data === undefined || w.size > maxFileBytes) {
        throw tooLarge(p, r.path, w.size, maxFileBytes, imageName);
      } else {
        results.set(p, w.data);
      }
    }
    if (!again) return results;
    for (const key of watches.keys()) watchSet.add(key); // link targets found on the way
  }
  throw new Error(
    `Cannot read ${paths.join(", ")} from image ${imageName}: links lead through too many ` +
      `passes over the layers`,
  );
}

// ---------------------------------------------------------------------------------------------
// containerd
