import assert from "node:assert/strict";
import { assertThrows } from "../asserts.ts";
import { formatDuration, parseDuration } from "../../lib/step/duration.ts";

Deno.test("parseDuration() reads units, compounds, fractions and plain milliseconds", () => {
  const cases: [string | number, number][] = [
    ["250ms", 250],
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["2d", 172_800_000],
    ["1h30m", 5_400_000],
    ["1m30s500ms", 90_500],
    ["1.5s", 1500],
    [".5s", 500],
    ["1500", 1500],
    [" 10s ", 10_000],
    ["5M", 300_000],
    ["0", 0],
    ["0s", 0],
    [1500, 1500],
    [0.4, 0],
    ["1.0006s", 1001],
  ];
  for (const [input, ms] of cases) assert.equal(parseDuration(input), ms, `input ${input}`);
});

Deno.test("parseDuration() rejects what is not a duration, naming the field and value", () => {
  for (const input of ["", "abc", "5x", "5 m", "m5", "1h 30m", "1,5s", "5mm", "s", "1e3", "NaN"]) {
    const err = assertThrows(
      () => parseDuration(input, "--timeout"),
      TypeError,
      `--timeout '${input}'`,
    );
    assert.ok(err.message.includes("30s"), `input '${input}': ${err.message}`);
  }
  assert.throws(() => parseDuration(NaN), TypeError);
});

Deno.test("parseDuration() rejects negative and too large durations", () => {
  assert.throws(
    () => parseDuration("-5s", "timeout"),
    /timeout '-5s': a duration cannot be negative/,
  );
  assert.throws(() => parseDuration(-1), RangeError);
  assert.throws(() => parseDuration(Infinity), /too large/);
  assert.throws(() => parseDuration("99999999999999999999d"), /too large/);
});

Deno.test("formatDuration() writes compact durations that parseDuration reads back", () => {
  // [ms, text, what parseDuration reads the text as]
  const cases: [number, string, number][] = [
    [0, "0ms", 0],
    [-5, "0ms", 0],
    [250, "250ms", 250],
    [1500, "1.5s", 1500],
    [1234, "1.2s", 1200],
    [42_000, "42s", 42_000],
    [59_990, "1m", 60_000],
    [60_000, "1m", 60_000],
    [90_000, "1m30s", 90_000],
    [3_723_400, "1h2m3s", 3_723_000],
    [86_400_000 + 3_600_000, "1d1h", 90_000_000],
  ];
  for (const [ms, text, back] of cases) {
    assert.equal(formatDuration(ms), text, `${ms} ms`);
    assert.equal(parseDuration(text), back, text);
  }
});
