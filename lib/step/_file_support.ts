/**
 * Step file support: the error class with where the problem is, YAML value
 * conversion that reports alias problems as such, and key suggestions.
 *
 * @module
 */

import type { Node } from "yaml";

/** A problem in a step file, with where it is. */
export class StepFileError extends Error {
  /** The file name (or `"step file"`). */
  readonly source: string;
  /** 1-based line of the problem, when known. */
  readonly line?: number;
  /** 1-based column of the problem, when known. */
  readonly column?: number;
  /** The top-level key concerned, when there is one. */
  readonly key?: string;

  /** Creates the error; the message reads `<source>:<line>:<column>: <problem>`. */
  constructor(
    problem: string,
    where: { source: string; line?: number; column?: number; key?: string },
  ) {
    const at = where.line !== undefined
      ? `${where.source}:${where.line}${where.column !== undefined ? `:${where.column}` : ""}`
      : where.source;
    super(`${at}: ${problem}`);
    this.name = "StepFileError";
    this.source = where.source;
    this.line = where.line;
    this.column = where.column;
    this.key = where.key;
  }
}

/** A YAML node's value; alias and other conversion errors go to `fail` (never a ReferenceError). */
export function toJS(
  node: Node,
  doc: Parameters<Node["toJS"]>[0],
  fail: (problem: string) => void,
): unknown {
  try {
    return node.toJS(doc, { maxAliasCount: 100 });
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
    return undefined;
  }
}

/** The known key closest to a misspelt one, when it is close enough. */
export function suggest(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(key.toLowerCase(), candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return bestDistance <= Math.max(1, Math.floor(key.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}
