/**
 * Assertions for tests. node:assert's `throws(fn, Class, "text")` and
 * `rejects(fn, Class, "text")` treat "text" as the failure message, not as
 * something to check: use {@linkcode assertThrows} and
 * {@linkcode assertRejects} here, which check the class AND the message
 * (tests/asserts_test.ts fails on the 3-argument node:assert form).
 *
 * The default export of node:assert does not narrow types in TypeScript,
 * hence {@linkcode assertInstanceOf} and {@linkcode assertExists}.
 *
 * @module
 */

import assert from "node:assert/strict";

// deno-lint-ignore no-explicit-any
type ErrorClass<E> = abstract new (...args: any[]) => E;

/** Asserts that `value` is an instance of `ctor`. */
export function assertInstanceOf<T>(
  value: unknown,
  // deno-lint-ignore no-explicit-any
  ctor: new (...args: any[]) => T,
): asserts value is T {
  assert.ok(value instanceof ctor, `expected a ${ctor.name}, got ${String(value)}`);
}

/** Asserts that `value` is neither null nor undefined. */
export function assertExists<T>(value: T, message?: string): asserts value is NonNullable<T> {
  assert.ok(value !== null && value !== undefined, message ?? "expected a value");
}

function checkError<E extends Error>(
  err: unknown,
  ErrorClass: ErrorClass<E>,
  msgIncludes: string | undefined,
  call: string,
): E {
  if (!(err instanceof ErrorClass)) {
    const got = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    throw new assert.AssertionError({
      message: `${call}: expected a ${ErrorClass.name}, got ${got}`,
      actual: err,
      expected: ErrorClass,
    });
  }
  if (msgIncludes !== undefined && !err.message.includes(msgIncludes)) {
    throw new assert.AssertionError({
      message: `${call}: expected the message to include ${JSON.stringify(msgIncludes)}, ` +
        `got ${JSON.stringify(err.message)}`,
      actual: err.message,
      expected: msgIncludes,
      operator: "includes",
    });
  }
  return err;
}

/**
 * Asserts that `fn` throws an `ErrorClass` whose message includes
 * `msgIncludes` (as @std/assert's assertThrows does).
 *
 * @returns The error, for further checks.
 */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  ErrorClass: ErrorClass<E>,
  msgIncludes?: string,
): E {
  try {
    fn();
  } catch (err) {
    return checkError(err, ErrorClass, msgIncludes, "assertThrows");
  }
  throw new assert.AssertionError({ message: `assertThrows: expected a ${ErrorClass.name}` });
}

/**
 * Asserts that `fn` rejects with an `ErrorClass` whose message includes
 * `msgIncludes` (as @std/assert's assertRejects does).
 *
 * @returns The error, for further checks.
 */
export async function assertRejects<E extends Error>(
  fn: () => PromiseLike<unknown>,
  ErrorClass: ErrorClass<E>,
  msgIncludes?: string,
): Promise<E> {
  try {
    await fn();
  } catch (err) {
    return checkError(err, ErrorClass, msgIncludes, "assertRejects");
  }
  throw new assert.AssertionError({
    message: `assertRejects: expected a rejection with a ${ErrorClass.name}`,
  });
}
