import assert from "node:assert/strict";
import { concat } from "../../lib/_util/bytes.ts";
import { buildOutputData, OutputParser, parseOutputs } from "../../lib/step/outputs.ts";

/** The entries of a record, sorted by key (compares null-prototype objects by content). */
function entries(record: Record<string, unknown>): [string, unknown][] {
  return Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

// ── ports of wfe-containerd's parse_outputs tests ────────────────────────────

Deno.test("parseOutputs() ports parse_outputs_empty", () => {
  assert.deepEqual(entries(parseOutputs("")), []);
});

Deno.test("parseOutputs() ports parse_outputs_single", () => {
  const outputs = parseOutputs("some log line\n##wfe[output version=1.2.3]\nmore logs\n");
  assert.equal(Object.keys(outputs).length, 1);
  assert.equal(outputs["version"], "1.2.3");
});

Deno.test("parseOutputs() ports parse_outputs_multiple", () => {
  const outputs = parseOutputs("##wfe[output foo=bar]\n##wfe[output baz=qux]\n");
  assert.equal(Object.keys(outputs).length, 2);
  assert.equal(outputs["foo"], "bar");
  assert.equal(outputs["baz"], "qux");
});

Deno.test("parseOutputs() ports parse_outputs_mixed_with_regular_stdout", () => {
  const stdout = "Starting container...\n" +
    "Pulling image...\n" +
    "##wfe[output digest=sha256:abc123]\n" +
    "Running tests...\n" +
    "##wfe[output result=pass]\n" +
    "Done.\n";
  const outputs = parseOutputs(stdout);
  assert.equal(Object.keys(outputs).length, 2);
  assert.equal(outputs["digest"], "sha256:abc123");
  assert.equal(outputs["result"], "pass");
});

Deno.test("parseOutputs() ports parse_outputs_no_wfe_lines", () => {
  assert.deepEqual(entries(parseOutputs("line 1\nline 2\nline 3\n")), []);
});

Deno.test("parseOutputs() ports parse_outputs_value_with_equals_sign", () => {
  const outputs = parseOutputs("##wfe[output url=https://example.com?a=1&b=2]\n");
  assert.equal(Object.keys(outputs).length, 1);
  assert.equal(outputs["url"], "https://example.com?a=1&b=2");
});

Deno.test("parseOutputs() ports parse_outputs_ignores_malformed_lines", () => {
  const stdout = "##wfe[output ]\n" +
    "##wfe[output no_equals]\n" +
    "##wfe[output valid=yes]\n" +
    "##wfe[output_extra bad=val]\n";
  const outputs = parseOutputs(stdout);
  assert.equal(Object.keys(outputs).length, 1);
  assert.equal(outputs["valid"], "yes");
});

Deno.test("parseOutputs() ports parse_outputs_overwrites_duplicate_keys", () => {
  const outputs = parseOutputs("##wfe[output key=first]\n##wfe[output key=second]\n");
  assert.equal(Object.keys(outputs).length, 1);
  assert.equal(outputs["key"], "second");
});

// ── ports of wfe-containerd's build_output_data tests ────────────────────────

Deno.test("buildOutputData() ports build_output_data_basic", () => {
  const data = buildOutputData("my_step", "hello world\n", "", 0, { result: "success" });
  assert.equal(data["result"], "success");
  assert.equal(data["my_step.stdout"], "hello world\n");
  assert.equal(data["my_step.stderr"], "");
  assert.equal(data["my_step.exit_code"], 0);
});

Deno.test("buildOutputData() ports build_output_data_no_parsed_outputs", () => {
  const data = buildOutputData("step1", "out", "err", 1, {});
  assert.equal(Object.keys(data).length, 3); // stdout, stderr, exit_code
  assert.equal(data["step1.stdout"], "out");
  assert.equal(data["step1.stderr"], "err");
  assert.equal(data["step1.exit_code"], 1);
});

Deno.test("buildOutputData() ports build_output_data_with_multiple_parsed_outputs", () => {
  const data = buildOutputData("s", "", "", 0, { a: "1", b: "2", c: "3" });
  assert.equal(data["a"], "1");
  assert.equal(data["b"], "2");
  assert.equal(data["c"], "3");
  // Plus the 3 standard keys
  assert.equal(Object.keys(data).length, 6);
});

Deno.test("buildOutputData() ports build_output_data_negative_exit_code", () => {
  const data = buildOutputData("s", "", "", -1, {});
  assert.equal(data["s.exit_code"], -1);
});

// ── beyond the Rust tests ────────────────────────────────────────────────────

Deno.test("parseOutputs() parses CRLF lines, dropping one trailing CR", () => {
  const outputs = parseOutputs(
    "log\r\n##wfe[output a=1]\r\n##wfe[output b=2]\r\r\n##wfe[output c=3]\r",
  );
  assert.deepEqual(entries(outputs), [["a", "1"], ["c", "3"]]); // b's line ends "]\r" after one CR
  const parser = new OutputParser();
  parser.push("log\r\n##wfe[output a=1]\r\n##wfe[output b=2]\r\r\n##wfe[output c=3]\r");
  assert.deepEqual(entries(parser.finish()), [["a", "1"], ["c", "3"]]);
});

Deno.test("parseOutputs() keeps '__proto__' and other Object.prototype names as plain keys", () => {
  const outputs = parseOutputs(
    "##wfe[output __proto__=polluted]\n##wfe[output constructor=c]\n##wfe[output toString=t]\n",
  );
  assert.equal(Object.getPrototypeOf(outputs), null);
  assert.ok(Object.hasOwn(outputs, "__proto__"));
  assert.equal(outputs["__proto__"], "polluted");
  assert.deepEqual(entries(outputs), [["__proto__", "polluted"], ["constructor", "c"], [
    "toString",
    "t",
  ]]);
  assert.equal(({} as Record<string, unknown>)["polluted"], undefined);
  assert.equal(parseOutputs("")["toString"], undefined);
});

Deno.test("parseOutputs() trims the key, keeps the value verbatim, and splits at the first '='", () => {
  const outputs = parseOutputs(
    "##wfe[output  spaced key \t= value with spaces ]\n##wfe[output =empty key]\n" +
      "##wfe[output x=a]]\n##wfe[output y==]\n",
  );
  assert.deepEqual(entries(outputs), [
    ["", "empty key"],
    ["spaced key", " value with spaces "],
    ["x", "a]"],
    ["y", "="],
  ]);
});

Deno.test("parseOutputs() trims keys with Rust's whitespace (U+0085 yes, U+FEFF no)", () => {
  const outputs = parseOutputs("##wfe[output \u0085a\u3000=1]\n##wfe[output \ufeffb=2]\n");
  assert.deepEqual(entries(outputs), [["a", "1"], ["\ufeffb", "2"]]);
});

Deno.test("parseOutputs() needs the prefix at the start of the line and ']' at its end", () => {
  const outputs = parseOutputs(
    " ##wfe[output a=1]\n##wfe[output b=2] \n##wfe[outputc=3]\n##WFE[output d=4]\n##wfe[output e=5]",
  );
  assert.deepEqual(entries(outputs), [["e", "5"]]); // the last line needs no line break
});

Deno.test("buildOutputData() lets the step keys win over parsed outputs of the same name", () => {
  const parsed = parseOutputs("##wfe[output s.exit_code=7]\n##wfe[output s.stdout=fake]\n");
  const data = buildOutputData("s", "real", "", 0, parsed);
  assert.equal(data["s.exit_code"], 0);
  assert.equal(data["s.stdout"], "real");
  assert.equal(Object.keys(data).length, 3);
});

Deno.test("buildOutputData() keeps a parsed '__proto__' output as data", () => {
  const data = buildOutputData("s", "", "", 0, parseOutputs("##wfe[output __proto__=x]\n"));
  assert.equal(Object.getPrototypeOf(data), null);
  assert.equal(data["__proto__"], "x");
  assert.equal(Object.keys(data).length, 4);
});

Deno.test("buildOutputData() rejects an exit code that is not an integer", () => {
  for (const code of [1.5, NaN, Infinity]) {
    assert.throws(() => buildOutputData("s", "", "", code, {}), RangeError);
  }
});

// ── OutputParser ─────────────────────────────────────────────────────────────

const encoder = new TextEncoder();

/** A small deterministic PRNG (mulberry32), so failures reproduce. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random stdout bytes, rich in output lines, CRs, multi-byte and invalid UTF-8. */
function randomStdout(random: () => number): Uint8Array {
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];
  const pieces: (string | number[])[] = [];
  const lines = Math.floor(random() * 30);
  for (let i = 0; i < lines; i++) {
    if (random() < 0.6) {
      pieces.push(pick(["##wfe[output ", "##wfe[output  ", "##wfe[outpu", " ##wfe[output "]));
      pieces.push(pick(["k", "key", " k2 ", "__proto__", "é", "😀", "", "a b"]));
      if (random() < 0.9) pieces.push(pick(["=", "==", " = "]));
      pieces.push(pick(["v", "", "x=y", "ü😀", "]", "\r"]));
      if (random() < 0.1) pieces.push([0xff, 0xc3]);
      if (random() < 0.9) pieces.push("]");
    } else {
      pieces.push(pick(["log line", "", "é".repeat(5), "😀", "]", "#"]));
      if (random() < 0.2) pieces.push([0xe2, 0x82]); // truncated 3-byte sequence
    }
    pieces.push(pick(["\n", "\r\n", "\r\r\n", "\n\n"]));
  }
  if (random() < 0.5) pieces.push("##wfe[output last=no newline]");
  const parts = pieces.map((p) => (typeof p === "string" ? encoder.encode(p) : Uint8Array.from(p)));
  return concat(parts);
}

