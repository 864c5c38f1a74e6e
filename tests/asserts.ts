/**
 * Narrowing assertions for tests (node:assert's default export does not
 * narrow types in TypeScript).
 *
 * @module
 */

import assert from "@std/assert";

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
