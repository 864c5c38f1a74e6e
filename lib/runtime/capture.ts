/**
 * Capture files for a task's stdout and stderr.
 *
 * containerd's shim opens a plain stdio path as a named pipe when it is one
 * and otherwise as a regular file with `O_WRONLY|O_APPEND`, without
 * `O_CREAT`: the files must exist before `Tasks.Create`. Regular files (not
 * FIFOs) also work when the daemon runs elsewhere and sees the directory
 * through a shared mount (`WFE_IO_DIR`, e.g. virtiofs into a Lima VM).
 * Tailing reads both files to their end whenever inotify reports a change and
 * at least every `pollIntervalMs` (the fallback for shared mounts, where
 * inotify misses remote writes); the last read reopens the files, which gives
 * fresh data under NFS's close-to-open consistency. Every byte is read once,
 * while the task runs: the kept tail, the outputs and the lines come from
 * that one pass, so nothing is re-read after the task exits.
 *
 * @module
 */

import { readEnv } from "../_util/env.ts";
import { isIdentifier, MAX_IDENTIFIER_LENGTH } from "../_util/identifiers.ts";
import { FileCapture } from "./_capture_file.ts";
import { type CaptureOwner, OWNER_FILE } from "./owner.ts";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";

/** Environment variable naming a directory for capture files shared with the daemon. */
export const IO_DIR_ENV = "WFE_IO_DIR";

/** Environment variable that opts in to permissive capture modes (`1`): see `CaptureOptions.shared`. */
export const IO_PERMISSIVE_ENV = "WFE_IO_PERMISSIVE";

/** Default of {@linkcode CaptureOptions.maxOutputBytes}: 16 MiB per stream. */
export const DEFAULT_MAX_OUTPUT_BYTES: number = 16 * 1024 * 1024;

/** Default of {@linkcode CaptureOptions.pollIntervalMs}: 100 ms. */
export const DEFAULT_POLL_INTERVAL_MS: number = 100;

/** Which captured stream. */
export type CaptureStream = "stdout" | "stderr";

/** Options of {@linkcode createCapture}. */
export interface CaptureOptions {
  /**
   * Directory to create the capture directory in. It must exist.
   * @default {ioBaseDir()} (`WFE_IO_DIR`, else the system temp dir)
   */
  ioDir?: string;
  /**
   * Permissive modes, an explicit opt-in for a daemon whose shim cannot write
   * files that only their owner may write (e.g. an NFS export that squashes
   * root): the capture directory becomes 01777 (sticky: no one else can
   * delete or rename the files) and the files 0666, so any local user can
   * read the output and append to it. Without it the directory is 0700 and
   * the files 0600 in every mode, shared `WFE_IO_DIR` included (a root shim,
   * and Lima's virtiofs, write them fine).
   * @default {true when WFE_IO_PERMISSIVE=1, else false}
   */
  shared?: boolean;
  /**
   * Called once per complete stdout line while tailing, without the line
   * break and one trailing CR. A line over 1 Mi characters arrives in pieces.
   */
  onStdout?: (line: string) => void;
  /**
   * Called once per complete stderr line while tailing, without the line
   * break and one trailing CR. A line over 1 Mi characters arrives in pieces.
   */
  onStderr?: (line: string) => void;
  /**
   * How many bytes of each stream {@linkcode Capture.read} keeps: the last
   * ones, as the end of the output usually explains a failure. It also bounds
   * one `##wfe[output]` line (but never below 64 Ki characters): a longer
   * output line is ignored rather than buffered.
   * @default {16777216} (16 MiB)
   */
  maxOutputBytes?: number;
  /**
   * The daemon and namespace the capture belongs to, written to
   * `<dir>/owner` so that prune on another daemon sharing the IO dir leaves
   * it alone.
   */
  owner?: CaptureOwner;
  /**
   * How often tailing looks for new output when inotify reports nothing
   * (shared mounts), in milliseconds.
   * @default {100}
   */
  pollIntervalMs?: number;
}

