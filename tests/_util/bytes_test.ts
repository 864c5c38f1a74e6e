import assert from "node:assert/strict";
import { concat } from "../../lib/_util/bytes.ts";

Deno.test("concat() joins byte arrays in order into a new array", () => {
  const a = new Uint8Array([1, 2]);
  const out = concat([a, new Uint8Array([]), new Uint8Array([3])]);
  assert.deepEqual([...out], [1, 2, 3]);
  a[0] = 9;
  assert.equal(out[0], 1, "the result is a copy");
  assert.equal(concat([]).length, 0);
});
