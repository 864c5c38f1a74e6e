import assert from "node:assert/strict";
import { concat, indexOfByte } from "../../lib/_util/bytes.ts";

Deno.test("concat() joins byte arrays in order into a new array", () => {
  const a = new Uint8Array([1, 2]);
  const out = concat([a, new Uint8Array([]), new Uint8Array([3])]);
  assert.deepEqual([...out], [1, 2, 3]);
  a[0] = 9;
  assert.equal(out[0], 1, "the result is a copy");
  assert.equal(concat([]).length, 0);
});

Deno.test("indexOfByte() equals Uint8Array indexOf at every offset and alignment", () => {
  let seed = 11;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) >>> 8;
  for (let round = 0; round < 300; round++) {
    const backing = new Uint8Array(400);
    for (let i = 0; i < backing.length; i++) backing[i] = next() % 4 === 0 ? 0x23 : next() % 256;
    if (round % 3 === 0) backing.fill(0x79); // no match at all
    const offset = next() % 8;
    const bytes = backing.subarray(offset, offset + 64 + (next() % 300));
    const value = round % 5 === 0 ? 0 : 0x23;
    for (const from of [0, 1, 2, 3, next() % bytes.length]) {
      assert.equal(
        indexOfByte(bytes, value, from),
        bytes.indexOf(value, from),
        `round ${round} from ${from}`,
      );
    }
  }
});
