/**
 * Step outputs: `##wfe[output key=value]` lines on a step's stdout, and the
 * output data a step hands back to the workflow (wfe-containerd's shape).
 *
 * The parsing rules are wfe-containerd's `parse_outputs`: a line counts when
 * it starts with `##wfe[output ` and ends with `]`; the text in between is
 * split at its first `=`; the key is trimmed (with Rust's notion of
 * whitespace), the value is kept verbatim, including further `=` and
 * surrounding spaces; anything else is ignored and the last duplicate wins.
 * Lines end at `\n`; one trailing `\r` is dropped, so CRLF output parses too.
 *
 * @module
 */

import { indexOfByte } from "../_util/bytes.ts";

/** What a line must start with to declare an output. */
export const OUTPUT_PREFIX = "##wfe[output ";

/**
 * Whitespace as Rust's `str::trim` sees it (the Unicode `White_Space`
 * property). JavaScript's `trim()` differs: it also strips U+FEFF and keeps
 * U+0085.
 */
const RUST_WHITESPACE = "[\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a" +
  "\\u2028\\u2029\\u202f\\u205f\\u3000]";
const RUST_TRIM = new RegExp(`^${RUST_WHITESPACE}+|${RUST_WHITESPACE}+$`, "g");

/** Creates an object without a prototype, so any key (even `__proto__`) is plain data. */
function emptyRecord<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** Parses one line (without its `\n`) into `into` when it declares an output. */
function parseLine(line: string, into: Record<string, string>): void {
  if (line.endsWith("\r")) line = line.slice(0, -1);
  if (!line.startsWith(OUTPUT_PREFIX) || !line.endsWith("]")) return;
  const rest = line.slice(OUTPUT_PREFIX.length, -1);
  const eq = rest.indexOf("=");
  if (eq < 0) return;
  into[rest.slice(0, eq).replace(RUST_TRIM, "")] = rest.slice(eq + 1);
}

/**
 * Parses the `##wfe[output key=value]` lines of a step's stdout, exactly as
 * wfe-containerd's `parse_outputs` does, and also lines that end in CRLF.
 *
 * @param stdout The step's standard output.
 * @returns The outputs by name, in an object without a prototype (so a key
 *   such as `__proto__` is an ordinary entry); the last of duplicate keys wins.
 * @throws {never} Malformed lines are ignored, never reported.
 *
 * @example
 * ```ts
 * import { parseOutputs } from "@wfe/containerd";
 *
 * const outputs = parseOutputs("building\n##wfe[output url=https://x.test/?a=1]\n");
 * console.log(outputs.url); // "https://x.test/?a=1"
 * ```
 */
export function parseOutputs(stdout: string): Record<string, string> {
  const outputs = emptyRecord<string>();
  let start = 0;
  while (start < stdout.length) {
    let end = stdout.indexOf("\n", start);
    if (end < 0) end = stdout.length;
    // Cheap pre-check: most lines are ordinary log lines.
    if (stdout.startsWith(OUTPUT_PREFIX, start)) parseLine(stdout.slice(start, end), outputs);
    start = end + 1;
  }
  return outputs;
}

/** Options of {@linkcode OutputParser}. */
export interface OutputParserOptions {
  /**
   * Ignore an output line longer than this many characters (UTF-16 code
   * units, without the line break) instead of buffering it, which bounds the
   * parser's memory. Ordinary lines are never buffered, whatever their length.
   * @default {Infinity} (every output line counts, as in `parseOutputs`)
   */
  maxLineLength?: number;
}

const PREFIX_BYTES = new TextEncoder().encode(OUTPUT_PREFIX);
const HASH = 0x23;
const LF = 0x0a;