/** What {@linkcode Capture.read} returns. */
export interface CapturedOutput {
  /** Standard output: all of it, or its last `maxOutputBytes` bytes when truncated. */
  stdout: string;
  /** Standard error: all of it, or its last `maxOutputBytes` bytes when truncated. */
  stderr: string;
  /** Size of the whole stdout file in bytes. */
  stdoutBytes: number;
  /** Size of the whole stderr file in bytes. */
  stderrBytes: number;
  /** `stdout` holds only the end of the output. */
  stdoutTruncated: boolean;
  /** `stderr` holds only the end of the output. */
  stderrTruncated: boolean;
  /** `##wfe[output key=value]` lines of the WHOLE stdout file, also when truncated. */
  outputs: Record<string, string>;
}

/**
 * A task's capture directory with its `stdout` and `stderr` files. Pass
 * {@linkcode Capture.stdoutPath} and {@linkcode Capture.stderrPath} as the
 * task's stdout and stderr; read them after `Tasks.Delete` (the shim drains
 * the output then). `await using` removes the directory.
 */
export interface Capture extends AsyncDisposable {
  /** The capture directory, `<base>/wfe-io-<containerId>.<16 random hex>` (absolute). */
  readonly dir: string;
  /** The file for the task's stdout, `<dir>/stdout`. */
  readonly stdoutPath: string;
  /** The file for the task's stderr, `<dir>/stderr`. */
  readonly stderrPath: string;
  /** The permissive opt-in is on (modes 01777/0666 instead of 0700/0600). */
  readonly shared: boolean;
  /**
   * Starts reading both files as they grow (keeping the tail and the outputs
   * for {@linkcode Capture.read}) and delivering new lines to `onStdout` and
   * `onStderr`, at each change inotify reports and at least every
   * `pollIntervalMs`. Does nothing when already tailing.
   *
   * @throws {Error} When the capture directory was removed.
   */
  startTailing(): void;
  /**
   * Stops tailing: reads what is left, delivers a last line without a line
   * break, and stops the timer. Does nothing when not tailing.
   *
   * @returns When everything written so far was delivered.
   * @throws {Error} The first error of a callback or of reading a file while
   *   tailing (the other lines are still delivered).
   */
  stopTailing(): Promise<void>;
  /**
   * Reads what was not read yet of both files (all of them when not tailing)
   * and ends the capture's reading, in a bounded amount of memory; later
   * calls return the same result.
   *
   * @returns The output, truncated to its last `maxOutputBytes` bytes per
   *   stream (cut at a UTF-8 boundary), sizes, and the outputs of all of stdout.
   * @throws {Deno.errors.NotFound} When the directory was removed.
   */
  read(): Promise<CapturedOutput>;
  /**
   * Reads only the end of one stream, e.g. for an error message.
   *
   * @param stream `"stdout"` or `"stderr"`.
   * @param maxBytes The most bytes to read from the end.
   * @returns The text, starting at a UTF-8 boundary.
   * @throws {TypeError} When `stream` is not `"stdout"` or `"stderr"`.
   * @throws {RangeError} When `maxBytes` is not an integer >= 0.
   */
  tail(stream: CaptureStream, maxBytes: number): Promise<string>;
  /**
   * Checks that both files are still there and are the files created for
   * the task (not deleted, not replaced through their paths), and that their
   * filesystem is not full.
   *
   * @returns `undefined` when they are, else an error naming the file and what happened.
   */
  check(): Promise<Error | undefined>;
  /**
   * Stops tailing (without the final delivery) and deletes the directory; a
   * second call does nothing.
   *
   * @returns When the directory is gone.
   */
  remove(): Promise<void>;
}

/**
 * The name of a capture directory: `wfe-io-<container id>.<16 random hex>`.
 * The random part keeps other users from creating it first in a shared IO
 * dir (a service's id is its name, so predictable).
 */
