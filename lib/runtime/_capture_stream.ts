/**
 * What a capture keeps of one stream as its bytes arrive: the count, the last
 * `max` bytes, the `##wfe[output]` lines (stdout), and complete lines for a
 * callback. Each byte is looked at once, while the task runs.
 *
 * @module
 */

import { concat } from "../_util/bytes.ts";
import type { OutputParser } from "../step/outputs.ts";

/** A line without a line break is delivered in pieces of this many characters. */
const MAX_LINE = 1024 * 1024;

/** The end of a stream, as a capture reports it. */
export interface StreamText {
  text: string;
  bytes: number;
  truncated: boolean;
}

function dropCr(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}

/** Index of the first byte at or after `start` that does not continue a UTF-8 sequence. */
export function utf8Boundary(bytes: Uint8Array, start: number): number {
  let i = start;
  while (i < bytes.length && i < start + 3 && (bytes[i] & 0xc0) === 0x80) i++;
  return i;
}

/** One stream of a capture. */
export class StreamState {
  /** Bytes consumed so far (the file offset to read next). */
  offset = 0;
  /** Deliver complete lines to `onLine` (set while tailing). */
  delivering = false;
  readonly #max: number;
  readonly #parser: OutputParser | undefined;
  readonly #onLine: ((line: string) => void) | undefined;
  readonly #onError: (err: unknown) => void;
  readonly #recycle: (chunk: Uint8Array) => void;
  #chunks: Uint8Array[] = [];
  #kept = 0;
  #decoder = new TextDecoder();
  #line = "";
  #done: { text: StreamText; outputs: Record<string, string> } | undefined;

  /**
   * @param max How many of the last bytes to keep.
   * @param parser Parses output lines (stdout), or none.
   * @param onLine Receives complete lines while delivering.
   * @param onError Receives what `onLine` throws.
   * @param recycle Receives each chunk that is no longer kept (to reuse its memory).
   */
  constructor(
    max: number,
    parser: OutputParser | undefined,
    onLine: ((line: string) => void) | undefined,
    onError: (err: unknown) => void,
    recycle: (chunk: Uint8Array) => void = () => {},
  ) {
    this.#recycle = recycle;
    this.#max = max;
    this.#parser = parser;
    this.#onLine = onLine;
    this.#onError = onError;
  }

  /** Takes the next bytes; `chunk` is kept, so the caller must not reuse its memory. */
  consume(chunk: Uint8Array): void {
    if (chunk.length === 0 || this.#done) return;
    this.offset += chunk.length;
    this.#parser?.push(chunk);
    if (this.#onLine && this.delivering) this.#deliver(chunk);
    if (this.#max === 0) return this.#recycle(chunk);
    this.#chunks.push(chunk);
    this.#kept += chunk.length;
    while (this.#kept - this.#chunks[0].length >= this.#max) {
      const dropped = this.#chunks.shift()!;
      this.#kept -= dropped.length;
      this.#recycle(dropped);
    }
  }

  /** Delivers a last line without a line break. */
  flushLine(): void {
    if (!this.#onLine || !this.delivering) return;
    this.#line += this.#decoder.decode();
    if (this.#line !== "") this.#emit(dropCr(this.#line));
    this.#line = "";
  }

  /** The end of the stream and the outputs found; the first call ends the stream. */
  finish(): { text: StreamText; outputs: Record<string, string> } {
    if (this.#done) return this.#done;
    const chunks = this.#chunks;
    const truncated = this.offset > this.#max;
    if (truncated && chunks.length > 0) {
      // Drop the bytes before the last `max`, then a split UTF-8 sequence.
      const first = chunks[0].subarray(this.#kept - this.#max);
      const joined = first.length >= 3 || chunks.length === 1
        ? first
        : concat([first, ...chunks.splice(1, 1)]);
      chunks[0] = joined.subarray(utf8Boundary(joined, 0));
    }
    const decoder = new TextDecoder();
    let text = "";
    for (const chunk of chunks) text += decoder.decode(chunk, { stream: true });
    text += decoder.decode();
    this.#chunks = [];
    this.#done = {
      text: { text, bytes: this.offset, truncated },
      outputs: this.#parser?.finish() ?? {},
    };
    return this.#done;
  }

  /** Decodes bytes and passes on each complete line. */
  #deliver(chunk: Uint8Array): void {
    const text = this.#decoder.decode(chunk, { stream: true });
    let start = 0;
    for (;;) {
      const nl = text.indexOf("\n", start);
      this.#line += text.slice(start, nl < 0 ? text.length : nl);
      while (this.#line.length > MAX_LINE) {
        this.#emit(this.#line.slice(0, MAX_LINE));
        this.#line = this.#line.slice(MAX_LINE);
      }
      if (nl < 0) return;
      this.#emit(dropCr(this.#line));
      this.#line = "";
      start = nl + 1;
    }
  }

  #emit(line: string): void {
    try {
      this.#onLine!(line);
    } catch (err) {
      this.#onError(err);
    }
  }
}
