/**
 * sha256 digests in containerd's `sha256:<hex>` form.
 *
 * @module
 */

import { createHash } from "node:crypto";

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/** True when `value` is a `sha256:` digest with 64 lower-case hex digits. */
export function isDigest(value: string): boolean {
  return DIGEST_RE.test(value);
}

/**
 * Checks a digest and returns it.
 *
 * @throws {TypeError} Naming `field` and the value when it is not `sha256:<64 hex>`.
 */
export function assertDigest(value: string, field = "digest"): string {
  if (!isDigest(value)) {
    throw new TypeError(
      `Cannot use ${field} '${value}': expected 'sha256:' followed by 64 lower-case hex digits`,
    );
  }
  return value;
}

/** Hex encoding of bytes. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/**
 * The `sha256:<hex>` digest of bytes or text, computed with Web Crypto.
 *
 * @example
 * ```ts
 * import { sha256Digest } from "@wfe/containerd/api";
 *
 * await sha256Digest("hello"); // "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
 * ```
 */
export async function sha256Digest(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const hash = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return `sha256:${toHex(new Uint8Array(hash))}`;
}

/** An incremental sha256 for streamed data (Web Crypto has no streaming digest). */
export class Sha256Stream {
  #hash = createHash("sha256");

  /** Adds bytes. */
  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
  }

  /** The `sha256:<hex>` digest of everything added; the hasher cannot be reused. */
  digest(): string {
    return `sha256:${this.#hash.digest("hex")}`;
  }
}
