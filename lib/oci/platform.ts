/**
 * Platforms: the host's, parsing and formatting `os/arch[/variant]`, and
 * matching index entries with containerd's normalisation and fallbacks.
 *
 * @module
 */

import type { OciDescriptor, OciIndex, OciPlatform } from "./types.ts";

const ARCH_FROM_DENO: Readonly<Record<string, [string, string?]>> = {
  x86_64: ["amd64"],
  aarch64: ["arm64", "v8"],
};

/**
 * The platform of this machine, in OCI spelling: `x86_64` is `amd64`,
 * `aarch64` is `arm64` with variant `v8`. The OS is `linux` on macOS too:
 * containerd runs Linux containers there inside a Linux VM of the same
 * architecture.
 *
 * @returns The host's `{ os, architecture, variant? }`.
 *
 * @example
 * ```ts
 * import { formatPlatform, hostPlatform } from "@wfe/containerd/api";
 *
 * console.log(formatPlatform(hostPlatform())); // e.g. "linux/amd64"
 * ```
 */
export function hostPlatform(): OciPlatform {
  const os = Deno.build.os === "darwin" ? "linux" : Deno.build.os;
  const [architecture, variant] = ARCH_FROM_DENO[Deno.build.arch] ?? [Deno.build.arch];
  return variant ? { os, architecture, variant } : { os, architecture };
}

const PLATFORM_PART = /^[a-z0-9][a-z0-9._-]*$/;

/**
 * Parses a platform specifier such as `linux/amd64` or `linux/arm64/v8`.
 * Components are lower-cased and architecture aliases normalised (`x86_64` is
 * `amd64`, `aarch64` is `arm64`); the variant is kept as written.
 *
 * @param specifier `os/arch` or `os/arch/variant`.
 * @returns The platform.
 * @throws {TypeError} When the specifier does not have two or three non-empty
 *   parts of letters, digits, `.`, `_` and `-`, e.g.
 *   `Cannot parse platform 'amd64': expected os/arch[/variant]`.
 *
 * @example
 * ```ts
 * import { parsePlatform } from "@wfe/containerd/api";
 *
 * parsePlatform("linux/arm64/v8"); // { os: "linux", architecture: "arm64", variant: "v8" }
 * ```
 */
export function parsePlatform(specifier: string): OciPlatform {
  const parts = specifier.toLowerCase().split("/");
  if (parts.length < 2 || parts.length > 3) {
    throw new TypeError(`Cannot parse platform '${specifier}': expected os/arch[/variant]`);
  }
  const names = ["os", "architecture", "variant"];
  parts.forEach((part, i) => {
    if (!PLATFORM_PART.test(part)) {
      throw new TypeError(
        `Cannot parse platform '${specifier}': the ${names[i]} '${part}' is not valid: expected ` +
          "os/arch[/variant] of letters, digits, '.', '_' and '-'",
      );
    }
  });
  const os = parts[0] === "macos" ? "darwin" : parts[0];
  const architecture = archAlias(parts[1]);
  return parts[2] ? { os, architecture, variant: parts[2] } : { os, architecture };
}

/**
 * Formats a platform as `os/arch[/variant]`.
 *
 * @param platform The platform.
 * @returns E.g. `linux/arm/v7`.
 *
 * @example
 * ```ts
 * import { formatPlatform } from "@wfe/containerd/api";
 *
 * formatPlatform({ os: "linux", architecture: "arm", variant: "v7" }); // "linux/arm/v7"
 * ```
 */
export function formatPlatform(platform: OciPlatform): string {
  const base = `${platform.os}/${platform.architecture}`;
  return platform.variant ? `${base}/${platform.variant}` : base;
}

function archAlias(arch: string): string {
  switch (arch) {
    case "x86_64":
    case "x86-64":
      return "amd64";
    case "aarch64":
      return "arm64";
    case "i386":
      return "386";
    default:
      return arch;
  }
}

