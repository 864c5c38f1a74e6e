/**
 * Resolving a stored image: the image record (the reference as given, then
 * its normalised Docker form), then its target for one platform with
 * {@linkcode resolveManifest} over the content store.
 *
 * @module
 */

import type { ContainerdClient } from "../grpc/connection.ts";
import { ContainerdError, GrpcCode, isNotFound } from "../grpc/errors.ts";
import {
  recallResolution,
  rememberResolution,
  type ResolvedManifest,
  resolveManifest,
} from "./manifest.ts";
import { contentStoreProvider } from "./provider.ts";
import { parsePlatform } from "../oci/platform.ts";
import { imageNameCandidates } from "../oci/reference.ts";
import type { Image } from "../../proto/gen/types.ts";

/** Options of {@linkcode resolveImage}. */
export interface ResolveImageOptions {
  /**
   * The platform to resolve for, `os/arch[/variant]`.
   * @default {hostPlatform()} (e.g. `linux/amd64`)
   */
  platform?: string;
  /** Cancels the lookups. */
  signal?: AbortSignal;
}

/** What {@linkcode resolveImage} found. */
export interface ResolvedImage extends ResolvedManifest {
  /** The stored image name that was found (the reference as given, or its normalised form). */
  name: string;
}

interface Found {
  name: string;
  image: Image;
}

async function findImage(
  client: ContainerdClient,
  ref: string,
  signal: AbortSignal | undefined,
): Promise<Found | ContainerdError> {
  const names = imageNameCandidates(ref);
  let last: ContainerdError | undefined;
  for (const name of names) {
    try {
      const { image } = await client.images.get({ name }, { signal });
      if (image) return { name: image.name || name, image };
    } catch (err) {
      if (!isNotFound(err)) throw err;
      last = err as ContainerdError;
    }
  }
  const tried = names.map((n) => `'${n}'`).join(", ");
  return new ContainerdError({
    code: last?.code ?? GrpcCode.NOT_FOUND,
    method: "Images.Get",
    details: `image not found in namespace '${client.namespace}' (tried ${tried})`,
    cause: last,
  });
}

/**
 * Finds the stored image for a reference, trying the names of
 * {@linkcode imageNameCandidates}.
 *
 * @param client A connected client (its namespace is searched).
 * @param ref An image reference or stored image name.
 * @param options Cancels the lookups.
 * @returns The stored name found, or `undefined` when no candidate exists.
 * @throws {TypeError} When `ref` is empty.
 * @throws {ContainerdError} When a lookup fails other than NOT_FOUND.
 *
 * @example
 * ```ts
 * import { connect, imageExists } from "@wfe/containerd/api";
 *
 * await using client = await connect();
 * const name = await imageExists(client, "alpine"); // "docker.io/library/alpine:latest"?
 * ```
 */
export async function imageExists(
  client: ContainerdClient,
  ref: string,
  options: { signal?: AbortSignal } = {},
): Promise<string | undefined> {
  options.signal?.throwIfAborted();
  const found = await findImage(client, ref, options.signal);
  return found instanceof ContainerdError ? undefined : found.name;
}

/**
 * Resolves an image for one platform: Images.Get (the reference as given,
 * then its normalised Docker form), then the target: an index or manifest
 * list is narrowed to the best manifest for the platform (nested indexes are
 * followed), the manifest and config are read (at most
 * 8 MiB each, digests verified) and validated, and
 * the chain ID of the layers is computed. Whole resolutions are memoized by
 * target descriptor and platform (a digest names its content), so resolving
 * an unchanged image again reads only the image record (one Images.Get).
 *
 * A target that is a manifest (no index) must be runnable on the platform
 * too: its config's platform is checked.
 *
 * @param client A connected client (its namespace is searched).
 * @param ref An image reference or stored image name, e.g. `alpine`,
 *   `docker.io/library/alpine:3.18` or `wfe.test/busybox:one-layer`.
 * @param options The platform (default: the host's) and a signal.
 * @returns The image's name, target, manifest, config, layers, diff IDs,
 *   chain ID and platform.
 * @throws {ContainerdError} NOT_FOUND (5) when no candidate name exists (the
 *   message lists the names tried) or no manifest fits the platform (the
 *   message lists the platforms offered); other codes from the server.
 * @throws {TypeError} When `ref` is empty, the platform cannot be parsed, or
 *   the content is malformed: the message names the image, the blob's digest
 *   and the problem (e.g. the manifest's layer count differs from the
 *   config's diff IDs).
 * @throws {SyntaxError} When a document is not JSON.
 * @throws {RangeError} When a document is larger than 8 MiB.
 *
 * @example
 * ```ts
 * import { connect, resolveImage } from "@wfe/containerd/api";
 *
 * await using client = await connect();
 * const image = await resolveImage(client, "alpine:3.18", { platform: "linux/arm64" });
 * console.log(image.name, image.chainId, image.config.config?.Cmd);
 * ```
 */
export async function resolveImage(
  client: ContainerdClient,
  ref: string,
  options: ResolveImageOptions = {},
): Promise<ResolvedImage> {
  const { signal } = options;
  signal?.throwIfAborted();
  const platform = options.platform !== undefined ? parsePlatform(options.platform) : undefined;
  const found = await findImage(client, ref, signal);
  if (found instanceof ContainerdError) throw found;
  const { name, image } = found;
  try {
    const target = image.target;
    if (!target || !target.digest) throw new TypeError("the image record has no target");
    const key = [target.digest, target.size, target.mediaType, options.platform ?? ""].join("\0");
    let resolved = recallResolution(key);
    if (!resolved) {
      resolved = await resolveManifest(contentStoreProvider(client), target, {
        platform,
        name,
        signal,
      });
      rememberResolution(key, resolved);
    }
    return { name, ...resolved, layers: [...resolved.layers], diffIds: [...resolved.diffIds] };
  } catch (err) {
    if (err instanceof TypeError || err instanceof SyntaxError || err instanceof RangeError) {
      const Ctor = err.constructor as new (message: string, options?: ErrorOptions) => Error;
      throw new Ctor(`Cannot resolve image '${name}': ${err.message}`, { cause: err });
    }
    throw err;
  }
}