/**
 * Finds `##wfe[output key=value]` lines in stdout that arrives in pieces, for
 * example while reading a capture file: lines may be split anywhere across
 * chunks, including inside a UTF-8 sequence, and the last line may lack its
 * line break. The result equals {@linkcode parseOutputs} of the whole text.
 *
 * Bytes are scanned, not decoded: only a line that starts with `#` is looked
 * at, and only one that can still turn out to be an output line is buffered
 * and decoded, so ordinary output passes at memory speed in constant memory.
 *
 * @example
 * ```ts
 * import { OutputParser } from "@wfe/containerd/api";
 *
 * const parser = new OutputParser();
 * parser.push(new TextEncoder().encode("##wfe[output ver"));
 * parser.push("sion=1.2.3]\nlog line\n##wfe[output done=yes]");
 * console.log(parser.finish()); // { version: "1.2.3", done: "yes" }
 * ```
 */
export class OutputParser {
  #outputs: Record<string, string> = emptyRecord<string>();
  #maxLineLength: number;
  /** A line of more bytes than this has more than maxLineLength UTF-16 units (+ CR). */
  #maxLineBytes: number;
  /** The next byte starts a line. */
  #atLineStart = true;
  /** The current line's bytes so far, while it may still declare an output. */
  #candidate: Uint8Array[] | undefined;
  #candidateBytes = 0;
  /** A high surrogate that ended the last string chunk (its pair may follow). */
  #highSurrogate = "";
  #finished = false;

  /**
   * Creates a parser.
   *
   * @param options The longest output line to buffer.
   * @throws {RangeError} When `maxLineLength` is negative or not a number.
   */
  constructor(options: OutputParserOptions = {}) {
    const max = options.maxLineLength ?? Infinity;
    if (!(max >= 0)) {
      throw new RangeError(`Cannot use maxLineLength ${max}: expected a number >= 0`);
    }
    this.#maxLineLength = max;
    // UTF-8 takes at most 3 bytes per UTF-16 unit; + 1 for a trailing CR.
    this.#maxLineBytes = 3 * (max + 1);
  }

