/**
 * containerd identifiers (namespaces, container ids, lease ids):
 * `[A-Za-z0-9]+([._-][A-Za-z0-9]+)*`, at most 76 characters
 * (containerd's identifiers/validate.go).
 *
 * @module
 */

/** The longest identifier containerd accepts. */
export const MAX_IDENTIFIER_LENGTH = 76;

const IDENTIFIER_RE = /^[A-Za-z0-9]+([._-][A-Za-z0-9]+)*$/;

/** True when `value` is a valid containerd identifier. */
export function isIdentifier(value: unknown): value is string {
  return typeof value === "string" && value.length <= MAX_IDENTIFIER_LENGTH &&
    IDENTIFIER_RE.test(value);
}
