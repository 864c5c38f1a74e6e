/**
 * Capture files for a task's stdout and stderr.
 *
 * containerd's shim opens a plain stdio path as a named pipe when it is one
 * and otherwise as a regular file with `O_WRONLY|O_APPEND`, without
 * `O_CREAT`: the files must exist before `Tasks.Create`. Regular files (not
 * FIFOs) also work when the daemon runs elsewhere and sees the directory
 * through a shared mount (`WFE_IO_DIR`, e.g. virtiofs into a Lima VM).
 * Tailing therefore polls instead of relying on inotify, which such mounts do
 * not support, and reopens the files on every poll, which also gives fresh
 * data under NFS's close-to-open consistency.
 *
 * @module
 */

import { readEnv } from "./address.ts";
import { isIdentifier, MAX_IDENTIFIER_LENGTH } from "./identifiers.ts";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { OutputParser } from "./outputs.ts";

/** Environment variable naming a directory for capture files shared with the daemon. */
export const IO_DIR_ENV = "WFE_IO_DIR";

/** Default of {@linkcode CaptureOptions.maxOutputBytes}: 16 MiB per stream. */
export const DEFAULT_MAX_OUTPUT_BYTES: number = 16 * 1024 * 1024;

/** Default of {@linkcode CaptureOptions.pollIntervalMs}: 100 ms. */
export const DEFAULT_POLL_INTERVAL_MS: number = 100;

/** containerd's identifier rule (identifiers/validate.go). */

/** Read size for files. */
const CHUNK_BYTES = 256 * 1024;
/** At most this much is read per stream per poll, so one busy stream cannot starve the other. */
const MAX_BYTES_PER_POLL = 4 * 1024 * 1024;
/** A tailed line without a line break is delivered in pieces of this many characters. */
const MAX_TAILED_LINE = 1024 * 1024;
/** Output lines up to this long always parse, even with a smaller `maxOutputBytes`. */
const MIN_OUTPUT_LINE = 64 * 1024;

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
   * The directory is shared with a daemon that may write as another user: the
   * capture directory is made mode 0777 and the files 0666 instead of 0700 and
   * 0600.
   * @default {true when WFE_IO_DIR is set}
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
   * How often tailing looks for new output, in milliseconds.
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
  /** The capture directory, `<base>/wfe-io-<containerId>` (absolute). */
  readonly dir: string;
  /** The file for the task's stdout, `<dir>/stdout`. */
  readonly stdoutPath: string;
  /** The file for the task's stderr, `<dir>/stderr`. */
  readonly stderrPath: string;
  /** The files are writable by any user (modes 0777/0666), for a daemon on another host. */
  readonly shared: boolean;
  /**
   * Starts delivering new lines to `onStdout` and `onStderr`, polling the
   * files every `pollIntervalMs`. Does nothing when already tailing.
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
   * Reads both files once, in a bounded amount of memory.
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
   * Stops tailing (without the final delivery) and deletes the directory; a
   * second call does nothing.
   *
   * @returns When the directory is gone.
   */
  remove(): Promise<void>;
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
 * import { ioBaseDir } from "@wfe/containerd";
 *
 * console.log(ioBaseDir()); // "/tmp" unless WFE_IO_DIR or TMPDIR say otherwise
 * ```
 */
export function ioBaseDir(): string {
  return ioDirFromEnv() ?? systemTempDir();
}

/**
 * Creates `<base>/wfe-io-<containerId>/` with empty `stdout` and `stderr`
 * files for a task. The directory must not exist yet, so two steps never
 * share capture files. Modes are set with chmod, whatever the umask: 0700 and
 * 0600 for a local directory, 0777 and 0666 for a shared one (a daemon on
 * another host may write as another user).
 *
 * @param containerId The container's ID (a containerd identifier).
 * @param options Base directory, sharing, line callbacks, output bound, poll interval.
 * @returns The capture; remove it with `remove()` or `await using`.
 * @throws {TypeError} When `containerId` is not a valid containerd
 *   identifier, or `ioDir` is empty.
 * @throws {RangeError} When `maxOutputBytes` or `pollIntervalMs` is out of range.
 * @throws {Deno.errors.AlreadyExists} When the capture directory exists.
 * @throws {Deno.errors.NotFound} When the base directory does not exist.
 *
 * @example
 * ```ts
 * import { createCapture } from "@wfe/containerd";
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
  const shared = options.shared ?? envDir !== undefined;
  const dirMode = shared ? 0o777 : 0o700;
  const fileMode = shared ? 0o666 : 0o600;

  const dir = join(base, `wfe-io-${containerId}`);
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
  const stdoutPath = join(dir, "stdout");
  const stderrPath = join(dir, "stderr");
  try {
    await Deno.chmod(dir, dirMode);
    for (const path of [stdoutPath, stderrPath]) {
      const file = await Deno.open(path, { write: true, createNew: true, mode: fileMode });
      file.close();
      await Deno.chmod(path, fileMode);
    }
  } catch (err) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  }
  return new FileCapture(
    dir,
    stdoutPath,
    stderrPath,
    shared,
    options,
    maxOutputBytes,
    pollIntervalMs,
  );
}