/** Split points in [0, length], sorted, possibly repeated (empty chunks). */
function splits(random: () => number, length: number): number[] {
  const count = Math.floor(random() * 12);
  const points = Array.from({ length: count }, () => Math.floor(random() * (length + 1)));
  return [0, ...points.sort((a, b) => a - b), length];
}

Deno.test("OutputParser equals parseOutputs() on random byte splits of random stdout", () => {
  const random = prng(20240611);
  for (let round = 0; round < 500; round++) {
    const bytes = randomStdout(random);
    const expected = parseOutputs(new TextDecoder().decode(bytes));
    const parser = new OutputParser();
    const points = splits(random, bytes.length);
    for (let i = 1; i < points.length; i++) {
      parser.push(bytes.subarray(points[i - 1], points[i]));
    }
    assert.deepEqual(entries(parser.finish()), entries(expected), `round ${round}`);
  }
});

Deno.test("OutputParser equals parseOutputs() on random string splits of random stdout", () => {
  const random = prng(7);
  for (let round = 0; round < 500; round++) {
    const text = new TextDecoder().decode(randomStdout(random));
    const parser = new OutputParser();
    const points = splits(random, text.length);
    for (let i = 1; i < points.length; i++) parser.push(text.slice(points[i - 1], points[i]));
    assert.deepEqual(entries(parser.finish()), entries(parseOutputs(text)), `round ${round}`);
  }
});

