import { statfs } from "node:fs/promises";
import { concat } from "../_util/bytes.ts";
import type { Capture, CapturedOutput, CaptureOptions, CaptureStream } from "./capture.ts";
import { OutputParser } from "../step/outputs.ts";

/** Less free space than this on the capture dir's filesystem counts as full. */
const MIN_FREE_BYTES = 64 * 1024;

/** Read size for files. */
const CHUNK_BYTES = 256 * 1024;
/** At most this much is read per stream per poll, so one busy stream cannot starve the other. */
const MAX_BYTES_PER_POLL = 4 * 1024 * 1024;
/** A tailed line without a line break is delivered in pieces of this many characters. */
const MAX_TAILED_LINE = 1024 * 1024;
/** Output lines up to this long always parse, even with a smaller `maxOutputBytes`. */
const MIN_OUTPUT_LINE = 64 * 1024;

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
  file: Deno.FsFile,
  max: number,
  onChunk?: (chunk: Uint8Array) => void,
): Promise<{ text: string; bytes: number; truncated: boolean }> {
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

/** A file's identity: device and inode. */
function identity(info: Deno.FileInfo): string {
  return `${info.dev}:${info.ino}`;
}

/** The {@linkcode Capture} of two regular files, tailed by polling. */
export class FileCapture implements Capture {
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
  /** The files created for the task, kept open: their identity, and whether they still exist. */
  #files: [Deno.FsFile, Deno.FsFile];
  #ids: [string, string];

  constructor(
    dir: string,
    stdoutPath: string,
    stderrPath: string,
    shared: boolean,
    options: CaptureOptions,
    maxOutputBytes: number,
    pollIntervalMs: number,
    files: [Deno.FsFile, Deno.FsFile],
  ) {
    this.#files = files;
    this.#ids = files.map((f) => identity(f.statSync())) as [string, string];
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
    using stdout = await this.#open(0);
    using stderr = await this.#open(1);
    const [out, err] = await Promise.all([
      readBounded(stdout, max, (chunk) => parser.push(chunk)),
      readBounded(stderr, max),
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
    using file = await this.#open(stream === "stdout" ? 0 : 1);
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
    for (const file of this.#files) {
      try {
        file.close();
      } catch { /* closed */ }
    }
    try {
      await Deno.remove(this.dir, { recursive: true });
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.remove();
  }

  /**
   * Says whether the capture files are still there and still the files
   * created for the task.
   *
   * @returns `undefined` when they are, else an error naming the file and what happened.
   */
  async check(): Promise<Error | undefined> {
    // A full filesystem: the shim's writes fail and the step would block on its pipe.
    try {
      const fs = await statfs(this.dir);
      if (fs.bfree * fs.bsize < MIN_FREE_BYTES) {
        return new Error(
          `the IO directory holding ${this.dir} is full (${fs.bfree * fs.bsize} bytes free on ` +
            "its filesystem): the step's output cannot be written",
        );
      }
    } catch { /* unknown: the checks below still run */ }
    for (const [i, path] of [this.stdoutPath, this.stderrPath].entries()) {
      const info = await this.#files[i].stat();
      if (info.nlink === 0) {
        return new Deno.errors.NotFound(
          `the capture file ${path} was deleted (with the capture directory ${this.dir}?) ` +
            "while the step ran",
        );
      }
      try {
        (await this.#open(i)).close();
      } catch (err) {
        return err as Error;
      }
    }
    return undefined;
  }

  /**
   * Opens a capture file by path for reading (fresh data on NFS), checking
   * that the path still names the regular file created for the task.
   */
  async #open(index: number): Promise<Deno.FsFile> {
    const path = index === 0 ? this.stdoutPath : this.stderrPath;
    const file = await Deno.open(path, { read: true });
    const info = await file.stat();
    if (!info.isFile || identity(info) !== this.#ids[index]) {
      file.close();
      throw new Error(
        `the capture file ${path} was replaced: it is no longer the file created for the step`,
      );
    }
    return file;
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
      using file = await this.#open(tail.path === this.stdoutPath ? 0 : 1);
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