/**
 * Normalises a platform as containerd does before comparing: lower case,
 * `macos` is `darwin`, architecture aliases resolved, and default variants
 * made explicit-equal: amd64 `v1` and arm64 `v8` (also `8`, `v8.0`) become no
 * variant, arm without a variant (or `7`) becomes `v7`, `armhf` is `arm/v7`,
 * `armel` is `arm/v6`.
 *
 * @param platform The platform.
 * @returns A new platform in canonical form (no `variant` key when there is none).
 *
 * @example
 * ```ts
 * import { normalizePlatform } from "@wfe/containerd/api";
 *
 * normalizePlatform({ os: "linux", architecture: "aarch64", variant: "v8" });
 * // { os: "linux", architecture: "arm64" }
 * ```
 */
export function normalizePlatform(platform: OciPlatform): OciPlatform {
  let os = platform.os.toLowerCase();
  if (os === "macos") os = "darwin";
  let architecture = archAlias(platform.architecture.toLowerCase());
  let variant = (platform.variant ?? "").toLowerCase();
  switch (architecture) {
    case "386":
      variant = "";
      break;
    case "amd64":
      if (variant === "v1") variant = "";
      break;
    case "arm64":
      if (variant === "8" || variant === "v8" || variant === "v8.0") variant = "";
      else if (variant === "9" || variant === "9.0" || variant === "v9.0") variant = "v9";
      break;
    case "armhf":
      architecture = "arm";
      variant = "v7";
      break;
    case "armel":
      architecture = "arm";
      variant = "v6";
      break;
    case "arm":
      if (variant === "" || variant === "7") variant = "v7";
      else if (variant === "5" || variant === "6" || variant === "8") variant = `v${variant}`;
      break;
  }
  return variant ? { os, architecture, variant } : { os, architecture };
}

/**
 * Tells whether an image of platform `have` is the platform `want`, after
 * {@linkcode normalizePlatform}: `linux/arm64` is `linux/arm64/v8`,
 * `linux/amd64` is `linux/amd64/v1`, `linux/arm` is `linux/arm/v7`. It does not
 * accept merely compatible platforms (arm/v6 for an arm/v7 host); see
 * {@linkcode matchingManifests} for that.
 *
 * @param want The platform wanted.
 * @param have The platform of an image or index entry.
 * @returns True when both normalise to the same os, architecture and variant.
 *
 * @example
 * ```ts
 * import { matchPlatform } from "@wfe/containerd/api";
 *
 * matchPlatform({ os: "linux", architecture: "arm64" }, {
 *   os: "linux",
 *   architecture: "arm64",
 *   variant: "v8",
 * }); // true
 * ```
 */
export function matchPlatform(want: OciPlatform, have: OciPlatform): boolean {
  const a = normalizePlatform(want);
  const b = normalizePlatform(have);
  return a.os === b.os && a.architecture === b.architecture &&
    (a.variant ?? "") === (b.variant ?? "");
}

/**
 * The platforms a host of `platform` can run, best first, as containerd's
 * default matcher orders them: the platform itself (normalised), then older
 * variants (amd64 v3, v2, v1; arm v7, v6, v5), then 32-bit relatives (386 for
 * amd64; arm v8 to v5 for arm64).
 *
 * @param platform The platform of the host.
 * @returns Normalised platforms, best first; the first is the platform itself.
 *
 * @example
 * ```ts
 * import { compatiblePlatforms, formatPlatform } from "@wfe/containerd/api";
 *
 * compatiblePlatforms({ os: "linux", architecture: "arm", variant: "v7" }).map(formatPlatform);
 * // ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]
 * ```
 */
export function compatiblePlatforms(platform: OciPlatform): OciPlatform[] {
  const p = normalizePlatform(platform);
  const out: OciPlatform[] = [p];
  const { os } = p;
  const variant = p.variant ?? "";
  const version = Number(variant.replace(/^v/, ""));
  switch (p.architecture) {
    case "amd64":
      if (variant !== "" && Number.isInteger(version)) {
        for (let v = version - 1; v >= 2; v--) {
          out.push({ os, architecture: "amd64", variant: `v${v}` });
        }
        if (version > 1) out.push({ os, architecture: "amd64" });
      }
      out.push({ os, architecture: "386" });
      break;
    case "arm":
      if (Number.isInteger(version)) {
        for (let v = version - 1; v >= 5; v--) {
          out.push({ os, architecture: "arm", variant: `v${v}` });
        }
      }
      break;
    case "arm64":
      if (variant.startsWith("v8") || variant.startsWith("v9")) {
        out.push({ os, architecture: "arm64" });
      }
      if (variant === "" || variant.startsWith("v8") || variant.startsWith("v9")) {
        for (let v = 8; v >= 5; v--) out.push({ os, architecture: "arm", variant: `v${v}` });
      }
      break;
  }
  return out;
}

