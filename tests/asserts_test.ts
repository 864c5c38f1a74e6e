/**
 * Guards the test suite itself: node:assert's `throws`/`rejects` with an
 * error class and a third argument only use that argument as the failure
 * message, so such an assertion passes whatever the message says. Every
 * test file must use assertThrows/assertRejects from tests/asserts.ts (or a
 * RegExp / object / function matcher) instead.
 *
 * @module
 */

import assert from "node:assert/strict";
import { tsFiles } from "./ts_files.ts";
import { assertRejects, assertThrows } from "./asserts.ts";

/** Splits the arguments of the call whose "(" is at `open`; skips strings and regex literals. */
function callArgs(text: string, open: number): string[] {
  const args: string[] = [];
  let depth = 0;
  let start = open + 1;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === '"' || c === "'" || c === "`") {
      for (i++; i < text.length && text[i] !== c; i++) if (text[i] === "\\") i++;
    } else if (
      c === "/" && !"/*".includes(text[i + 1]) && /[(,=:[!&|?{};]\s*$/.test(text.slice(i - 20, i))
    ) {
      let inClass = false;
      for (i++; i < text.length; i++) {
        if (text[i] === "\\") i++;
        else if (text[i] === "[") inClass = true;
        else if (text[i] === "]") inClass = false;
        else if (text[i] === "/" && !inClass) break;
      }
    } else if ("([{".includes(c)) depth++;
    else if (")]}".includes(c)) {
      if (--depth === 0) {
        args.push(text.slice(start, i));
        return args.map((a) => a.trim()).filter((a) => a !== "");
      }
    } else if (c === "," && depth === 1) {
      args.push(text.slice(start, i));
      start = i + 1;
    }
  }
  throw new SyntaxError(`unbalanced call at offset ${open}`);
}

/** `file:line` of every node:assert throws/rejects call with a class and a message argument. */
export function findUncheckedMessages(text: string, file: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/\bassert\.(throws|rejects)\(/g)) {
    const args = callArgs(text, m.index + m[0].length - 1);
    if (args.length >= 3 && /^(?:[A-Z][\w.]*|Deno\.errors\.\w+)$/.test(args[1])) {
      found.push(`${file}:${text.slice(0, m.index).split("\n").length}`);
    }
  }
  return found;
}

Deno.test("no test uses node:assert's throws/rejects(fn, Class, message) form", async () => {
  const root = new URL("./", import.meta.url);
  const files = await tsFiles(root);
  assert.ok(files.length > 20, `expected the test files, found ${files.length}`);
  const offenders: string[] = [];
  for (const url of files) {
    if (url.href === import.meta.url) continue;
    const name = url.pathname.slice(root.pathname.length);
    offenders.push(...findUncheckedMessages(await Deno.readTextFile(url), name));
  }
  assert.deepEqual(offenders, [], "use assertThrows/assertRejects from tests/asserts.ts");
});

Deno.test("findUncheckedMessages() flags the class + message form and nothing else", () => {
  // Spelled with a placeholder so that text scanners of tests/ do not take these for real calls.
  const planted = [
    '@.throws(() => f(), TypeError, "some text");',
    "await @.rejects(() => g(), Deno.errors.NotFound, `gone ${x}`);",
    '@.throws(() => f(), /re(gex)/, "failure message");',
    "@.throws(() => f(), { message: /x/ });",
    "@.throws(() => f(), TypeError);",
    '@.rejects(() => h("a, b"), (e: unknown) => e instanceof Error, "why");',
  ].join("\n").replaceAll("@.", "assert.");
  assert.deepEqual(findUncheckedMessages(planted, "x.ts"), ["x.ts:1", "x.ts:2"]);
});

Deno.test("assertThrows() checks the class and the message", () => {
  const fail = (): never => {
    throw new TypeError("Cannot parse 'x': expected a number");
  };
  const err = assertThrows(fail, TypeError, "expected a number");
  assert.equal(err.message, "Cannot parse 'x': expected a number");
  assert.throws(() => assertThrows(fail, TypeError, "other text"), {
    name: "AssertionError",
    message: /expected the message to include "other text"/,
  });
  assert.throws(() => assertThrows(fail, RangeError), {
    name: "AssertionError",
    message: /expected a RangeError, got TypeError: Cannot parse/,
  });
  assert.throws(() => assertThrows(() => 1, TypeError), {
    name: "AssertionError",
    message: /assertThrows: expected a TypeError/,
  });
});

Deno.test("assertRejects() checks the class and the message", async () => {
  const fail = () => Promise.reject(new RangeError("Cannot use 5: too large"));
  await assertRejects(fail, RangeError, "too large");
  await assert.rejects(() => assertRejects(fail, RangeError, "too small"), {
    name: "AssertionError",
    message: /expected the message to include "too small"/,
  });
  await assert.rejects(() => assertRejects(fail, TypeError, "too large"), {
    name: "AssertionError",
    message: /expected a TypeError, got RangeError/,
  });
  await assert.rejects(() => assertRejects(() => Promise.resolve(), RangeError), {
    name: "AssertionError",
    message: /expected a rejection with a RangeError/,
  });
});
