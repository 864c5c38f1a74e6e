/**
 * What every command of the command line shares: global options, the
 * containerd address and namespace they resolve to, output, errors and small
 * parsers for flag values.
 *
 * @module
 */

export { formatBytes } from "../lib/_util/bytes.ts";
import { type Command, InvalidArgumentError } from "@commander-js/extra-typings";
import { isAbsolute, resolve } from "node:path";
import { DEFAULT_ADDRESS } from "../lib/grpc/address.ts";
import { connect, type ContainerdClient } from "../lib/grpc/connection.ts";
import { ContainerdError, GrpcCode } from "../lib/grpc/errors.ts";
import { IO_DIR_ENV } from "../lib/runtime/capture.ts";
import { ServiceError } from "../lib/service/errors.ts";
import { formatDuration, parseDuration } from "../lib/step/duration.ts";

/** The program name in usage lines and examples. */
export const PROGRAM = "wfe-containerd";

/** Exit code for errors of the command line itself (as docker uses it). */
export const EXIT_ERROR = 125;

/** Exit code of `run` when the step ran past its timeout. */
export const EXIT_TIMEOUT = 124;

/** An error that ends the command with one line on stderr and an exit code. */
export class CliError extends Error {
  /** The process exit code. */
  readonly exitCode: number;

  /** Creates the error; `message` is printed as `error: <message>`. */
  constructor(message: string, exitCode: number = EXIT_ERROR, options?: ErrorOptions) {
    super(message, options);
    this.name = "CliError";
    this.exitCode = exitCode;
  }
}

/** The global options, as commander parsed them. */
export interface GlobalOptions {
  /** `--address` */
  address?: string;
  /** `--namespace` */
  namespace?: string;
  /** `--io-dir` */
  ioDir?: string;
  /** `--debug` */
  debug?: boolean;
}

/** Where an address came from. */
export type AddressSource =
  | "--address"
  | "step file"
  | "WFE_CONTAINERD_ADDR"
  | "CONTAINERD_ADDRESS"
  | "system socket"
  | "up"
  | "default";