/**
 * The entries of an index a host of `platform` can run, best first: exact
 * platform matches (after {@linkcode normalizePlatform}) before compatible
 * ones (older variants, 32-bit relatives), an entry whose variant is spelled
 * exactly as wanted before an equivalent spelling (`arm64/v8` before `arm64`
 * when `arm64/v8` is wanted), then index order. Entries without a platform
 * come last; the caller has to check their config.
 *
 * @param index The index.
 * @param platform The platform to run on.
 * @returns The usable entries, best first; empty when none fits.
 *
 * @example
 * ```ts
 * import { matchingManifests, type OciIndex } from "@wfe/containerd/api";
 *
 * const index: OciIndex = { schemaVersion: 2, manifests: [] };
 * matchingManifests(index, { os: "linux", architecture: "amd64" }); // []
 * ```
 */
export function matchingManifests(index: OciIndex, platform: OciPlatform): OciDescriptor[] {
  const vector = compatiblePlatforms(platform);
  const wantVariant = platform.variant ?? "";
  const ranked: { desc: OciDescriptor; rank: number; exact: number; position: number }[] = [];
  index.manifests.forEach((desc, position) => {
    if (!desc.platform) {
      ranked.push({ desc, rank: vector.length, exact: 1, position });
      return;
    }
    const rank = vector.findIndex((p) => matchPlatform(p, desc.platform!));
    if (rank < 0) return;
    const exact = (desc.platform.variant ?? "") === wantVariant ? 0 : 1;
    ranked.push({ desc, rank, exact, position });
  });
  ranked.sort((a, b) => a.rank - b.rank || a.exact - b.exact || a.position - b.position);
  return ranked.map((r) => r.desc);
}

/**
 * Picks the manifest of an index to run on `platform`: the best of
 * {@linkcode matchingManifests} that has a platform.
 *
 * @param index The index.
 * @param platform The platform to run on.
 * @returns The descriptor of the manifest (or of a nested index) to use.
 * @throws {Error} When no entry fits; the message lists the platforms the
 *   index offers, e.g. `no manifest for linux/riscv64 in the index: it offers
 *   linux/amd64, linux/arm64/v8`.
 *
 * @example
 * ```ts
 * import { type OciIndex, selectManifest } from "@wfe/containerd/api";
 *
 * const manifest = (digest: string, architecture: string, variant?: string) => ({
 *   mediaType: "application/vnd.oci.image.manifest.v1+json",
 *   digest,
 *   size: 500,
 *   platform: { os: "linux", architecture, variant },
 * });
 * const index: OciIndex = {
 *   schemaVersion: 2,
 *   manifests: [
 *     manifest("sha256:" + "1".repeat(64), "amd64"),
 *     manifest("sha256:" + "2".repeat(64), "arm64", "v8"),
 *   ],
 * };
 * selectManifest(index, { os: "linux", architecture: "arm64" }).digest; // "sha256:222..."
 * ```
 */
export function selectManifest(index: OciIndex, platform: OciPlatform): OciDescriptor {
  const best = matchingManifests(index, platform).find((d) => d.platform !== undefined);
  if (best) return best;
  throw new Error(
    `no manifest for ${formatPlatform(platform)} in the index: ${describeOffers(index)}`,
  );
}

/**
 * Describes the platforms an index offers, for error messages.
 *
 * @param index The index.
 * @returns E.g. `it offers linux/amd64, linux/arm/v7`, or `it is empty`.
 *
 * @example
 * ```ts
 * import { describeOffers } from "@wfe/containerd/api";
 *
 * describeOffers({ schemaVersion: 2, manifests: [] }); // "it is empty"
 * ```
 */
export function describeOffers(index: OciIndex): string {
  if (index.manifests.length === 0) return "it is empty";
  const offers = index.manifests.map((d) =>
    d.platform ? formatPlatform(d.platform) : "(no platform)"
  );
  return `it offers ${[...new Set(offers)].join(", ")}`;
}
