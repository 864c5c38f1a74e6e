/**
 * Image references: parsing and Docker's normalisation (`alpine` is
 * `docker.io/library/alpine:latest`).
 *
 * @module
 */

/** The registry a reference without a domain belongs to (Docker's rule): `docker.io`. */
export const DEFAULT_DOMAIN = "docker.io";
/** The repository prefix of Docker's official images: `alpine` is `docker.io/library/alpine`. */
const OFFICIAL_PREFIX = "library/";
/** An old spelling of {@linkcode DEFAULT_DOMAIN}. */
const LEGACY_DEFAULT_DOMAIN = "index.docker.io";
/** The tag of a reference without tag or digest. */
const DEFAULT_TAG = "latest";

// ---------------------------------------------------------------------------------------------
// names

const DOMAIN_RE =
  /^(?:\[[0-9A-Fa-f:]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::[0-9]+)?$/;
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const REF_DIGEST_RE = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;

function badReference(ref: string, why: string): TypeError {
  return new TypeError(`Cannot parse image reference '${ref}': ${why}`);
}

/** An image reference split into its parts, normalised as Docker does. */
export interface ImageReference {
  /** The registry host (and port), e.g. `docker.io` or `localhost:5000`. */
  registry: string;
  /** The repository path on the registry, e.g. `library/alpine`. */
  repository: string;
  /** The tag; `latest` when the reference has neither tag nor digest. */
  tag?: string;
  /** The digest, `algorithm:hex`, when the reference pins one. */
  digest?: string;
}

/**
 * Parses an image reference into registry, repository, tag and digest, with
 * Docker's normalisation: no registry means `docker.io` (and a one-component
 * repository gets `library/`), neither tag nor digest means tag `latest`.
 *
 * @param ref An image reference, e.g. `alpine`, `host:5000/team/app:1.2` or
 *   `alpine:3.18@sha256:<hex>`.
 * @returns The parts.
 * @throws {TypeError} When `ref` is not a valid reference, e.g.
 *   `Cannot parse image reference 'Alpine': repository 'Alpine' must be lower case`.
 *
 * @example
 * ```ts
 * import { parseReference } from "@wfe/containerd/api";
 *
 * parseReference("alpine");
 * // { registry: "docker.io", repository: "library/alpine", tag: "latest" }
 * ```
 */
export function parseReference(ref: string): ImageReference {
  if (ref === "") throw badReference(ref, "it is empty");
  if (/\s/.test(ref)) throw badReference(ref, "it contains white space");
  let name = ref;
  let digest: string | undefined;
  const at = name.indexOf("@");
  if (at >= 0) {
    digest = name.slice(at + 1);
    name = name.slice(0, at);
    if (!REF_DIGEST_RE.test(digest)) {
      throw badReference(ref, `'${digest}' is not a digest: expected algorithm:hex`);
    }
  }
  let tag: string | undefined;
  const colon = name.lastIndexOf(":");
  if (colon > name.lastIndexOf("/")) {
    tag = name.slice(colon + 1);
    name = name.slice(0, colon);
    if (!TAG_RE.test(tag)) {
      throw badReference(
        ref,
        `tag '${tag}' is not valid: expected up to 128 letters, digits, '_', '.' and '-'`,
      );
    }
  }
  let domain = DEFAULT_DOMAIN;
  let path = name;
  const slash = name.indexOf("/");
  if (slash >= 0) {
    const first = name.slice(0, slash);
    const isDomain = /[.:]/.test(first) || first === "localhost" || first !== first.toLowerCase();
    if (isDomain) {
      domain = first === LEGACY_DEFAULT_DOMAIN ? DEFAULT_DOMAIN : first;
      path = name.slice(slash + 1);
    }
  }
  if (!DOMAIN_RE.test(domain)) throw badReference(ref, `'${domain}' is not a valid registry`);
  if (path === "") throw badReference(ref, "the repository is empty");
  for (const component of path.split("/")) {
    if (PATH_COMPONENT_RE.test(component)) continue;
    if (PATH_COMPONENT_RE.test(component.toLowerCase())) {
      throw badReference(ref, `repository '${path}' must be lower case`);
    }
    throw badReference(
      ref,
      `repository component '${component}' is not valid: expected lower-case letters and ` +
        "digits separated by '.', '_', '__' or '-'",
    );
  }
  if (domain === DEFAULT_DOMAIN && !path.includes("/")) path = OFFICIAL_PREFIX + path;
  if (`${domain}/${path}`.length > 255) {
    throw badReference(ref, "the name is longer than 255 characters");
  }
  const out: ImageReference = { registry: domain, repository: path };
  if (tag !== undefined || digest === undefined) out.tag = tag ?? DEFAULT_TAG;
  if (digest !== undefined) out.digest = digest;
  return out;
}

/**
 * Formats the parts of a reference as one string: `registry/repository`, then
 * `:tag` and `@digest` when present.
 *
 * @param ref The parts, e.g. from {@linkcode parseReference}.
 * @returns The reference, e.g. `docker.io/library/alpine:latest`.
 *
 * @example
 * ```ts
 * import { formatReference } from "@wfe/containerd/api";
 *
 * formatReference({ registry: "localhost:5000", repository: "app", tag: "1" }); // "localhost:5000/app:1"
 * ```
 */
export function formatReference(ref: ImageReference): string {
  const tag = ref.tag !== undefined ? `:${ref.tag}` : "";
  const digest = ref.digest !== undefined ? `@${ref.digest}` : "";
  return `${ref.registry}/${ref.repository}${tag}${digest}`;
}

/**
 * Normalises an image reference the way Docker and containerd's pull do: a
 * reference without a domain gets `docker.io` (and a one-component repository
 * `library/`), a reference without tag or digest gets `:latest`, and digests
 * are kept.
 *
 * | reference                  | normalised                              |
 * | -------------------------- | --------------------------------------- |
 * | `alpine`                   | `docker.io/library/alpine:latest`       |
 * | `alpine:3.18`              | `docker.io/library/alpine:3.18`         |
 * | `user/app`                 | `docker.io/user/app:latest`             |
 * | `host:5000/x`              | `host:5000/x:latest`                    |
 * | `alpine@sha256:<hex>`      | `docker.io/library/alpine@sha256:<hex>` |
 *
 * @param ref An image reference.
 * @returns The fully qualified reference.
 * @throws {TypeError} When `ref` is not a valid reference (empty, upper-case
 *   repository, bad tag or digest), e.g.
 *   `Cannot parse image reference 'Alpine': repository 'Alpine' must be lower case`.
 *
 * @example
 * ```ts
 * import { normalizeImageName } from "@wfe/containerd/api";
 *
 * normalizeImageName("alpine"); // "docker.io/library/alpine:latest"
 * ```
 */
export function normalizeImageName(ref: string): string {
  return formatReference(parseReference(ref));
}

/**
 * The image names to look up for a reference, in order: the reference as
 * given (containerd stores whatever name an image was created with), then its
 * {@linkcode normalizeImageName} form when that differs and is valid.
 *
 * @param ref An image reference or stored image name.
 * @returns One or two names, the reference itself first.
 * @throws {TypeError} When `ref` is empty.
 *
 * @example
 * ```ts
 * import { imageNameCandidates } from "@wfe/containerd/api";
 *
 * imageNameCandidates("alpine"); // ["alpine", "docker.io/library/alpine:latest"]
 * ```
 */
export function imageNameCandidates(ref: string): string[] {
  if (ref === "") throw badReference(ref, "it is empty");
  let normalized: string | undefined;
  try {
    normalized = normalizeImageName(ref);
  } catch {
    // Not a Docker reference; it can still be a stored image name.
  }
  return normalized !== undefined && normalized !== ref ? [ref, normalized] : [ref];
}

// ---------------------------------------------------------------------------------------------
// the config cache
