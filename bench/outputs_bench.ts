/**
 * Output parsing speed: 64 MiB of `y\n` lines (no output line in them) through OutputParser in
 * 256 KiB chunks, and the byte search it uses against Uint8Array.prototype.indexOf.
 *
 * ```sh
 * deno bench -A bench/outputs_bench.ts
 * ```
 *
 * @module
 */

import { indexOfByte } from "../lib/_util/bytes.ts";
import { OutputParser } from "../lib/step/outputs.ts";

const CHUNK = new TextEncoder().encode("y\n".repeat(128 * 1024)); // 256 KiB
const CHUNKS = 256; // 64 MiB

Deno.bench("OutputParser: 64 MiB of y lines", () => {
  const parser = new OutputParser({ maxLineLength: 16 * 1024 * 1024 });
  for (let i = 0; i < CHUNKS; i++) parser.push(CHUNK);
  parser.finish();
});

Deno.bench("indexOfByte: 64 MiB without a match", { group: "search", baseline: true }, () => {
  for (let i = 0; i < CHUNKS; i++) indexOfByte(CHUNK, 0x23);
});

Deno.bench("Uint8Array indexOf: 64 MiB without a match", { group: "search" }, () => {
  for (let i = 0; i < CHUNKS; i++) CHUNK.indexOf(0x23);
});
