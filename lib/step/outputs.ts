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

/** Whether a line that starts with `start` can still turn out to declare an output. */
function mayDeclareOutput(start: string): boolean {
  return start.length >= OUTPUT_PREFIX.length
    ? start.startsWith(OUTPUT_PREFIX)
    : OUTPUT_PREFIX.startsWith(start);
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

/**
 * Finds `##wfe[output key=value]` lines in stdout that arrives in pieces, for
 * example while reading a capture file: lines may be split anywhere across
 * chunks, including inside a UTF-8 sequence, and the last line may lack its
 * line break. The result equals {@linkcode parseOutputs} of the whole text.
 *
 * Only a line that can still turn out to be an output line is buffered, so
 * memory stays small however much ordinary output passes through.
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
  #decoder: TextDecoder = new TextDecoder();
  #maxLineLength: number;
  /** The current line so far, while it may still declare an output. */
  #line = "";
  /** The current line cannot declare an output: drop text up to the next `\n`. */
  #skipping = false;
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
  }

  /**
   * Feeds the next piece of stdout. Bytes are decoded as UTF-8 (invalid
   * sequences become U+FFFD, never an error), carrying an incomplete sequence
   * over to the next byte chunk; a string chunk first completes any pending
   * bytes as they are.
   *
   * @param chunk Bytes or text, in the order they were written.
   * @throws {TypeError} When called after {@linkcode OutputParser.finish}.
   */
  push(chunk: Uint8Array | string): void {
    if (this.#finished) throw new TypeError("Cannot push to an OutputParser after finish()");
    const text = typeof chunk === "string"
      ? this.#decoder.decode() + chunk
      : this.#decoder.decode(chunk, { stream: true });
    this.#feed(text);
  }

  /**
   * Ends the input: parses the last line even without a line break.
   *
   * @returns The outputs by name, as {@linkcode parseOutputs} returns them.
   * @throws {TypeError} When called twice.
   */
  finish(): Record<string, string> {
    if (this.#finished) throw new TypeError("Cannot finish an OutputParser twice");
    this.#feed(this.#decoder.decode());
    this.#endLine();
    this.#finished = true;
    return this.#outputs;
  }

  #feed(text: string): void {
    let start = 0;
    for (;;) {
      const nl = text.indexOf("\n", start);
      if (nl < 0) {
        this.#append(text, start, text.length);
        return;
      }
      this.#append(text, start, nl);
      this.#endLine();
      start = nl + 1;
    }
  }

  #append(text: string, from: number, to: number): void {
    if (this.#skipping || from === to) return;
    this.#line += text.slice(from, to);
    if (!mayDeclareOutput(this.#line) || this.#line.length > this.#maxLineLength + 1) {
      // (+ 1: a trailing "\r" is not part of the line's length.)
      this.#line = "";
      this.#skipping = true;
    }
  }

  #endLine(): void {
    if (!this.#skipping && this.#line !== "") {
      const length = this.#line.length - (this.#line.endsWith("\r") ? 1 : 0);
      if (length <= this.#maxLineLength) parseLine(this.#line, this.#outputs);
    }
    this.#line = "";
    this.#skipping = false;
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