/** A containerd address and where it came from. */
export interface AddressChoice {
  /** The address, as {@linkcode connect} takes it. */
  address: string;
  /** Where it came from. */
  source: AddressSource;
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

function isSocket(path: string): boolean {
  try {
    return Deno.statSync(path).isSocket === true;
  } catch {
    return false;
  }
}

/** Directory of the daemon that `up` starts (`$WFE_DEV_DIR`, else `/tmp/wfe-containerd-dev`). */
export function devDir(): string {
  return env("WFE_DEV_DIR") ?? "/tmp/wfe-containerd-dev";
}

/** What `up` recorded about its daemon, if it did. */
export function devState(): { address: string; namespace: string } | undefined {
  try {
    const state = JSON.parse(Deno.readTextFileSync(`${devDir()}/state.json`));
    if (typeof state?.address === "string" && typeof state?.namespace === "string") {
      return { address: state.address, namespace: state.namespace };
    }
  } catch {
    // no state: `up` has not run
  }
  return undefined;
}

/**
 * The containerd address to use: `--address`, else `WFE_CONTAINERD_ADDR`,
 * else `CONTAINERD_ADDRESS`, else the system socket when it exists, else the
 * socket of the daemon `up` started, else the system socket (whose absence
 * the connect error then reports).
 *
 * @example
 * ```ts
 * import { chooseAddress } from "./common.ts";
 *
 * chooseAddress(undefined); // { address: "/run/containerd/containerd.sock", source: "system socket" }
 * chooseAddress("tcp://127.0.0.1:2500"); // { address: "tcp://127.0.0.1:2500", source: "--address" }
 * ```
 */
export function chooseAddress(flag: string | undefined): AddressChoice {
  if (flag) return { address: flag, source: "--address" };
  for (const name of ["WFE_CONTAINERD_ADDR", "CONTAINERD_ADDRESS"] as const) {
    const value = env(name);
    if (value) return { address: value, source: name };
  }
  if (isSocket(DEFAULT_ADDRESS)) return { address: DEFAULT_ADDRESS, source: "system socket" };
  const state = devState();
  if (state && isSocket(state.address)) {
    return { address: `unix://${state.address}`, source: "up" };
  }
  return { address: DEFAULT_ADDRESS, source: "default" };
}

const encoder = new TextEncoder();

function writeAll(file: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = encoder.encode(text);
  try {
    while (bytes.length > 0) bytes = bytes.subarray(file.writeSync(bytes));
  } catch (err) {
    // A closed pipe (`| head`) is not worth a crash.
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
  }
}

/** Lines queued by {@linkcode lineWriter}, written together at the end of the current task. */
const queued: { stdout: string[]; stderr: string[] } = { stdout: [], stderr: [] };
let flushScheduled = false;
let queuedChars = 0;
const MAX_QUEUED_CHARS = 64 * 1024;

function flushQueued(): void {
  flushScheduled = false;
  queuedChars = 0;
  for (const name of ["stdout", "stderr"] as const) {
    if (queued[name].length === 0) continue;
    const text = queued[name].join("");
    queued[name] = [];
    writeAll(name === "stdout" ? Deno.stdout : Deno.stderr, text);
  }
}

/**
 * A line callback that batches: the lines of one read go out in one write (a
 * million short lines in a few dozen writes instead of a million), still
 * before anything else is written.
 */
export function lineWriter(stream: "stdout" | "stderr"): (line: string) => void {
  return (line) => {
    queued[stream].push(line, "\n");
    queuedChars += line.length + 1;
    // A big batch goes out at once, so memory stays small however fast lines come.
    if (queuedChars >= MAX_QUEUED_CHARS) return flushQueued();
    if (!flushScheduled) {
      flushScheduled = true;
      queueMicrotask(flushQueued);
    }
  };
}

/** Writes to stdout, synchronously (nothing is lost when the process exits right after). */
export function out(text: string): void {
  flushQueued();
  writeAll(Deno.stdout, text);
}

/** Writes to stderr, synchronously. */
export function err(text: string): void {
  flushQueued();
  writeAll(Deno.stderr, text);
}

/** The state of one invocation: global options, the resolved address and the exit code. */
export class Cli {
  /** The exit code the process ends with. */
  exitCode = 0;
  readonly #program: Command<[], Record<string, unknown>>;

  /** Wraps the root command, whose options are the global ones. */
  constructor(program: Command<[], Record<string, unknown>>) {
    this.#program = program;
  }

  /** The global options. */
  get globals(): GlobalOptions {
    return this.#program.opts() as GlobalOptions;
  }

  /** The address to use; `fromFile` (a step file's `containerd_addr`) ranks below `--address`. */
  address(fromFile?: string): AddressChoice {
    const flag = this.globals.address;
    if (!flag && fromFile) return { address: fromFile, source: "step file" };
    return chooseAddress(flag);
  }

  /** The namespace: `--namespace`, else a step file's, else `CONTAINERD_NAMESPACE`, else `default`. */
  namespace(fromFile?: string): string {
    return this.globals.namespace || fromFile || env("CONTAINERD_NAMESPACE") || "default";
  }

  /** Connects to the chosen address in the chosen namespace, with a hint when nothing runs. */
  async connect(
    options: { address?: string; namespace?: string } = {},
  ): Promise<ContainerdClient> {
    const choice = this.address(options.address);
    try {
      return await connect(choice.address, { namespace: this.namespace(options.namespace) });
    } catch (e) {
      if (
        e instanceof ContainerdError && e.code === GrpcCode.UNAVAILABLE &&
        choice.source === "default"
      ) {
        throw new CliError(
          `no containerd found: ${DEFAULT_ADDRESS} does not exist and \`${PROGRAM} up\` has not ` +
            "started one; start one with `up`, or pass --address (or set WFE_CONTAINERD_ADDR)",
          EXIT_ERROR,
          { cause: e },
        );
      }
      throw e;
    }
  }

  /** Applies `--io-dir`: checks the directory and sets `WFE_IO_DIR` for the library. */
  applyIoDir(): void {
    const dir = this.globals.ioDir;
    if (!dir) return;
    const abs = isAbsolute(dir) ? dir : resolve(dir);
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(abs);
    } catch {
      throw new CliError(`--io-dir ${dir}: no such directory`);
    }
    if (!info.isDirectory) throw new CliError(`--io-dir ${dir}: not a directory`);
    Deno.env.set(IO_DIR_ENV, abs);
  }
}

