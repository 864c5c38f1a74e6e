/**
 * Credentials from Docker's client configuration, as `docker login` leaves
 * them: `auths[host].auth` (base64 of `user:password`), or a credential
 * helper (`credHelpers[host]`, else `credsStore`) run as
 * `docker-credential-<name> get` with the host on stdin. A helper that is
 * not installed, or that knows no credentials for the host, means
 * anonymous access, not an error.
 *
 * @module
 */

import { readEnv } from "../_util/env.ts";
import type { RegistryCredentials } from "./auth.ts";

/** Options of {@linkcode dockerCredentials}. */
export interface DockerConfigOptions {
  /**
   * The directory holding `config.json`.
   * @default {`DOCKER_CONFIG`, else `~/.docker`}
   */
  configDir?: string;
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/** The keys a host may be stored under: `host`, `https://host`, `http://host` (with `/v1/` or not). */
function keysOf(registry: string): string[] {
  return [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`];
}

async function readConfig(dir: string): Promise<DockerConfig | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(`${dir}/config.json`)) as DockerConfig;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.PermissionDenied) {
      return undefined;
    }
    throw new SyntaxError(
      `Cannot read Docker credentials from '${dir}/config.json': ${(err as Error).message}`,
      { cause: err },
    );
  }
}

async function fromHelper(
  name: string,
  registry: string,
): Promise<RegistryCredentials | undefined> {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) {
    throw new TypeError(`Cannot use credential helper '${name}': not a helper name`);
  }
  let out: Deno.CommandOutput;
  try {
    const child = new Deno.Command(`docker-credential-${name}`, {
      args: ["get"],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(registry));
    await writer.close();
    out = await child.output();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined; // helper not installed
    throw err;
  }
  if (!out.success) return undefined; // "credentials not found" and the like
  try {
    const { Username, Secret } = JSON.parse(new TextDecoder().decode(out.stdout));
    if (typeof Username === "string" && typeof Secret === "string" && Secret !== "") {
      return { username: Username, password: Secret };
    }
  } catch {
    // not JSON: no credentials
  }
  return undefined;
}

/**
 * Finds credentials for a registry in Docker's client configuration.
 *
 * @param registry The registry host, e.g. `localhost:5000`.
 * @param options Where config.json is.
 * @returns The credentials, or undefined for anonymous access.
 * @throws {SyntaxError} When config.json exists but is not valid JSON (the
 *   message names the file, never a secret).
 *
 * @example
 * ```ts
 * import { dockerCredentials } from "@wfe/containerd/api";
 *
 * const creds = await dockerCredentials("localhost:5000");
 * console.log(creds ? `as ${creds.username}` : "anonymous");
 * ```
 */
export async function dockerCredentials(
  registry: string,
  options: DockerConfigOptions = {},
): Promise<RegistryCredentials | undefined> {
  const home = readEnv("HOME");
  const dir = options.configDir ?? readEnv("DOCKER_CONFIG") ??
    (home ? `${home}/.docker` : undefined);
  if (!dir) return undefined;
  const config = await readConfig(dir);
  if (!config) return undefined;
  const keys = keysOf(registry);
  const helper = keys.map((k) => config.credHelpers?.[k]).find(Boolean) ?? config.credsStore;
  if (helper) {
    const found = await fromHelper(helper, registry);
    if (found) return found;
  }
  for (const key of keys) {
    const entry = config.auths?.[key];
    if (!entry) continue;
    if (entry.username && entry.password) {
      return { username: entry.username, password: entry.password };
    }
    if (entry.auth) {
      const decoded = atob(entry.auth);
      const colon = decoded.indexOf(":");
      if (colon > 0) {
        return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
      }
    }
  }
  return undefined;
}
