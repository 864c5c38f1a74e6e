/**
 * Reading the environment without failing when it is not permitted.
 *
 * @module
 */

/** Reads an environment variable; `undefined` when unset or not permitted. */
export function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}
