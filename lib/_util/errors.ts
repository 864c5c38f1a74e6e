/**
 * Turning any thrown value into text for messages and reports. Private to
 * this package.
 *
 * @module
 */

/** The message of an Error, or the value as a string. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
