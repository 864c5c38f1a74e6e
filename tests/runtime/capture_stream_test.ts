import assert from "node:assert/strict";
import { StreamState, utf8Boundary } from "../../lib/runtime/_capture_stream.ts";
import { OutputParser, parseOutputs } from "../../lib/step/outputs.ts";

/** What a capture must keep of `bytes` with `max`: the last bytes, from a character on. */
function expected(bytes: Uint8Array, max: number): string {
  const kept = bytes.subarray(Math.max(0, bytes.length - max));
  return new TextDecoder().decode(bytes.length > max ? kept.subarray(utf8Boundary(kept, 0)) : kept);
}

Deno.test("StreamState keeps exactly the last max bytes across growth and wrap-around, outputs of all of it", () => {
  let seed = 5;
  const next = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648) >>> 8) % n;
  const words = ["a", "é", "😀", "\n", "##wfe[output k=v", "]\n", "line\r\n", "x".repeat(5000)];
  for (const [round, max] of [0, 1, 7, 4096, 300_000, 600_000, 2_000_000].entries()) {
    let text = "";
    while (text.length < 1_500_000) text += words[next(words.length)];
    text += `\n##wfe[output last=${round}]\n`;
    const bytes = new TextEncoder().encode(text);
    const lines: string[] = [];
    const stream = new StreamState(max, new OutputParser(), (l) => lines.push(l), (e) => {
      throw e;
    });
    stream.delivering = true;
    for (let at = 0; at < bytes.length;) {
      const space = stream.space();
      assert.ok(space.length > 0, "space is never empty");
      const n = Math.min(space.length, bytes.length - at, 1 + next(200_000));
      space.set(bytes.subarray(at, at + n));
      stream.commit(n);
      at += n;
    }
    stream.flushLine();
    const { text: got, outputs } = stream.finish();
    assert.equal(got.bytes, bytes.length, `max ${max}`);
    assert.equal(got.truncated, bytes.length > max, `max ${max}`);
    assert.ok(got.text === expected(bytes, max), `max ${max}: the kept text differs`);
    assert.deepEqual({ ...outputs }, { ...parseOutputs(text) }, `max ${max}`);
    assert.equal(outputs.last, String(round));
    assert.deepEqual(lines, text.split("\n").slice(0, -1).map((l) => l.replace(/\r$/, "")));
  }
});

Deno.test("StreamState: a wrapped tail whose oldest piece is a character's last bytes starts at the next character", () => {
  const capacity = 256 * 1024; // the least capacity: max below it still wraps here
  const bytes = new Uint8Array(2 * capacity - 2).fill(0x61);
  bytes.set([0xe2, 0x82, 0xac], capacity - 3); // "€" across the end of the first pass
  const stream = new StreamState(capacity, undefined, undefined, (e) => {
    throw e;
  });
  for (let at = 0; at < bytes.length;) {
    const space = stream.space();
    const n = Math.min(space.length, bytes.length - at, 65536);
    space.set(bytes.subarray(at, at + n));
    stream.commit(n);
    at += n;
  }
  const text = stream.finish().text.text;
  assert.equal(text, expected(bytes, capacity));
  assert.equal(text.length, capacity - 2);
  assert.ok(!text.includes("\ufffd"), "a broken character at the start");
});