export function captureDirName(containerId: string): string {
  const random = Array.from(
    crypto.getRandomValues(new Uint8Array(8)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  return `wfe-io-${containerId}.${random}`;
}

/**
 * The container id a capture directory name belongs to (`wfe-io-<id>.<hex>`,
 * or `wfe-io-<id>` as older versions named them), else `undefined`.
 */
export function captureDirContainerId(name: string): string | undefined {
  const m = /^wfe-io-(.+?)(\.[0-9a-f]{16})?$/.exec(name);
  return m ? m[1] : undefined;
}

/** Whether a path is a capture directory of `containerId` (by its last component). */
export function isCaptureDirOf(path: string, containerId: string): boolean {
  return captureDirContainerId(path.slice(path.lastIndexOf("/") + 1)) === containerId;
}

/** Reads `WFE_IO_DIR`; unset, empty or not permitted counts as unset. */
function ioDirFromEnv(): string | undefined {
  return readEnv(IO_DIR_ENV);
}

/** The system temp dir (`TMPDIR`, ...), or `/tmp` when the environment cannot be read. */
function systemTempDir(): string {
  try {
    return tmpdir();
  } catch {
    return "/tmp";
  }
}

/**
 * Returns the directory capture directories are created in: `WFE_IO_DIR` when
 * set (a directory the daemon sees at the same path, e.g. a shared mount),
 * else the system temp dir. An empty or unreadable variable counts as unset.
 *
 * @returns A directory path.
 * @throws {never} Lacking permission to read the environment is not an error.
 *
 * @example
 * ```ts
 * import { ioBaseDir } from "@wfe/containerd/api";
 *
 * console.log(ioBaseDir()); // "/tmp" unless WFE_IO_DIR or TMPDIR say otherwise
 * ```
 */
export function ioBaseDir(): string {
  return ioDirFromEnv() ?? systemTempDir();
}

/**
 * Creates `<base>/wfe-io-<containerId>.<16 random hex>/` with empty `stdout`
 * and `stderr` files for a task. The directory is created exclusively (the
 * random part keeps other users from creating it first), and the files are created exclusively (never through
 * a symlink). Modes: 0700 and 0600, also in a shared `WFE_IO_DIR`; 01777 and
 * 0666 only with the permissive opt-in (`shared`, `WFE_IO_PERMISSIVE=1`). The
 * capture keeps both files open: reads check that the path still names the
 * file created here, and a removed file is noticed.
 *
 * @param containerId The container's ID (a containerd identifier).
 * @param options Base directory, sharing, line callbacks, output bound, poll interval.
 * @returns The capture; remove it with `remove()` or `await using`.
 * @throws {TypeError} When `containerId` is not a valid containerd
 *   identifier, or `ioDir` is empty.
 * @throws {RangeError} When `maxOutputBytes` or `pollIntervalMs` is out of range.
 * @throws {Deno.errors.AlreadyExists} When the capture directory exists.
 * @throws {Deno.errors.NotFound} When the base directory does not exist.
 * @throws {TypeError} When the base directory is writable by all users
 *   without the sticky bit.
 *
 * @example
 * ```ts
 * import { createCapture } from "@wfe/containerd/api";
 *
 * await using capture = await createCapture("wfe-build-1", {
 *   onStdout: (line) => console.log(`[build] ${line}`),
 * });
 * capture.startTailing();
 * // ... Tasks.Create with capture.stdoutPath / capture.stderrPath, run, Tasks.Delete ...
 * await capture.stopTailing();
 * const { stdout, outputs } = await capture.read();
 * console.log(stdout.length, outputs);
 * ```
 */
export async function createCapture(
  containerId: string,
  options: CaptureOptions = {},
): Promise<Capture> {
  if (!isIdentifier(containerId)) {
    throw new TypeError(
      `Cannot create capture files for container ID '${String(containerId)}': expected ` +
        `[A-Za-z0-9]+([._-][A-Za-z0-9]+)* of at most ${MAX_IDENTIFIER_LENGTH} characters`,
    );
  }
  const maxOutputBytes = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  if (!Number.isSafeInteger(maxOutputBytes) || maxOutputBytes < 0) {
    throw new RangeError(`Cannot use maxOutputBytes ${maxOutputBytes}: expected an integer >= 0`);
  }
  const pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  if (!(pollIntervalMs > 0) || !Number.isFinite(pollIntervalMs)) {
    throw new RangeError(`Cannot use pollIntervalMs ${pollIntervalMs}: expected a number > 0`);
  }
  if (options.ioDir === "") {
    throw new TypeError("Cannot create capture files in ioDir '': expected a directory path");
  }
  const envDir = ioDirFromEnv();
  let base = options.ioDir ?? envDir ?? systemTempDir();
  // The daemon gets these paths as they are: make them absolute.
  if (!isAbsolute(base)) base = resolve(base);
  const shared = options.shared ?? readEnv(IO_PERMISSIVE_ENV) === "1";
  await assertSafeBase(base);
  const dirMode = 0o700; // opened up to 01777 after the files exist, when permissive
  const fileMode = shared ? 0o666 : 0o600;

  const dir = join(base, captureDirName(containerId));
  const stdoutPath = join(dir, "stdout");
  const stderrPath = join(dir, "stderr");
  const files: Deno.FsFile[] = [];
  // Modes come from mkdir/open (never chmod by path); the umask is lifted only
  // for the permissive opt-in, whose modes it would otherwise narrow.
  const umask = shared ? Deno.umask(0) : undefined;
  try {
    try {
      await Deno.mkdir(dir, { mode: dirMode });
    } catch (err) {
      if (err instanceof Deno.errors.AlreadyExists) {
        throw new Deno.errors.AlreadyExists(
          `Cannot create capture directory '${dir}' as it already exists: container ID ` +
            `'${containerId}' may be in use by another step`,
          { cause: err },
        );
      }
      if (err instanceof Deno.errors.NotFound) {
        throw new Deno.errors.NotFound(
          `Cannot create capture directory '${dir}' as the IO directory '${base}' does not exist`,
          { cause: err },
        );
      }
      throw err;
    }
    try {
      for (const path of [stdoutPath, stderrPath]) {
        // createNew is O_CREAT|O_EXCL: never an existing file, never through a symlink.
        files.push(
          await Deno.open(path, { read: true, write: true, createNew: true, mode: fileMode }),
        );
      }
      if (options.owner?.daemon) {
        const owner = await Deno.open(join(dir, OWNER_FILE), {
          write: true,
          createNew: true,
          mode: 0o644,
        });
        await owner.write(new TextEncoder().encode(JSON.stringify(options.owner) + "\n"));
        owner.close();
      }
      // Only now, with the files in place, is the directory opened up (the
      // base dir is safe: no one else can rename it between these calls).
      if (shared) await Deno.chmod(dir, 0o1777);
    } catch (err) {
      for (const file of files) file.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw err;
    }
  } finally {
    if (umask !== undefined) Deno.umask(umask);
  }
  return new FileCapture(
    dir,
    stdoutPath,
    stderrPath,
    shared,
    options,
    maxOutputBytes,
    pollIntervalMs,
    files as [Deno.FsFile, Deno.FsFile],
  );
}

/**
 * Refuses an IO base directory that any user may write without the sticky
 * bit: there another user could rename our capture directory away and put
 * their own in its place between our calls.
 */
async function assertSafeBase(base: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(base);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(`Cannot use IO directory '${base}': it does not exist`, {
        cause: err,
      });
    }
    throw err;
  }
  if (!info.isDirectory) {
    throw new TypeError(`Cannot use IO directory '${base}': it is not a directory`);
  }
  const mode = info.mode ?? 0;
  if ((mode & 0o002) !== 0 && (mode & 0o1000) === 0) {
    throw new TypeError(
      `Cannot use IO directory '${base}': any user may write to it and it has no sticky bit, ` +
        "so capture files there could be replaced; use a directory only you can write to, " +
        "or set its sticky bit (chmod +t)",
    );
  }
}
