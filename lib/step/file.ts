/**
 * YAML step files with wfe's snake_case keys, turned into a
 * {@linkcode StepConfig}. Every problem is reported with the file, line and
 * column it comes from; an unknown key is an error, so a typo never silently
 * drops a setting.
 *
 * ```yaml
 * image: alpine:3.18
 * step_name: build
 * run: echo "##wfe[output version=$VERSION]"
 * env:
 *   VERSION: 1.2.3
 * inputs:
 *   - ./src:/work/src
 *   - { source: ./app.conf, target: /etc/app.conf, mode: "0640", uid: 0 }
 * collect:
 *   - /work/dist:./dist
 * volumes:
 *   - /srv/cache:/cache:ro
 *   - { source: /srv/out, target: /out }
 * timeout: 5m
 * ```
 *
 * @module
 */

import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import { parseVolume } from "./volume.ts";
import { argsOf, collectOf, inputOf, volumeOf } from "./_file_items.ts";

export { parseVolume };
import type { StepConfig } from "./config.ts";
import { parseDuration } from "./duration.ts";
import { StepFileError, suggest, toJS } from "./_file_support.ts";

/** The keys a step file may use (wfe's names), with what each becomes in {@linkcode StepConfig}. */
export const STEP_FILE_KEYS: Readonly<Record<string, keyof StepConfig>> = {
  image: "image",
  run: "run",
  command: "command",
  entrypoint: "entrypoint",
  inputs: "inputs",
  collect: "collect",
  env: "env",
  volumes: "volumes",
  working_dir: "workingDir",
  user: "user",
  network: "network",
  memory: "memory",
  cpu: "cpu",
  pull: "pull",
  containerd_addr: "containerdAddr",
  namespace: "namespace",
  timeout: "timeoutMs",
  max_output_bytes: "maxOutputBytes",
  platform: "platform",
  runtime: "runtime",
  snapshotter: "snapshotter",
  seccomp: "seccomp",
  labels: "labels",
  step_name: "stepName",
  name: "stepName",
};

/** The largest step file read or parsed: 1 MiB. */
export const MAX_STEP_FILE_BYTES: number = 1024 * 1024;

export { StepFileError } from "./_file_support.ts";

/** Options of {@linkcode parseStepFile}. */
export interface ParseStepFileOptions {
  /**
   * The file name used in error messages.
   * @default {"step file"}
   */
  source?: string;
  /** Where relative `inputs` sources are; as given (the working directory) when omitted. */
  baseDir?: string;
}

/**
 * Parses a YAML step file with wfe's snake_case keys (`image`, `run`,
 * `command`, `entrypoint`, `inputs`, `collect`, `env`, `volumes`, `working_dir`, `user`, `network`, `memory`,
 * `cpu`, `pull`, `containerd_addr`, `namespace`, `timeout`,
 * `max_output_bytes`, `platform`, `runtime`, `snapshotter`, `labels`,
 * `step_name` or `name`) into a {@linkcode StepConfig}.
 *
 * `timeout` takes a duration (`"5m"`, `"30s"`) or milliseconds; `volumes` a
 * list of `SRC:DST[:ro]` strings or `{ source, target, readonly }` maps;
 * `inputs` a list of `SRC:TARGET[:MODE]` strings or `{ source, target, uid,
 * gid, mode }` maps (relative sources are taken from the file's directory,
 * modes in octal: `"0640"`); `collect` a list of `PATH:DEST` strings or
 * `{ path, to }` maps (relative destinations from the file's directory);
 * numbers and booleans in `env` and `labels` become strings. The values are
 * checked for their YAML type here and fully by {@linkcode validateStepConfig}
 * (which {@linkcode runStep} calls).
 *
 * @param text The YAML text.
 * @param options The file name for messages.
 * @returns The step config.
 * @throws {StepFileError} For invalid YAML, an unknown or duplicate key, or a
 *   value of the wrong type; the message starts with `<file>:<line>:<column>:`
 *   and names the key.
 *
 * @example
 * ```ts
 * import { parseStepFile } from "@wfe/containerd";
 *
 * const step = parseStepFile("image: alpine:3.18\nrun: echo hi\ntimeout: 5m\n", {
 *   source: "step.yaml",
 * });
 * step.timeoutMs; // 300000
 * ```
 */
