/**
 * Pull policies: what a step or service does about its image before it
 * starts. `if-not-present` pulls a missing image, `always` asks the registry
 * every time (fetching only what changed), `never` uses what is stored.
 *
 * @module
 */

import type { ContainerdClient } from "../grpc/connection.ts";
import { ContainerdError, GrpcCode, isNotFound } from "../grpc/errors.ts";
import { imageNameCandidates } from "../oci/reference.ts";
import { RegistryClient, type RegistryClientOptions } from "../registry/client.ts";
import { RegistryError } from "../registry/errors.ts";
import { pull } from "./pull.ts";
import { type ResolvedImage, resolveImage } from "./resolve.ts";
import type { PullProgress } from "./store.ts";

/** Image pull policy of steps and services. */
export type PullPolicy = "if-not-present" | "always" | "never";

/** Options of {@linkcode ensureImage}. */
export interface EnsureImageOptions {
  /** The policy. @default {"if-not-present"} */
  policy?: PullPolicy;
  /** The platform, `os/arch[/variant]`. @default {the host's} */
  platform?: string;
  /** The snapshotter to unpack into. @default {the namespace's default} */
  snapshotter?: string;
  /** The registry client, or options for one (credentials, plain HTTP hosts, CAs). */
  registry?: RegistryClient | RegistryClientOptions;
  /** Progress of a pull. */
  onProgress?: (event: PullProgress) => void;
  /** Cancels the work. */
  signal?: AbortSignal;
}

/**
 * Makes sure an image is there as the policy says, and resolves it.
 *
 * @param client A connected client.
 * @param ref The image reference.
 * @param options Policy, platform, snapshotter, registry access, progress.
 * @returns The resolved image.
 * @throws {ContainerdError} NOT_FOUND when the policy is `never` and the
 *   image is missing (the message names the command that pulls it).
 * @throws {RegistryError} When a pull fails.
 *
 * @example
 * ```ts
 * import { connect, ensureImage } from "@wfe/containerd/api";
 *
 * await using client = await connect();
 * const image = await ensureImage(client, "localhost:5000/team/app:1", { policy: "always" });
 * console.log(image.name, image.chainId);
 * ```
 */
export async function ensureImage(
  client: ContainerdClient,
  ref: string,
  options: EnsureImageOptions = {},
): Promise<ResolvedImage> {
  const { policy = "if-not-present", platform, signal } = options;
  if (!["if-not-present", "always", "never"].includes(policy)) {
    throw new TypeError(
      `Cannot use pull '${policy}': expected 'if-not-present', 'always' or 'never'`,
    );
  }
  // One Images.Get in the common case: resolve first, pull only what is missing.
  let missing = false;
  if (policy !== "always") {
    try {
      return await resolveImage(client, ref, { platform, signal });
    } catch (err) {
      if (!isNotFound(err) || !/not found in namespace/.test(String(err))) throw err;
      if (policy === "never") {
        throw new ContainerdError({
          code: GrpcCode.NOT_FOUND,
          method: "ensureImage",
          details: `image '${ref}' is not in namespace '${client.namespace}' (tried ` +
            `${imageNameCandidates(ref).join(", ")}) and the pull policy is 'never'; pull it ` +
            `first (\`wfe-containerd -n ${client.namespace} images pull ${ref}\`) or use pull ` +
            "'if-not-present'",
          cause: err,
        });
      }
      missing = true;
    }
  }
  const registry = options.registry instanceof RegistryClient ? options.registry : undefined;
  try {
    await pull(client, ref, {
      ...(registry ? {} : options.registry as RegistryClientOptions | undefined),
      registry,
      platform,
      snapshotter: options.snapshotter,
      onProgress: options.onProgress,
      signal,
    });
  } catch (err) {
    if (!missing || !(err instanceof RegistryError)) throw err;
    throw new RegistryError({
      registry: err.registry,
      repository: err.repository,
      status: err.status,
      code: err.code,
      details: `image '${ref}' is not in namespace '${client.namespace}' and pulling it ` +
        `failed: ${err.details}`,
      cause: err,
    });
  }
  return await resolveImage(client, ref, { platform, signal });
}
