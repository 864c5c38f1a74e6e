/**
 * Pulling an image from an OCI distribution registry into containerd,
 * client-side (containerd 1.6 has no Transfer service): the registry client
 * resolves the reference and serves the blobs, {@linkcode storeImage} writes
 * and unpacks them.
 *
 * @module
 */

import type { ContainerdClient } from "../grpc/connection.ts";
import { errorMessage } from "../_util/errors.ts";
import { formatReference, type ImageReference, parseReference } from "../oci/reference.ts";
import type { OciDescriptor } from "../oci/types.ts";
import { RegistryError } from "../registry/errors.ts";
import { RegistryClient, type RegistryClientOptions } from "../registry/client.ts";
import { type StoredImage, storeImage, type StoreImageOptions } from "./store.ts";

/** Options of {@linkcode pull}: the registry client's, and how to store the image. */
export interface PullOptions
  extends RegistryClientOptions, Omit<StoreImageOptions, "name" | "source"> {
  /** A registry client to use (its token cache is reused) instead of one made from these options. */
  registry?: RegistryClient;
}

/** What {@linkcode pull} stored: the image record's name, what it resolves to, what was fetched. */
export type PulledImage = StoredImage;

/** The host part of a registry (`host:port` -> `host`), as containerd's source labels use it. */
function hostOf(registry: string): string {
  if (registry.startsWith("[")) return registry.slice(1, registry.indexOf("]"));
  return registry.replace(/:\d+$/, "");
}

/**
 * Pulls an image: resolves the reference on its registry (Docker's
 * normalisation applies), then stores the manifest for the platform, its
 * config and layers in the client's namespace under one lease, unpacks the
 * layers into the snapshotter and creates or updates the image record, as
 * `ctr images pull` does. Blobs already present are not fetched again; an
 * interrupted pull resumes its layers where they stopped. With `mirrors`
 * for the reference's registry, the first mirror that resolves it serves
 * the pull (the image keeps its name), else the registry itself.
 *
 * @param client A connected client.
 * @param ref The image reference, e.g. `localhost:5000/team/app:1`.
 * @param options Registry access (credentials, plain HTTP, CAs, retries),
 *   platform, snapshotter, progress and a signal.
 * @returns The stored image: name, target, manifest, config, chain ID,
 *   snapshotter and counts of blobs fetched and present.
 * @throws {TypeError} When `ref` is not a valid reference.
 * @throws {RegistryError} When the registry refuses (401 names the
 *   credentials' state, 404 says `manifest unknown`) or sends bad bytes.
 * @throws {ContainerdError} From containerd (DATA_LOSS when a layer does not
 *   unpack to its diff ID; NOT_FOUND when no manifest fits the platform).
 *
 * @example
 * ```ts
 * import { connect, pull } from "@wfe/containerd/api";
 *
 * await using client = await connect();
 * const image = await pull(client, "localhost:5000/team/app:1", {
 *   onProgress: (p) => console.error(p.phase, p.digest, p.done, p.total),
 * });
 * console.log(image.name, image.target.digest, image.chainId);
 * ```
 */
export async function pull(
  client: ContainerdClient,
  ref: string,
  options: PullOptions = {},
): Promise<PulledImage> {
  const reference = parseReference(ref);
  const registry = options.registry ?? new RegistryClient(options);
  try {
    const name = formatReference(reference);
    const hosts = registry.hostsFor(reference.registry);
    let found: { at: ImageReference; descriptor: OciDescriptor } | undefined;
    const failures: string[] = [];
    for (const host of hosts) {
      const at = { ...reference, registry: host };
      try {
        found = {
          at,
          descriptor: (await registry.resolve(at, { signal: options.signal })).descriptor,
        };
        break;
      } catch (err) {
        options.signal?.throwIfAborted();
        if (host === reference.registry) {
          if (failures.length === 0) throw err;
          throw new RegistryError({
            registry: reference.registry,
            repository: reference.repository,
            status: err instanceof RegistryError ? err.status : 0,
            details: `not found on its mirrors or itself: ${
              [...failures, errorMessage(err)].join("; ")
            }`,
            cause: err,
          });
        }
        failures.push(`mirror ${errorMessage(err)}`);
      }
    }
    return await storeImage(client, registry.blobProvider(found!.at), found!.descriptor, {
      ...options,
      name,
      source: { host: hostOf(reference.registry), repository: reference.repository },
    });
  } finally {
    if (!options.registry) registry.close();
  }
}
