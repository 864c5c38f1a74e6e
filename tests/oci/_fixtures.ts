/**
 * Shared fixtures of the tests of lib/oci: digests, JSON bytes and a multi-platform index.
 *
 * @module
 */

import { MediaType } from "../../lib/oci/media_types.ts";
import type { OciDescriptor, OciIndex, OciPlatform } from "../../lib/oci/types.ts";

export const encoder = new TextEncoder();
export const json = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value));
export const digestOf = (c: string): string => `sha256:${c.repeat(64)}`;
export const DOC = digestOf("d");

export function platformEntry(digest: string, platform?: OciPlatform): OciDescriptor {
  const d: OciDescriptor = { mediaType: MediaType.ociManifest, digest, size: 500 };
  if (platform) d.platform = platform;
  return d;
}

/** amd64, arm64/v8 and arm/v7, as Docker Hub's multi-arch images list them. */
export const AMD64 = digestOf("a");
export const ARM64 = digestOf("b");
export const ARMV7 = digestOf("7");
export const multiArch: OciIndex = {
  schemaVersion: 2,
  mediaType: MediaType.ociIndex,
  manifests: [
    platformEntry(AMD64, { os: "linux", architecture: "amd64" }),
    platformEntry(ARM64, { os: "linux", architecture: "arm64", variant: "v8" }),
    platformEntry(ARMV7, { os: "linux", architecture: "arm", variant: "v7" }),
  ],
};

// ---------------------------------------------------------------------------------------------
// media types