Deno.test("OutputParser handles a line split inside a UTF-8 sequence and a last line without newline", () => {
  const bytes = encoder.encode("##wfe[output emoji=😀]\n##wfe[output end=1]");
  const parser = new OutputParser();
  parser.push(bytes.subarray(0, 21)); // inside the 4-byte emoji
  parser.push(bytes.subarray(21, 22));
  parser.push(bytes.subarray(22));
  const outputs = parser.finish();
  assert.equal(Object.getPrototypeOf(outputs), null);
  assert.deepEqual(entries(outputs), [["emoji", "😀"], ["end", "1"]]);
});

Deno.test("OutputParser replaces invalid UTF-8 instead of throwing", () => {
  const parser = new OutputParser();
  parser.push(Uint8Array.from([0xff, 0x0a]));
  parser.push(encoder.encode("##wfe[output bad="));
  parser.push(Uint8Array.from([0xc3, 0x28, 0xe2, 0x82]));
  parser.push("]\n");
  assert.deepEqual(entries(parser.finish()), [["bad", "\ufffd(\ufffd"]]);
});

Deno.test("OutputParser ignores output lines longer than maxLineLength, and only those", () => {
  const parser = new OutputParser({ maxLineLength: 20 });
  parser.push("x".repeat(1000) + "\n##wfe[output a=1]\r\n##wfe[output b=");
  parser.push("y".repeat(100) + "]\n##wfe[output c=12345]\n");
  // "##wfe[output c=12345]" is 21 characters; "##wfe[output a=1]" 17.
  assert.deepEqual(entries(parser.finish()), [["a", "1"]]);
  const exact = new OutputParser({ maxLineLength: 21 });
  exact.push("##wfe[output c=12345]\r\n");
  assert.deepEqual(entries(exact.finish()), [["c", "12345"]]);
  assert.throws(() => new OutputParser({ maxLineLength: -1 }), RangeError);
});

Deno.test("OutputParser refuses input after finish()", () => {
  const parser = new OutputParser();
  parser.push("##wfe[output a=1]");
  parser.finish();
  assert.throws(() => parser.push("more"), TypeError);
  assert.throws(() => parser.finish(), TypeError);
});
