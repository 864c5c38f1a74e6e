/**
 * Chain ID computation: `chainId()` of 1, 10 and 100 layers (one Web Crypto
 * sha256 per layer after the first).
 *
 * ```sh
 * deno bench bench/chain_id_bench.ts
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import { chainId, chainIds } from "../lib/oci/chain_id.ts";

function diffIds(count: number): string[] {
  return Array.from(
    { length: count },
    (_, i) => `sha256:${createHash("sha256").update(`layer ${i}`).digest("hex")}`,
  );
}

const one = diffIds(1);
const ten = diffIds(10);
const hundred = diffIds(100);

Deno.bench({ name: "chainId() of 1 layer", group: "chainId", baseline: true }, async () => {
  await chainId(one);
});

Deno.bench({ name: "chainId() of 10 layers", group: "chainId" }, async () => {
  await chainId(ten);
});

Deno.bench({ name: "chainId() of 100 layers", group: "chainId" }, async () => {
  await chainId(hundred);
});

Deno.bench({ name: "chainIds() of 100 layers (every prefix)", group: "chainId" }, async () => {
  await chainIds(hundred);
});
