/**
 * Following a service's output: its last lines, then each new line as it is
 * written, until the service's task exits or the caller stops.
 *
 * @module
 */

import { delay } from "../_util/async.ts";
import { errorMessage } from "../_util/errors.ts";
import { type ContainerdClient, withClient } from "../grpc/connection.ts";
import { ContainerdError, GrpcCode, isNotFound } from "../grpc/errors.ts";
import { LABELS } from "../labels.ts";
import type { ServiceClientOptions } from "./manage.ts";

/** Options of {@linkcode followServiceLogs}. */
export interface FollowLogsOptions extends ServiceClientOptions {
  /** Start with the last N lines of each stream (all of them when omitted). */
  tail?: number;
  /** Called with each stdout line (without its line break). */
  onStdout: (line: string) => void;
  /** Called with each stderr line (without its line break). */
  onStderr: (line: string) => void;
  /** Stops following. */
  signal?: AbortSignal;
  /** How often the files are read for new output, in milliseconds. @default {100} */
  pollIntervalMs?: number;
}

/** How following ended. */
export interface FollowLogsResult {
  /** The service's exit status when it stopped, undefined when following was aborted. */
  exitStatus?: number;
}

const CHUNK = 64 * 1024;

/** The capture directory of a service (its label). */
export async function serviceCaptureDir(
  client: ContainerdClient,
  containerId: string,
  method: string,
): Promise<string> {
  const { container } = await client.containers.get({ id: containerId });
  const dir = container?.labels[LABELS.ioDir];
  if (!dir) {
    throw new ContainerdError({
      code: GrpcCode.NOT_FOUND,
      method,
      details: `${containerId} has no capture directory label`,
    });
  }
  return dir;
}

/**
 * Prints a service's output as `tail -f` would: the last `tail` lines (or
 * everything), then new lines as they come, until its task exits (the rest
 * is read first) or `signal` aborts. The capture files must be reachable
 * here (the same machine, or a shared `WFE_IO_DIR`).
 *
 * @throws {ContainerdError} NOT_FOUND when there is no such service.
 *
 * @example
 * ```ts
 * import { followServiceLogs } from "@wfe/containerd";
 *
 * const stop = new AbortController();
 * await followServiceLogs(undefined, "svc-web", {
 *   tail: 20,
 *   onStdout: (line) => console.log(line),
 *   onStderr: (line) => console.error(line),
 *   signal: stop.signal,
 * });
 * ```
 */
export async function followServiceLogs(
  addr: string | undefined,
  containerId: string,
  options: FollowLogsOptions,
): Promise<FollowLogsResult> {
  if (options.tail !== undefined && !(Number.isSafeInteger(options.tail) && options.tail >= 0)) {
    throw new RangeError(`Cannot use tail ${options.tail}: expected a whole number >= 0`);
  }
  return await withClient(addr, options, async (client) => {
    const dir = await serviceCaptureDir(client, containerId, "followServiceLogs");
    let exited: { exitStatus: number } | undefined;
    const wait = client.tasks.wait({ containerId }, { signal: options.signal });
    const ended = wait.then((w) => (exited = w), (err) => {
      if (isNotFound(err)) exited = { exitStatus: -1 }; // no task: print what there is
    });
    const open = async (name: string): Promise<Deno.FsFile> => {
      try {
        return await Deno.open(`${dir}/${name}`, { read: true });
      } catch (err) {
        throw new Error(
          `Cannot follow the output of ${containerId}: its capture file ${dir}/${name} is not ` +
            `reachable here (${errorMessage(err)}); follow it on the daemon's machine, or share ` +
            "WFE_IO_DIR with it",
          { cause: err },
        );
      }
    };
    using stdout = await open("stdout");
    using stderr = await open("stderr");
    const streams = [
      new LineReader(stdout, options.onStdout),
      new LineReader(stderr, options.onStderr),
    ];
    for (const s of streams) await s.seekTail(options.tail);
    const interval = options.pollIntervalMs ?? 100;
    while (true) {
      const done = exited !== undefined;
      for (const s of streams) await s.readToEnd();
      if (done || options.signal?.aborted) break;
      await Promise.race([ended, delay(interval, options.signal).catch(() => {})]);
    }
    for (const s of streams) s.flush();
    return { exitStatus: exited && exited.exitStatus >= 0 ? exited.exitStatus : undefined };
  });
}

/** Reads one file from an offset, delivering complete lines. */
class LineReader {
  #file: Deno.FsFile;
  #onLine: (line: string) => void;
  #decoder = new TextDecoder();
  #carry = "";

  constructor(file: Deno.FsFile, onLine: (line: string) => void) {
    this.#file = file;
    this.#onLine = onLine;
  }

  /** Positions the file at the start of its last `lines` lines (at 0 when undefined). */
  async seekTail(lines: number | undefined): Promise<void> {
    if (lines === undefined) return;
    const size = (await this.#file.stat()).size;
    if (lines === 0) {
      await this.#file.seek(size, Deno.SeekMode.Start);
      return;
    }
    let end = size;
    let found = 0;
    let start = 0;
    // Walk back from the end; a final line break does not start a line.
    let skipLast = true;
    search: while (end > 0) {
      const from = Math.max(0, end - CHUNK);
      const buf = new Uint8Array(end - from);
      await this.#file.seek(from, Deno.SeekMode.Start);
      let at = 0;
      while (at < buf.length) {
        const n = await this.#file.read(buf.subarray(at));
        if (n === null) break;
        at += n;
      }
      for (let i = buf.length - 1; i >= 0; i--) {
        if (buf[i] !== 0x0a) continue;
        if (skipLast && from + i === size - 1) continue;
        if (++found >= lines) {
          start = from + i + 1;
          break search;
        }
      }
      skipLast = false;
      end = from;
    }
    await this.#file.seek(start, Deno.SeekMode.Start);
  }

  /** Reads what is there, delivering each complete line. */
  async readToEnd(): Promise<void> {
    const buf = new Uint8Array(CHUNK);
    while (true) {
      const n = await this.#file.read(buf);
      if (n === null || n === 0) return;
      const text = this.#carry + this.#decoder.decode(buf.subarray(0, n), { stream: true });
      const parts = text.split("\n");
      this.#carry = parts.pop()!;
      for (const line of parts) this.#onLine(line.endsWith("\r") ? line.slice(0, -1) : line);
    }
  }

  /** Delivers a last line that has no line break. */
  flush(): void {
    const rest = this.#carry + this.#decoder.decode();
    this.#carry = "";
    if (rest !== "") this.#onLine(rest);
  }
}
