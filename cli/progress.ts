/**
 * Pull and import progress on stderr: per-blob bars with size and rate on a
 * terminal (redrawn at most 10 times a second), a plain line per blob
 * milestone and a periodic summary off a terminal, JSON lines with `--json`,
 * nothing with `--quiet`. stdout is never touched.
 *
 * @module
 */

import type { PullProgress } from "../lib/image/store.ts";
import { err, formatBytes } from "./common.ts";

/** How progress is shown. */
export type ProgressMode = "tty" | "plain" | "json" | "quiet";

/** Picks the mode from the flags and whether stderr is a terminal. */
export function progressMode(opts: { quiet?: boolean; json?: boolean }): ProgressMode {
  if (opts.quiet) return "quiet";
  if (opts.json) return "json";
  return Deno.stderr.isTerminal() ? "tty" : "plain";
}

/** A progress display: feed it events, then `finish()`. */
export interface ProgressDisplay {
  /** Takes one event. */
  onProgress(event: PullProgress): void;
  /** Draws the final state and stops redrawing. */
  finish(): void;
}

const short = (digest: string): string => digest.replace(/^sha256:/, "").slice(0, 12);

/** Makes the display for a mode. */
export function progressDisplay(mode: ProgressMode): ProgressDisplay {
  const started = performance.now();
  const blobs = new Map<string, PullProgress>();
  let drawn = 0; // lines drawn last time (tty)
  let lastDraw = 0;
  let lastPlain = 0;
  const line = (e: PullProgress): string => {
    const width = 20;
    const filled = e.total > 0 ? Math.round((e.done / e.total) * width) : width;
    const bar = "=".repeat(filled) + " ".repeat(width - filled);
    return `${e.kind}-${short(e.digest)}: ${e.phase.padEnd(11)} |${bar}| ` +
      `${formatBytes(e.done)}/${formatBytes(e.total)}`;
  };
  const footer = (): string => {
    const seconds = (performance.now() - started) / 1000;
    let done = 0;
    for (const e of blobs.values()) {
      if (
        e.phase === "downloading" || e.phase === "verifying" || e.phase === "unpacking" ||
        e.phase === "done"
      ) done += e.done;
    }
    return `elapsed: ${seconds.toFixed(1)} s, ${formatBytes(done)} (${
      formatBytes(done / Math.max(seconds, 0.001))
    }/s)`;
  };
  const draw = (force: boolean) => {
    const now = performance.now();
    if (!force && now - lastDraw < 100) return;
    lastDraw = now;
    const lines = [...[...blobs.values()].map(line), footer()];
    err(`${drawn > 0 ? `\x1b[${drawn}A` : ""}${lines.map((l) => `\x1b[2K${l}\n`).join("")}`);
    drawn = lines.length;
  };
  const milestone = new Set<string>(["resolving", "exists", "done", "unpacking"]);
  return {
    onProgress(e) {
      if (mode === "quiet") return;
      if (mode === "json") {
        err(JSON.stringify(e) + "\n");
        return;
      }
      blobs.set(e.digest, e);
      if (mode === "tty") return draw(false);
      if (milestone.has(e.phase)) err(`${line(e)}\n`);
      else if (performance.now() - lastPlain > 2000) {
        lastPlain = performance.now();
        err(`${line(e)} (${footer()})\n`);
      }
    },
    finish() {
      if (mode === "tty") draw(true);
      else if (mode === "plain") err(`${footer()}\n`);
    },
  };
}