/** Tailing state of one file. */
interface Tail {
  path: string;
  onLine: ((line: string) => void) | undefined;
  offset: number;
  decoder: TextDecoder;
  /** The current line so far (no line break seen yet). */
  line: string;
}

function dropCr(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}

/** Index of the first byte at or after `start` that does not continue a UTF-8 sequence. */
function utf8Boundary(bytes: Uint8Array, start: number): number {
  let i = start;
  while (i < bytes.length && i < start + 3 && (bytes[i] & 0xc0) === 0x80) i++;
  return i;
}

/** Keeps the last `max` bytes of a file, counting all of them. */
async function readBounded(
  path: string,
  max: number,
  onChunk?: (chunk: Uint8Array) => void,
): Promise<{ text: string; bytes: number; truncated: boolean }> {
  using file = await Deno.open(path, { read: true });
  const chunks: Uint8Array[] = [];
  let kept = 0;
  let total = 0;
  for (;;) {
    const buffer = new Uint8Array(CHUNK_BYTES);
    const n = await file.read(buffer);
    if (n === null) break;
    const chunk = buffer.subarray(0, n);
    total += n;
    onChunk?.(chunk);
    if (max === 0) continue;
    chunks.push(chunk);
    kept += n;
    while (kept - chunks[0].length >= max) kept -= chunks.shift()!.length;
  }
  const truncated = total > max;
  if (truncated && chunks.length > 0) {
    // Drop the bytes before the last `max`, then a split UTF-8 sequence.
    const first = chunks[0].subarray(kept - max);
    const joined = first.length >= 3 || chunks.length === 1
      ? first
      : concat([first, ...chunks.splice(1, 1)]);
    chunks[0] = joined.subarray(utf8Boundary(joined, 0));
  }
  const decoder = new TextDecoder();
  let text = "";
  for (const chunk of chunks) text += decoder.decode(chunk, { stream: true });
  text += decoder.decode();
  return { text, bytes: total, truncated };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

class FileCapture implements Capture {
  readonly dir: string;
  readonly stdoutPath: string;
  readonly stderrPath: string;
  readonly shared: boolean;
  #maxOutputBytes: number;
  #pollIntervalMs: number;
  #tails: Tail[];
  #tailing = false;
  #removed = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #polling: Promise<void> | undefined;
  #error: { value: unknown } | undefined;

  constructor(
    dir: string,
    stdoutPath: string,
    stderrPath: string,
    shared: boolean,
    options: CaptureOptions,
    maxOutputBytes: number,
    pollIntervalMs: number,
  ) {
    this.dir = dir;
    this.stdoutPath = stdoutPath;
    this.stderrPath = stderrPath;
    this.shared = shared;
    this.#maxOutputBytes = maxOutputBytes;
    this.#pollIntervalMs = pollIntervalMs;
    const tail = (path: string, onLine?: (line: string) => void): Tail => ({
      path,
      onLine,
      offset: 0,
      decoder: new TextDecoder(),
      line: "",
    });
    this.#tails = [tail(stdoutPath, options.onStdout), tail(stderrPath, options.onStderr)];
  }

  startTailing(): void {
    if (this.#removed) throw new Error(`Cannot tail ${this.dir} as it was removed`);
    if (this.#tailing) return;
    this.#tailing = true;
    this.#schedule();
  }

  async stopTailing(): Promise<void> {
    if (!this.#tailing) return;
    await this.#halt();
    for (const tail of this.#tails) {
      if (!tail.onLine) continue;
      await this.#readNew(tail, true);
      this.#deliver(tail, tail.decoder.decode());
      if (tail.line !== "") this.#emit(tail, dropCr(tail.line));
      tail.line = "";
    }
    const error = this.#error;
    this.#error = undefined;
    if (error) throw error.value;
  }

  async read(): Promise<CapturedOutput> {
    const max = this.#maxOutputBytes;
    const parser = new OutputParser({ maxLineLength: Math.max(max, MIN_OUTPUT_LINE) });
    const [out, err] = await Promise.all([
      readBounded(this.stdoutPath, max, (chunk) => parser.push(chunk)),
      readBounded(this.stderrPath, max),
    ]);
    return {
      stdout: out.text,
      stderr: err.text,
      stdoutBytes: out.bytes,
      stderrBytes: err.bytes,
      stdoutTruncated: out.truncated,
      stderrTruncated: err.truncated,
      outputs: parser.finish(),
    };
  }

  async tail(stream: CaptureStream, maxBytes: number): Promise<string> {
    if (stream !== "stdout" && stream !== "stderr") {
      throw new TypeError(`Cannot tail stream '${stream}': expected "stdout" or "stderr"`);
    }
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
      throw new RangeError(`Cannot tail ${maxBytes} bytes of ${stream}: expected an integer >= 0`);
    }
    using file = await Deno.open(stream === "stdout" ? this.stdoutPath : this.stderrPath);
    const { size } = await file.stat();
    const start = Math.max(0, size - maxBytes);
    await file.seek(start, Deno.SeekMode.Start);
    const buffer = new Uint8Array(size - start);
    let filled = 0;
    while (filled < buffer.length) {
      const n = await file.read(buffer.subarray(filled));
      if (n === null) break;
      filled += n;
    }
    const bytes = buffer.subarray(start > 0 ? utf8Boundary(buffer, 0) : 0, filled);
    return new TextDecoder().decode(bytes);
  }

  async remove(): Promise<void> {
    this.#removed = true;
    await this.#halt();
    try {
      await Deno.remove(this.dir, { recursive: true });
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.remove();
  }

  /** Stops the timer and waits for a poll in progress. */
  async #halt(): Promise<void> {
    this.#tailing = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#polling;
  }

  #schedule(): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#polling = this.#poll().finally(() => {
        this.#polling = undefined;
        if (this.#tailing) this.#schedule();
      });
    }, this.#pollIntervalMs);
  }

  /** One poll of both files; never rejects (errors are kept for stopTailing). */
  async #poll(): Promise<void> {
    for (const tail of this.#tails) {
      if (!tail.onLine || !this.#tailing) continue;
      await this.#readNew(tail, false);
    }
  }

  /** Reads new bytes of a tailed file and delivers complete lines; keeps errors. */
  async #readNew(tail: Tail, toEnd: boolean): Promise<void> {
    try {
      using file = await Deno.open(tail.path, { read: true });
      const { size } = await file.stat();
      // Up to the size seen now, so a writer that keeps writing cannot keep us here.
      const end = toEnd ? size : Math.min(size, tail.offset + MAX_BYTES_PER_POLL);
      if (end <= tail.offset) return;
      await file.seek(tail.offset, Deno.SeekMode.Start);
      const buffer = new Uint8Array(Math.min(CHUNK_BYTES, end - tail.offset));
      while (tail.offset < end) {
        const n = await file.read(buffer.subarray(0, Math.min(buffer.length, end - tail.offset)));
        if (n === null) break;
        tail.offset += n;
        this.#deliver(tail, tail.decoder.decode(buffer.subarray(0, n), { stream: true }));
      }
    } catch (err) {
      this.#error ??= { value: err };
    }
  }

  /** Splits decoded text into lines; a line over MAX_TAILED_LINE goes out in pieces. */
  #deliver(tail: Tail, text: string): void {
    let start = 0;
    for (;;) {
      const nl = text.indexOf("\n", start);
      tail.line += text.slice(start, nl < 0 ? text.length : nl);
      while (tail.line.length > MAX_TAILED_LINE) {
        this.#emit(tail, tail.line.slice(0, MAX_TAILED_LINE));
        tail.line = tail.line.slice(MAX_TAILED_LINE);
      }
      if (nl < 0) return;
      this.#emit(tail, dropCr(tail.line));
      tail.line = "";
      start = nl + 1;
    }
  }

  #emit(tail: Tail, line: string): void {
    try {
      tail.onLine?.(line);
    } catch (err) {
      this.#error ??= { value: err };
    }
  }
}