/**
 * The one line printed for an error (the first line of its message, plus what helps).
 *
 * @example
 * ```ts
 * import { errorLine } from "./common.ts";
 *
 * errorLine(new Error("container exited with code 3\nstdout: ...")); // "container exited with code 3"
 * ```
 */
export function errorLine(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const first = e.message.split("\n")[0];
  if (e instanceof ServiceError) {
    const last = (e.stderrTail.trim() || e.stdoutTail.trim()).split("\n").pop();
    return last ? `${first} (last output: ${last.slice(0, 300)})` : first;
  }
  return first;
}

/** Collects a repeatable option's values. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Parses `KEY=VALUE` (or `KEY` alone, copied from this process's environment when `fromEnv`). */
export function keyValue(text: string, flag: string, fromEnv = false): [string, string] {
  const at = text.indexOf("=");
  if (at > 0) return [text.slice(0, at), text.slice(at + 1)];
  if (at === -1 && fromEnv && text !== "") {
    const value = env(text);
    if (value === undefined) {
      throw new CliError(`${flag} ${text}: ${text} is not set here; write ${text}=VALUE`);
    }
    return [text, value];
  }
  throw new CliError(`${flag} '${text}': expected KEY=VALUE`);
}

/** Parses repeated `KEY=VALUE` flags into a record (later ones win). */
export function keyValues(
  items: string[] | undefined,
  flag: string,
  fromEnv = false,
): Record<string, string> | undefined {
  if (!items || items.length === 0) return undefined;
  return Object.fromEntries(items.map((item) => keyValue(item, flag, fromEnv)));
}

/** commander parser for a duration flag (`30s`, `5m`, ms). */
export function durationArg(value: string): number {
  try {
    return parseDuration(value, "duration");
  } catch (e) {
    throw new InvalidArgumentError(
      (e as Error).message.replace(
        /^Cannot (parse|use) duration '.*?': (.)/,
        (_m, _v, c: string) => c.toUpperCase(),
      ),
    );
  }
}

/** commander parser for a positive whole number. */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n <= 0) {
    throw new InvalidArgumentError("Expected a positive whole number");
  }
  return n;
}

/** commander parser for a TCP port. */
export function portArg(value: string, previous: number[] | undefined): number[] {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > 65535) {
    throw new InvalidArgumentError("Expected a port from 1 to 65535");
  }
  return [...(previous ?? []), n];
}

/** Formats a table: a header row and rows, columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join("   ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}

/** Formats an age in whole seconds (or ms below a second): `250ms`, `42s`, `1h2m3s`. */
export function formatAge(ms: number): string {
  return formatDuration(ms < 1000 ? ms : Math.round(ms / 1000) * 1000);
}

/** Formats an "examples" help block: a heading and indented lines. */
export function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => (l === "" ? "" : `  ${l}`)).join("\n")}\n`;
}

/**
 * Aborts the returned signal on SIGINT / SIGTERM, saying `what` happens next
 * (a second signal exits at once, 130 / 143).
 */
export function interruptible(what: string): {
  signal: AbortSignal;
  received: () => Deno.Signal | undefined;
  done(): void;
} {
  const controller = new AbortController();
  let received: Deno.Signal | undefined;
  const listeners = (["SIGINT", "SIGTERM"] as const).map((sig) => {
    const fn = () => {
      if (received) Deno.exit(sig === "SIGINT" ? 130 : 143);
      received = sig;
      err(`${PROGRAM}: ${sig}: ${what}\n`);
      controller.abort(new CliError(`interrupted by ${sig}`, sig === "SIGINT" ? 130 : 143));
    };
    Deno.addSignalListener(sig, fn);
    return [sig, fn] as const;
  });
  return {
    signal: controller.signal,
    received: () => received,
    done: () => listeners.forEach(([sig, fn]) => Deno.removeSignalListener(sig, fn)),
  };
}
