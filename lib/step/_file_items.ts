/**
 * Step file list items: arguments, volumes and inputs, each checked with
 * where it is in the file.
 *
 * @module
 */

import { isMap, isScalar, type Node } from "yaml";
import type { BindMount } from "../oci/spec.ts";
import type { Input } from "../runtime/inputs.ts";
import type { CollectSpec } from "../runtime/collect.ts";
import { StepFileError, toJS } from "./_file_support.ts";
import { parseCollect, parseInput, parseOctalMode, parseVolume, resolveSource } from "./volume.ts";

type Fail = (problem: string, node?: Node | null, key?: string) => never;
type Doc = Parameters<Node["toJS"]>[0];

/** A list of arguments (strings; numbers and booleans as written). */
export function argsOf(
  seq: { items: unknown[] },
  key: string,
  at: Node | null,
  fail: Fail,
): string[] {
  return seq.items.map((item, i) => {
    const v = isScalar(item) ? item.value : undefined;
    if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") {
      return fail(`'${key}[${i}]' must be a string`, (item as Node | null) ?? at, key);
    }
    return String(v);
  });
}

/** The entries of a mapping item as [name, value, key node, value node]. */
function entriesOf(node: Node, doc: Doc): [unknown, unknown, Node | null, Node | null][] {
  if (!isMap(node)) return [];
  return node.items.map((item) => {
    const k = item.key as Node | null;
    const v = item.value as Node | null;
    const value = v
      ? toJS(v, doc, (problem) => {
        throw new StepFileError(`invalid YAML: ${problem}`, { source: "step file" });
      })
      : undefined;
    return [isScalar(k) ? k.value : undefined, value, k, v];
  });
}

export function volumeOf(
  node: Node | null,
  index: number,
  doc: Doc,
  fail: Fail,
): BindMount {
  const field = `volumes[${index}]`;
  if (isScalar(node) && typeof node.value === "string") {
    try {
      return parseVolume(node.value, field);
    } catch (err) {
      return fail((err as Error).message, node, "volumes");
    }
  }
  if (!isMap(node)) {
    return fail(`'${field}' must be a SRC:DST[:ro] string or a {source, target} mapping`, node);
  }
  const out: Partial<BindMount> = {};
  for (const [name, value, k, v] of entriesOf(node, doc)) {
    if (name === "source" || name === "target") {
      if (typeof value !== "string" || value === "") {
        fail(`'${field}.${name}' must be a path`, v ?? k, "volumes");
      }
      out[name] = value as string;
    } else if (name === "readonly") {
      if (typeof value !== "boolean") {
        fail(`'${field}.readonly' must be true or false`, v ?? k);
      }
      out.readonly = value as boolean;
    } else {
      fail(
        `unknown key '${String(name)}' in '${field}'; known keys: source, target, readonly`,
        k,
        "volumes",
      );
    }
  }
  if (out.source === undefined || out.target === undefined) {
    fail(`'${field}' needs both 'source' and 'target'`, node, "volumes");
  }
  return { source: out.source!, target: out.target!, readonly: out.readonly ?? false };
}

/** An input: a `SRC:TARGET[:MODE]` string or a `{ source, target, uid, gid, mode }` mapping. */
export function inputOf(
  node: Node | null,
  index: number,
  doc: Doc,
  fail: Fail,
  baseDir: string | undefined,
): Input {
  const field = `inputs[${index}]`;
  if (isScalar(node) && typeof node.value === "string") {
    try {
      return parseInput(node.value, field, baseDir);
    } catch (err) {
      return fail((err as Error).message, node, "inputs");
    }
  }
  if (!isMap(node)) {
    return fail(
      `'${field}' must be a SRC:TARGET[:MODE] string or a {source, target} mapping`,
      node,
    );
  }
  const out: Partial<Input> = {};
  for (const [name, value, k, v] of entriesOf(node, doc)) {
    const at = v ?? k;
    if (name === "source" || name === "target") {
      if (typeof value !== "string" || value === "") fail(`'${field}.${name}' must be a path`, at);
      out[name] = name === "source" ? resolveSource(value as string, baseDir) : value as string;
    } else if (name === "uid" || name === "gid") {
      if (!Number.isInteger(value)) fail(`'${field}.${name}' must be a whole number`, at);
      out[name] = value as number;
    } else if (name === "mode") {
      // Octal only: YAML reads 0640 as the decimal 640.
      const octal = isScalar(v) && (typeof value === "string" || v.format === "OCT");
      if (!octal) fail(`'${field}.mode' must be octal, quoted: e.g. "0640"`, at);
      try {
        out.mode = typeof value === "number"
          ? value
          : parseOctalMode(value as string, `${field}.mode`);
      } catch (err) {
        fail((err as Error).message, at);
      }
    } else {
      fail(
        `unknown key '${String(name)}' in '${field}'; known keys: source, target, uid, gid, mode`,
        k,
        "inputs",
      );
    }
  }
  if (out.source === undefined || out.target === undefined) {
    fail(`'${field}' needs both 'source' and 'target'`, node, "inputs");
  }
  return out as Input;
}

/** A collect item: a `PATH:DEST` string or a `{ path, to }` mapping. */
export function collectOf(
  node: Node | null,
  index: number,
  doc: Doc,
  fail: Fail,
  baseDir: string | undefined,
): CollectSpec {
  const field = `collect[${index}]`;
  if (isScalar(node) && typeof node.value === "string") {
    try {
      return parseCollect(node.value, field, baseDir);
    } catch (err) {
      return fail((err as Error).message, node, "collect");
    }
  }
  if (!isMap(node)) {
    return fail(`'${field}' must be a PATH:DEST string or a {path, to} mapping`, node);
  }
  const out: Partial<CollectSpec> = {};
  for (const [name, value, k, v] of entriesOf(node, doc)) {
    if (name !== "path" && name !== "to") {
      fail(`unknown key '${String(name)}' in '${field}'; known keys: path, to`, k, "collect");
    }
    if (typeof value !== "string" || value === "") {
      fail(`'${field}.${name}' must be a path`, v ?? k);
    }
    out[name as "path" | "to"] = name === "to"
      ? resolveSource(value as string, baseDir)
      : value as string;
  }
  if (out.path === undefined || out.to === undefined) {
    fail(`'${field}' needs both 'path' and 'to'`, node, "collect");
  }
  return out as CollectSpec;
}