export function parseStepFile(text: string, options: ParseStepFileOptions = {}): StepConfig {
  const source = options.source ?? "step file";
  if (text.length > MAX_STEP_FILE_BYTES) {
    throw new StepFileError(
      `the step file has ${text.length} characters, more than the ${MAX_STEP_FILE_BYTES} allowed`,
      { source },
    );
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  const pos = (node: Node | null | undefined): { line?: number; column?: number } => {
    const offset = node?.range?.[0];
    if (offset === undefined) return {};
    const { line, col } = lines.linePos(offset);
    return { line: Math.max(1, line), column: Math.max(1, col) };
  };
  const fail = (problem: string, node?: Node | null, key?: string): never => {
    throw new StepFileError(problem, { source, ...pos(node), key });
  };
  if (doc.errors.length > 0) {
    const err = doc.errors[0];
    const { line, col } = err.linePos?.[0] ?? lines.linePos(err.pos[0]);
    const problem = err.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
    throw new StepFileError(`invalid YAML: ${problem}`, {
      source,
      line: Math.max(1, line),
      column: Math.max(1, col),
    });
  }
  const root = doc.contents;
  if (root === null || (isScalar(root) && (root.value === null || root.value === ""))) {
    fail("the step file is empty: expected a mapping with at least 'image'");
  }
  if (!isMap(root)) {
    return fail("expected a mapping of step keys (image, run, env, ...)", root as Node);
  }

  const config: Partial<StepConfig> = {};
  const seen = new Map<keyof StepConfig, string>();
  const lineOf = new Map<string, number | undefined>();
  const known = Object.keys(STEP_FILE_KEYS);
  for (const pair of root.items) {
    const keyNode = pair.key as Node | null;
    if (!isScalar(keyNode) || typeof keyNode.value !== "string") {
      fail("expected a string key", keyNode ?? (pair.value as Node | null));
    }
    const key = (keyNode as { value: string }).value;
    if (lineOf.has(key)) {
      const first = lineOf.get(key);
      fail(`duplicate key '${key}'${first ? ` (first set on line ${first})` : ""}`, keyNode, key);
    }
    lineOf.set(key, pos(keyNode).line);
    const field = STEP_FILE_KEYS[key];
    if (field === undefined || !Object.hasOwn(STEP_FILE_KEYS, key)) {
      const hint = suggest(key, known);
      fail(
        `unknown key '${key}'` +
          (hint ? ` (did you mean '${hint}'?)` : `; known keys: ${known.join(", ")}`),
        keyNode,
        key,
      );
    }
    const other = seen.get(field);
    if (other !== undefined) {
      fail(`'${key}' and '${other}' both set the step name; give one of them`, keyNode, key);
    }
    seen.set(field, key);
    const valueNode = pair.value as Node | null;
    const at = valueNode ?? keyNode;
    const value: unknown = valueNode === null ? null : toJS(valueNode, doc, (problem) => {
      fail(`invalid YAML: ${problem}`, at, key);
    });
    const bad = (expected: string): never => {
      const got = value === null ? "nothing" : Array.isArray(value) ? "a list" : typeof value;
      return fail(`'${key}' must be ${expected}, got ${got}`, at, key);
    };
    const text = (): string => {
      if (typeof value === "string") return value;
      if (typeof value === "number" || typeof value === "boolean") return String(value);
      return bad("a string");
    };
    const stringMap = (): Record<string, string> => {
      if (!isMap(valueNode)) return bad("a mapping of names to values");
      const out: Record<string, string> = {};
      for (const item of valueNode.items) {
        const k = item.key as Node | null;
        const v = item.value as Node | null;
        const name = isScalar(k) ? k.value : undefined;
        if (typeof name !== "string" && typeof name !== "number") {
          fail(`'${key}' must map names to values`, k ?? at, key);
        }
        const val = isScalar(v) ? v.value : undefined;
        if (typeof val !== "string" && typeof val !== "number" && typeof val !== "boolean") {
          fail(`'${key}.${name}' must be a string, number or boolean`, v ?? k, key);
        }
        out[String(name)] = String(val);
      }
      return out;
    };
    switch (field) {
      case "image":
      case "run":
      case "workingDir":
      case "containerdAddr":
      case "namespace":
      case "platform":
      case "runtime":
      case "snapshotter":
      case "seccomp":
      case "stepName":
        if (typeof value !== "string" || value === "") bad("a non-empty string");
        config[field] = value as string;
        break;
      case "user":
        config.user = text();
        break;
      case "command":
      case "entrypoint":
        if (!isSeq(valueNode)) {
          bad("a list of arguments, e.g. [echo, hello] (use 'run' for a shell command)");
        }
        config[field] = argsOf(valueNode as { items: unknown[] }, key, at, fail);
        break;
      case "inputs":
        if (!isSeq(valueNode)) {
          bad("a list of SRC:TARGET[:MODE] strings or {source, target, ...} mappings");
        }
        config.inputs = (valueNode as { items: unknown[] }).items.map((item, i) =>
          inputOf(item as Node | null, i, doc, fail, options.baseDir)
        );
        break;
      case "collect":
        if (!isSeq(valueNode)) bad("a list of PATH:DEST strings or {path, to} mappings");
        config.collect = (valueNode as { items: unknown[] }).items.map((item, i) =>
          collectOf(item as Node | null, i, doc, fail, options.baseDir)
        );
        break;
      case "env":
        config.env = stringMap();
        break;
      case "labels":
        config.labels = stringMap();
        break;
      case "volumes": {
        if (!isSeq(valueNode)) bad("a list of SRC:DST[:ro] strings or {source, target} mappings");
        config.volumes = (valueNode as { items: unknown[] }).items.map((item, i) =>
          volumeOf(item as Node | null, i, doc, fail)
        );
        break;
      }
      case "network":
        if (value !== "none" && value !== "host") bad("'none' or 'host'");
        config.network = value as "none" | "host";
        break;
      case "pull":
        if (value !== "if-not-present" && value !== "always" && value !== "never") {
          bad("'if-not-present', 'always' or 'never'");
        }
        config.pull = value as "if-not-present" | "always" | "never";
        break;
      case "memory":
      case "cpu":
        if (typeof value !== "string" && typeof value !== "number") bad("a string or number");
        config[field] = value as string | number;
        break;
      case "timeoutMs": {
        if (typeof value !== "string" && typeof value !== "number") {
          bad("a duration such as '30s' or '5m', or milliseconds");
        }
        let ms = 0;
        try {
          ms = parseDuration(value as string | number, "timeout");
        } catch (err) {
          fail((err as Error).message, at, key);
        }
        if (ms === 0) fail("'timeout' must be longer than 0", at, key);
        config.timeoutMs = ms;
        break;
      }
      case "maxOutputBytes":
        if (!Number.isSafeInteger(value) || (value as number) <= 0) {
          bad("a positive whole number of bytes");
        }
        config.maxOutputBytes = value as number;
        break;
      default:
        fail(`'${key}' is not supported in step files`, keyNode, key);
    }
  }
  if (config.image === undefined) {
    fail("missing 'image': every step needs an image", root);
  }
  return config as StepConfig;
}

/**
 * Reads and parses a YAML step file (see {@linkcode parseStepFile}).
 *
 * @param path The file's path; it appears in error messages as given.
 * @returns The step config.
 * @throws {StepFileError} For a file that cannot be read or parsed.
 *
 * @example
 * ```ts
 * import { readStepFile, runStep } from "@wfe/containerd";
 *
 * const result = await runStep(await readStepFile("step.yaml"));
 * console.log(result.outputs);
 * ```
 */
export async function readStepFile(path: string): Promise<StepConfig> {
  let text: string;
  try {
    const { size } = await Deno.stat(path);
    if (size > MAX_STEP_FILE_BYTES) {
      throw new StepFileError(
        `the step file has ${size} bytes, more than the ${MAX_STEP_FILE_BYTES} allowed`,
        { source: path },
      );
    }
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof StepFileError) throw err;
    const why = err instanceof Deno.errors.NotFound ? "no such file" : (err as Error).message;
    throw new StepFileError(`cannot read the step file: ${why}`, { source: path });
  }
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? Deno.cwd() : slash === 0 ? "/" : path.slice(0, slash);
  return parseStepFile(text, { source: path, baseDir: dir });
}
