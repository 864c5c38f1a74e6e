import { statfs } from "node:fs/promises";
import type { Capture, CapturedOutput, CaptureOptions, CaptureStream } from "./capture.ts";
import { OutputParser } from "../step/outputs.ts";
import { StreamState, utf8Boundary } from "./_capture_stream.ts";

/** Less free space than this on the capture dir's filesystem counts as full. */
const MIN_FREE_BYTES = 64 * 1024;

/** Read size for files. */
const CHUNK_BYTES = 256 * 1024;
/** At most this much is read from one stream before the other gets its turn. */
const MAX_BYTES_PER_TURN = 4 * 1024 * 1024;
/** After a small read, the pause before the next one, in ms. */
const COALESCE_MS = 5;
/** Output lines up to this long always parse, even with a smaller `maxOutputBytes`. */
const MIN_OUTPUT_LINE = 64 * 1024;

/** A file's identity: device and inode. */
function identity(info: Deno.FileInfo): string {
  return `${info.dev}:${info.ino}`;
}

/**
 * The {@linkcode Capture} of two regular files. While tailing, both files are
 * read to their end on every wake-up: a change seen by inotify, or the poll
 * timer (the fallback for shared mounts whose remote writes inotify misses).
 * Each byte is read once: the kept tail, the outputs and the lines all come
 * from that one pass.
 */
export class FileCapture implements Capture {
  readonly dir: string;
  readonly stdoutPath: string;
  readonly stderrPath: string;
  readonly shared: boolean;
  #pollIntervalMs: number;
  #streams: [StreamState, StreamState];
  #tailing = false;
  #removed = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #watcher: Deno.FsWatcher | undefined;
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
    this.#pollIntervalMs = pollIntervalMs;
    const keep = (err: unknown) => void (this.#error ??= { value: err });
    const parser = new OutputParser({ maxLineLength: Math.max(maxOutputBytes, MIN_OUTPUT_LINE) });
    this.#streams = [
      new StreamState(maxOutputBytes, parser, options.onStdout, keep),
      new StreamState(maxOutputBytes, undefined, options.onStderr, keep),
    ];
  }

  startTailing(): void {
    if (this.#removed) throw new Error(`Cannot tail ${this.dir} as it was removed`);
    if (this.#tailing) return;
    this.#tailing = true;
    for (const stream of this.#streams) stream.delivering = true;
    this.#loop = this.#run();
  }

  async stopTailing(): Promise<void> {
    if (!this.#tailing) return;
    await this.#halt();
    await this.#drain().catch((err) => void (this.#error ??= { value: err }));
    for (const stream of this.#streams) stream.flushLine();
    const error = this.#error;
    this.#error = undefined;
    if (error) throw error.value;
  }

  async read(): Promise<CapturedOutput> {
    if (this.#tailing) await this.#halt();
    await this.#drain();
    const out = this.#streams[0].finish();
    const err = this.#streams[1].finish();
    return {
      stdout: out.text.text,
      stderr: err.text.text,
      stdoutBytes: out.text.bytes,
      stderrBytes: err.text.bytes,
      stdoutTruncated: out.text.truncated,
      stderrTruncated: err.text.truncated,
      outputs: out.outputs,
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

  /** Stops tailing and waits for a read in progress. */
  async #halt(): Promise<void> {
    this.#tailing = false;
    this.#wake?.();
    this.#unwatch();
    await this.#loop;
    this.#loop = undefined;
  }

  /**
   * Reads both files while tailing: right away after new bytes, else at a change or the timer.
   * inotify is watched only while idle (every write of a busy step would otherwise wake this
   * process once); a watch is dropped at its first event.
   */
  async #run(): Promise<void> {
    while (this.#tailing) {
      let got = await this.#readBoth();
      if (got >= CHUNK_BYTES || !this.#tailing) continue; // a busy writer: keep reading
      if (got > 0) {
        // A trickle: delivered at once, then a pause lets a burst gather into fewer reads.
        await new Promise((resolve) => setTimeout(resolve, COALESCE_MS));
        continue;
      }
      const watcher = this.#watch();
      // Bytes written between the last read and the watch raise no event: read once more.
      got = await this.#readBoth();
      if (got === 0 && this.#tailing) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => resolve(), this.#pollIntervalMs);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
          watcher?.[Symbol.asyncIterator]().next().then(() => this.#wake?.(), () => {});
        });
        this.#wake = undefined;
      }
      this.#unwatch();
    }
  }

  async #readBoth(): Promise<number> {
    try {
      return await this.#readFrom(this.#files[0], 0, MAX_BYTES_PER_TURN) +
        await this.#readFrom(this.#files[1], 1, MAX_BYTES_PER_TURN);
    } catch (err) {
      this.#error ??= { value: err };
      return 0;
    }
  }

  /** Starts watching the capture dir with inotify; undefined where that is not available. */
  #watch(): Deno.FsWatcher | undefined {
    try {
      return this.#watcher = Deno.watchFs(this.dir, { recursive: false });
    } catch {
      return undefined; // the poll timer alone
    }
  }

  #unwatch(): void {
    try {
      this.#watcher?.close();
    } catch { /* closed */ }
    this.#watcher = undefined;
  }

  /**
   * Reads what is left of both files through their paths (checked to be the
   * files created for the task; a fresh open also sees the last writes under
   * NFS's close-to-open consistency).
   *
   * @throws The first error; the other stream is still read.
   */
  async #drain(): Promise<void> {
    let error: { value: unknown } | undefined;
    for (const index of [0, 1] as const) {
      try {
        using file = await this.#open(index);
        await this.#readFrom(file, index, Infinity);
      } catch (err) {
        error ??= { value: err };
      }
    }
    if (error) throw error.value;
  }

  /** Reads a stream from its offset to the end (at most `limit` bytes); returns the count. */
  async #readFrom(file: Deno.FsFile, index: 0 | 1, limit: number): Promise<number> {
    const stream = this.#streams[index];
    await file.seek(stream.offset, Deno.SeekMode.Start);
    let got = 0;
    while (got < limit) {
      // Straight into the stream's own buffer: no allocation, no copy.
      const n = await file.read(stream.space());
      if (n === null || n === 0) break;
      got += n;
      stream.commit(n);
    }
    return got;
  }
}
