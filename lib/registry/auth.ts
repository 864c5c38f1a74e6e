/**
 * Registry authentication from a `WWW-Authenticate` challenge: Bearer
 * tokens (anonymous GET, or with credentials the OAuth POST with a fallback
 * to GET with Basic credentials, as containerd does) and Basic. Tokens are
 * cached per registry and scope until they expire. Credentials never appear
 * in messages.
 *
 * @module
 */

import { errorMessage } from "../_util/errors.ts";

/** A user name and password (or token) for one registry. */
export interface RegistryCredentials {
  /** The user name. */
  username: string;
  /** The password or access token. */
  password: string;
}

/** A parsed `WWW-Authenticate` challenge. */
export interface AuthChallenge {
  /** `bearer` or `basic` (lower case). */
  scheme: string;
  /** Its parameters, e.g. `realm`, `service`, `scope`. */
  params: Record<string, string>;
}

/**
 * Parses the first challenge of a `WWW-Authenticate` header, e.g.
 * `Bearer realm="https://auth.test/token",service="registry.test"`.
 *
 * @returns The scheme and parameters, or undefined when the header is empty.
 */
export function parseChallenge(header: string | null): AuthChallenge | undefined {
  const m = /^\s*([A-Za-z]+)\s*(.*)$/s.exec(header ?? "");
  if (!m) return undefined;
  const params: Record<string, string> = {};
  for (const p of m[2].matchAll(/([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) {
    params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : p[3];
  }
  return { scheme: m[1].toLowerCase(), params };
}

/** Why a registry did not authorize a request, for the caller's message. */
export class AuthFailure extends Error {
  /** Builds the failure. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "AuthFailure";
  }
}

interface CachedToken {
  header: string;
  expires: number;
}

/** Answers challenges for a client and remembers the tokens it got. */
export class Authorizer {
  #lookup: (registry: string) => Promise<RegistryCredentials | undefined>;
  #found = new Map<string, Promise<RegistryCredentials | undefined>>();
  #tokens = new Map<string, CachedToken>();

  /** Uses `credentials(registry)` (asked once per registry) to find what to send. */
  constructor(credentials: (registry: string) => Promise<RegistryCredentials | undefined>) {
    this.#lookup = credentials;
  }

  #credentials(registry: string): Promise<RegistryCredentials | undefined> {
    let found = this.#found.get(registry);
    if (!found) {
      found = this.#lookup(registry);
      this.#found.set(registry, found);
    }
    return found;
  }

  /** Whether credentials for `registry` are known. */
  async hasCredentials(registry: string): Promise<boolean> {
    return (await this.#credentials(registry)) !== undefined;
  }

  /** A cached Authorization header for this registry and scope, if one is still valid. */
  cached(registry: string, scope: string): string | undefined {
    const token = this.#tokens.get(`${registry} ${scope}`);
    if (token && token.expires > Date.now()) return token.header;
    return undefined;
  }

  /**
   * Answers a challenge with an Authorization header value.
   *
   * @throws {AuthFailure} When the registry asks for credentials none are
   *   known for, or the token service refuses.
   */
  async answer(
    registry: string,
    challenge: AuthChallenge,
    scope: string,
    signal?: AbortSignal,
  ): Promise<string> {
    const creds = await this.#credentials(registry);
    const basic = creds ? `Basic ${btoa(`${creds.username}:${creds.password}`)}` : undefined;
    if (challenge.scheme === "basic") {
      if (!basic) throw new AuthFailure(`no credentials for ${registry} found`);
      return basic;
    }
    if (challenge.scheme !== "bearer") {
      throw new AuthFailure(`the registry asks for '${challenge.scheme}' authentication`);
    }
    const realm = challenge.params.realm;
    if (!realm) throw new AuthFailure("the Bearer challenge has no realm");
    const service = challenge.params.service ?? "";
    const wanted = challenge.params.scope ?? scope;
    let res: Response | undefined;
    try {
      if (creds) {
        const form = new URLSearchParams({
          grant_type: "password",
          service,
          scope: wanted,
          client_id: "wfe-containerd",
          username: creds.username,
          password: creds.password,
        });
        res = await fetch(realm, { method: "POST", body: form, signal });
        if ([400, 401, 404, 405].includes(res.status)) {
          await res.body?.cancel();
          res = undefined; // not an OAuth endpoint: ask with Basic credentials instead
        }
      }
      if (!res) {
        const url = new URL(realm);
        if (service) url.searchParams.set("service", service);
        url.searchParams.set("scope", wanted);
        res = await fetch(url, { headers: basic ? { Authorization: basic } : {}, signal });
      }
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw new AuthFailure(`cannot reach the token service: ${errorMessage(err)}`, { cause: err });
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new AuthFailure(
        creds
          ? `credentials for ${registry} were rejected by the token service (HTTP ${res.status})`
          : `no credentials for ${registry} found (the token service answered HTTP ${res.status})`,
      );
    }
    const body = await res.json().catch(() => ({})) as {
      token?: string;
      access_token?: string;
      expires_in?: number;
    };
    const token = body.token ?? body.access_token;
    if (!token) throw new AuthFailure("the token service sent no token");
    const header = `Bearer ${token}`;
    const seconds = Number.isFinite(body.expires_in) ? Number(body.expires_in) : 60;
    this.#tokens.set(`${registry} ${scope}`, {
      header,
      expires: Date.now() + Math.max(0, seconds - 10) * 1000,
    });
    return header;
  }
}