  /**
   * Feeds the next piece of stdout. Bytes are UTF-8 (invalid sequences
   * become U+FFFD, never an error) and may split a sequence across chunks;
   * a string chunk first completes any pending bytes as they are.
   *
   * @param chunk Bytes or text, in the order they were written. Bytes are
   *   copied when kept, so the caller may reuse the buffer.
   * @throws {TypeError} When called after {@linkcode OutputParser.finish}.
   */
  push(chunk: Uint8Array | string): void {
    if (this.#finished) throw new TypeError("Cannot push to an OutputParser after finish()");
    if (typeof chunk === "string") {
      if (this.#candidate) {
        const bytes = new TextEncoder().encode(this.#decodeCandidate());
        this.#candidate = [bytes];
        this.#candidateBytes = bytes.length;
      }
      const text = this.#highSurrogate + chunk;
      const last = text.charCodeAt(text.length - 1);
      const split = last >= 0xd800 && last <= 0xdbff;
      this.#highSurrogate = split ? text.slice(-1) : "";
      this.#scan(new TextEncoder().encode(split ? text.slice(0, -1) : text));
      return;
    }
    this.#flushSurrogate();
    this.#scan(chunk);
  }

  /**
   * Ends the input: parses the last line even without a line break.
   *
   * @returns The outputs by name, as {@linkcode parseOutputs} returns them.
   * @throws {TypeError} When called twice.
   */
  finish(): Record<string, string> {
    if (this.#finished) throw new TypeError("Cannot finish an OutputParser twice");
    this.#flushSurrogate();
    this.#endLine();
    this.#finished = true;
    return this.#outputs;
  }

  #flushSurrogate(): void {
    if (this.#highSurrogate === "") return;
    this.#highSurrogate = "";
    this.#scan(new TextEncoder().encode("\ud800")); // a lone surrogate: U+FFFD
  }

  #scan(bytes: Uint8Array): void {
    const n = bytes.length;
    let i = 0;
    while (i < n) {
      if (this.#candidate) {
        const nl = indexOfByte(bytes, LF, i);
        this.#extend(bytes.subarray(i, nl < 0 ? n : nl));
        if (nl < 0) {
          this.#atLineStart = false;
          return;
        }
        this.#endLine();
        this.#atLineStart = true;
        i = nl + 1;
        continue;
      }
      if (this.#atLineStart) {
        this.#atLineStart = false;
        if (bytes[i] === HASH) {
          this.#candidate = [];
          continue;
        }
      }
      // The next `#` that starts a line; everything before it is ordinary output.
      let p = indexOfByte(bytes, HASH, i + 1);
      while (p >= 0 && bytes[p - 1] !== LF) p = indexOfByte(bytes, HASH, p + 1);
      if (p < 0) {
        this.#atLineStart = bytes[n - 1] === LF;
        return;
      }
      this.#candidate = [];
      i = p;
    }
  }

  /** Adds bytes to the candidate line, dropping it once it cannot declare an output. */
  #extend(part: Uint8Array): void {
    const at = this.#candidateBytes;
    for (let j = 0; at + j < PREFIX_BYTES.length && j < part.length; j++) {
      if (part[j] !== PREFIX_BYTES[at + j]) {
        this.#candidate = undefined;
        this.#candidateBytes = 0;
        return;
      }
    }
    this.#candidateBytes += part.length;
    if (this.#candidateBytes > this.#maxLineBytes) {
      this.#candidate = undefined;
      this.#candidateBytes = 0;
      return;
    }
    if (part.length > 0) this.#candidate!.push(part.slice());
  }

  #decodeCandidate(): string {
    const parts = this.#candidate ?? [];
    const all = parts.length === 1 ? parts[0] : new Uint8Array(this.#candidateBytes);
    if (parts.length !== 1) {
      let at = 0;
      for (const part of parts) {
        all.set(part, at);
        at += part.length;
      }
    }
    return new TextDecoder().decode(all);
  }

  #endLine(): void {
    if (this.#candidate) {
      const line = this.#decodeCandidate();
      const length = line.length - (line.endsWith("\r") ? 1 : 0);
      if (length <= this.#maxLineLength) parseLine(line, this.#outputs);
    }
    this.#candidate = undefined;
    this.#candidateBytes = 0;
  }
}

/**
 * Builds a step's output data as wfe-containerd's `build_output_data` does:
 * the parsed outputs plus `<step>.stdout`, `<step>.stderr` and
 * `<step>.exit_code` (a number). The three step keys are written last, so
 * they win over a parsed output of the same name.
 *
 * @param stepName The step's name (wfe uses "unknown" for an unnamed step).
 * @param stdout The step's standard output.
 * @param stderr The step's standard error.
 * @param exitCode The exit code (containerd reports 128 + N after signal N).
 * @param parsed Outputs from {@linkcode parseOutputs}; only own enumerable keys count.
 * @returns The output data, in an object without a prototype.
 * @throws {RangeError} When `exitCode` is not an integer.
 *
 * @example
 * ```ts
 * import { buildOutputData, parseOutputs } from "@wfe/containerd/api";
 *
 * const stdout = "##wfe[output result=pass]\n";
 * const data = buildOutputData("test", stdout, "", 0, parseOutputs(stdout));
 * console.log(data["result"], data["test.exit_code"]); // "pass" 0
 * ```
 */
export function buildOutputData(
  stepName: string,
  stdout: string,
  stderr: string,
  exitCode: number,
  parsed: Record<string, string>,
): Record<string, string | number> {
  if (!Number.isInteger(exitCode)) {
    throw new RangeError(
      `Cannot build output data of step '${stepName}' as exit code ${exitCode} is not an integer`,
    );
  }
  const data = emptyRecord<string | number>();
  for (const [key, value] of Object.entries(parsed)) data[key] = value;
  data[`${stepName}.stdout`] = stdout;
  data[`${stepName}.stderr`] = stderr;
  data[`${stepName}.exit_code`] = exitCode;
  return data;
}
