/**
 * What a capture keeps of one stream as its bytes arrive: the count, the last
 * `max` bytes, the `##wfe[output]` lines (stdout), and complete lines for a
 * callback. Each byte is looked at once, while the task runs.
 *
 * @module
 */

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

/** The first size of a stream's buffer; it doubles as output arrives, up to its capacity. */
const FIRST_BYTES = 64 * 1024;
/** The least capacity, so that reads stay large even when little output is kept. */
const MIN_CAPACITY = 256 * 1024;

/**
 * One stream of a capture. Its bytes are read straight into one buffer that
 * grows (by doubling) to hold the last `max` bytes and then wraps around, so
 * reading allocates nothing per read and the kept tail is decoded once, from
 * one piece of memory, at the end.
 */
export class StreamState {
  /** Bytes taken so far (the file offset to read next). */
  offset = 0;
  /** Deliver complete lines to `onLine` (set while tailing). */
  delivering = false;
  readonly #max: number;
  readonly #capacity: number;
  readonly #parser: OutputParser | undefined;
  readonly #onLine: ((line: string) => void) | undefined;
  readonly #onError: (err: unknown) => void;
  #buffer = new Uint8Array(FIRST_BYTES);
  /** Bytes held (before wrapping), or the write position (after). */
  #at = 0;
  #wrapped = false;
  #decoder = new TextDecoder();
  #line = "";
  #done: { text: StreamText; outputs: Record<string, string> } | undefined;

  /**
   * @param max How many of the last bytes to keep.
   * @param parser Parses output lines (stdout), or none.
   * @param onLine Receives complete lines while delivering.
   * @param onError Receives what `onLine` throws.
   */
  constructor(
    max: number,
    parser: OutputParser | undefined,
    onLine: ((line: string) => void) | undefined,
    onError: (err: unknown) => void,
  ) {
    this.#max = max;
    this.#capacity = Math.max(max, MIN_CAPACITY);
    this.#buffer = new Uint8Array(Math.min(FIRST_BYTES, this.#capacity));
    this.#parser = parser;
    this.#onLine = onLine;
    this.#onError = onError;
  }

  /** Where the next read should land (never empty). */
  space(): Uint8Array {
    if (!this.#wrapped && this.#at === this.#buffer.length) {
      if (this.#buffer.length < this.#capacity) {
        const bigger = new Uint8Array(Math.min(this.#buffer.length * 2, this.#capacity));
        bigger.set(this.#buffer);
        this.#buffer = bigger;
      } else {
        this.#wrapped = true;
        this.#at = 0;
      }
    }
    return this.#buffer.subarray(this.#at);
  }

  /** Takes the `n` bytes just read into {@linkcode StreamState.space}. */
  commit(n: number): void {
    if (n <= 0 || this.#done) return;
    const chunk = this.#buffer.subarray(this.#at, this.#at + n);
    this.offset += n;
    this.#parser?.push(chunk);
    if (this.#onLine && this.delivering) this.#deliver(chunk);
    this.#at += n;
    if (this.#wrapped && this.#at === this.#buffer.length) this.#at = 0;
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
    let held: Uint8Array;
    if (this.#wrapped) {
      // Oldest byte first, in place (a copy of at most half the buffer).
      const buf = this.#buffer;
      const at = this.#at;
      if (at <= buf.length / 2) {
        const head = buf.slice(0, at);
        buf.copyWithin(0, at);
        buf.set(head, buf.length - at);
      } else {
        const tail = buf.slice(at);
        buf.copyWithin(buf.length - at, 0, at);
        buf.set(tail, 0);
      }
      held = buf;
    } else {
      held = this.#buffer.subarray(0, this.#at);
    }
    const truncated = this.offset > this.#max;
    let kept = held.subarray(Math.max(0, held.length - this.#max));
    // A cut tail starts at a character, not inside a UTF-8 sequence.
    if (truncated) kept = kept.subarray(utf8Boundary(kept, 0));
    const text = new TextDecoder().decode(kept);
    this.#buffer = new Uint8Array(0);
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
