/**
 * A private OCI registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1 with
 * a free port and storage in a temp dir, started and stopped by PID; images are pushed into it
 * with skopeo from archives built by tests/oci_archive.ts.
 *
 * @module
 */

import { buildImage, type BuiltImage, type ImageSpec } from "./oci_archive.ts";

/** A running registry. */
export interface TestRegistry extends AsyncDisposable {
  /** `127.0.0.1:<port>`. */
  host: string;
  /** The registry's process id. */
  pid: number;
  /** Where the registry keeps blobs: `<blobDir>/sha256/<2 hex>/<hex>/data`. */
  blobDir: string;
  /** The PEM certificate of the CA that signed the registry's (with `tlsBasic`). */
  caPem?: string;
  /** Builds an image and pushes it as `<host>/<repository>:<tag>`; returns its digests. */
  push(spec: ImageSpec, repository: string, tag: string): Promise<BuiltImage>;
  /** Stops the registry (SIGTERM, then SIGKILL) and removes its storage. */
  stop(): Promise<void>;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}): ${err}`);
  }
}

/** Token authentication in front of the registry (distribution's `auth: token`). */
export interface TokenAuthOptions {
  /** Users and passwords the token service accepts; they may pull and push. */
  users: Record<string, string>;
  /** Whether a token request without credentials gets a pull token. */
  anonymousPull: boolean;
  /** Whether the token service takes the OAuth POST; false answers it 404 (GET only). */
  oauthPost: boolean;
}

/** Options of {@linkcode startRegistry}. */
export interface StartRegistryOptions {
  /** Put a token service in front (default: an open registry). */
  tokenAuth?: TokenAuthOptions;
  /** Serve HTTPS with a certificate from a CA made for the test, and ask for Basic auth. */
  tlsBasic?: { users: Record<string, string> };
}

/** Starts a registry; it answers `GET /v2/` before this returns. */
export async function startRegistry(options: StartRegistryOptions = {}): Promise<TestRegistry> {
  const dir = await Deno.makeTempDir({ prefix: "wfe-registry-" });
  const host = `127.0.0.1:${freePort()}`;
  const config = `${dir}/config.yml`;
  const tokens = options.tokenAuth ? await startTokenService(dir, options.tokenAuth) : undefined;
  const tls = options.tlsBasic ? await makeTlsBasic(dir, options.tlsBasic.users) : undefined;
  await Deno.writeTextFile(
    config,
    [
      "version: 0.1",
      "log:",
      "  level: error",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${dir}/data`,
      "http:",
      `  addr: ${host}`,
      ...(tls
        ? [
          "  tls:",
          `    certificate: ${dir}/server.crt`,
          `    key: ${dir}/server.key`,
          "auth:",
          "  htpasswd:",
          "    realm: wfe-test",
          `    path: ${dir}/htpasswd`,
        ]
        : []),
      ...(tokens
        ? [
          "auth:",
          "  token:",
          `    realm: ${tokens.realm}`,
          `    service: ${TOKEN_SERVICE}`,
          `    issuer: ${TOKEN_ISSUER}`,
          `    rootcertbundle: ${tokens.certPath}`,
        ]
        : []),
      "",
    ].join("\n"),
  );
  const child = new Deno.Command("docker-registry", {
    args: ["serve", config],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async () => {
    await tokens?.stop();
    try {
      child.kill("SIGTERM");
    } catch { /* exited */ }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
    }, 5000);
    await child.status;
    clearTimeout(timer);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const deadline = Date.now() + 10_000;
  using httpClient = Deno.createHttpClient({ caCerts: tls ? [tls.caPem] : [] });
  for (;;) {
    try {
      const res = await fetch(`${tls ? "https" : "http"}://${host}/v2/`, { client: httpClient });
      await res.body?.cancel();
      if (res.ok || ((tokens || tls) && res.status === 401)) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not answer on ${host} within 10 s`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host,
    pid: child.pid,
    caPem: tls?.caPem,
    blobDir: `${dir}/data/docker/registry/v2/blobs`,
    async push(spec, repository, tag) {
      const [user, password] =
        Object.entries(options.tokenAuth?.users ?? options.tlsBasic?.users ?? {})[0] ?? [];
      const built = await buildImage(spec);
      const archive = `${dir}/push-${crypto.randomUUID()}.tar`;
      await Deno.writeFile(archive, built.archive);
      try {
        await run("skopeo", [
          "copy",
          "--quiet",
          "--dest-tls-verify=false",
          ...(user ? [`--dest-creds=${user}:${password}`] : []),
          `oci-archive:${archive}`,
          `docker://${host}/${repository}:${tag}`,
        ]);
      } finally {
        await Deno.remove(archive).catch(() => {});
      }
      return built;
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** A new RSA key and either a self-signed certificate (1 day) or a signing request, by openssl. */
async function newKey(key: string, out: string, subject: string, selfSigned: boolean) {
  await run("openssl", [
    "req",
    ...(selfSigned ? ["-x509", "-days", "1"] : []),
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    key,
    "-out",
    out,
    "-subj",
    subject,
  ]);
}

/** A CA, a server certificate for 127.0.0.1 signed by it, and an htpasswd file (bcrypt). */
async function makeTlsBasic(
  dir: string,
  users: Record<string, string>,
): Promise<{ caPem: string }> {
  await newKey(`${dir}/ca.key`, `${dir}/ca.crt`, "/CN=wfe-test-ca", true);
  await newKey(`${dir}/server.key`, `${dir}/server.csr`, "/CN=127.0.0.1", false);
  await Deno.writeTextFile(`${dir}/san.ext`, "subjectAltName=IP:127.0.0.1\n");
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    `${dir}/server.csr`,
    "-CA",
    `${dir}/ca.crt`,
    "-CAkey",
    `${dir}/ca.key`,
    "-CAcreateserial",
    "-out",
    `${dir}/server.crt`,
    "-days",
    "1",
    "-extfile",
    `${dir}/san.ext`,
  ]);
  const lines: string[] = [];
  for (const [user, password] of Object.entries(users)) {
    const out = await new Deno.Command("htpasswd", {
      args: ["-nbB", user, password],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(`htpasswd failed: ${new TextDecoder().decode(out.stderr)}`);
    lines.push(new TextDecoder().decode(out.stdout).trim());
  }
  await Deno.writeTextFile(`${dir}/htpasswd`, lines.join("\n") + "\n");
  return { caPem: await Deno.readTextFile(`${dir}/ca.crt`) };
}

const TOKEN_SERVICE = "wfe-test-registry";
const TOKEN_ISSUER = "wfe-test-issuer";

function base64url(data: Uint8Array | string): string {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(
    /=+$/,
    "",
  );
}

function pemBody(pem: string): Uint8Array<ArrayBuffer> {
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

/**
 * A token service as distribution's token auth expects: JWTs signed RS256 with a key whose
 * self-signed certificate (made with openssl) is the registry's root bundle and rides in `x5c`.
 */
async function startTokenService(
  dir: string,
  auth: TokenAuthOptions,
): Promise<{ realm: string; certPath: string; stop(): Promise<void> }> {
  const keyPath = `${dir}/token.key`;
  const certPath = `${dir}/token.crt`;
  await newKey(keyPath, certPath, "/CN=wfe-test-token", true);
  const key = await crypto.subtle.importKey(
    "pkcs8",
    pemBody(await Deno.readTextFile(keyPath)),
    { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const x5c = btoa(String.fromCharCode(...pemBody(await Deno.readTextFile(certPath))));
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    let user: string | undefined;
    let password: string | undefined;
    let scope = url.searchParams.get("scope") ?? "";
    if (req.method === "POST") {
      if (!auth.oauthPost) return new Response("no OAuth here", { status: 404 });
      const form = new URLSearchParams(await req.text());
      user = form.get("username") ?? undefined;
      password = form.get("password") ?? undefined;
      scope = form.get("scope") ?? "";
    } else {
      const basic = /^Basic (.+)$/.exec(req.headers.get("Authorization") ?? "")?.[1];
      if (basic) [user, password] = atob(basic).split(":");
    }
    if (user !== undefined && auth.users[user] !== password) {
      return new Response("bad credentials", { status: 401 });
    }
    if (user === undefined && !auth.anonymousPull) {
      return new Response("credentials required", { status: 401 });
    }
    const [type, name] = scope.split(":");
    const actions = user !== undefined ? ["pull", "push"] : ["pull"];
    const now = Math.floor(Date.now() / 1000);
    const header = base64url(JSON.stringify({ alg: "RS256", typ: "JWT", x5c: [x5c] }));
    const claims = base64url(JSON.stringify({
      iss: TOKEN_ISSUER,
      sub: user ?? "",
      aud: TOKEN_SERVICE,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: crypto.randomUUID(),
      access: type && name ? [{ type, name, actions }] : [],
    }));
    const signature = new Uint8Array(
      await crypto.subtle.sign(
        "RSASSA-PKCS1-v1_5",
        key,
        new TextEncoder().encode(`${header}.${claims}`),
      ),
    );
    const token = `${header}.${claims}.${base64url(signature)}`;
    return Response.json({ token, access_token: token, expires_in: 300 });
  });
  const { port } = server.addr;
  return { realm: `http://127.0.0.1:${port}/token`, certPath, stop: () => server.shutdown() };
}

/** A proxy in front of a registry that sends blob bodies at about `bytesPerSecond`. */
export interface ThrottledProxy extends AsyncDisposable {
  /** `127.0.0.1:<port>`. */
  host: string;
  /** Every blob request, in order: the digest asked for and its Range header (null when absent). */
  requests: { digest: string; range: string | null }[];
}

/** Starts a {@linkcode ThrottledProxy}; stop it with `await using` or its dispose method. */
export function throttledProxy(registry: TestRegistry, bytesPerSecond: number): ThrottledProxy {
  const requests: { digest: string; range: string | null }[] = [];
  const piece = 64 * 1024;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const upstream = await fetch(`http://${registry.host}${url.pathname}${url.search}`, {
      method: req.method,
      headers: req.headers,
    });
    if (!url.pathname.includes("/blobs/") || req.method !== "GET" || !upstream.body) {
      return upstream;
    }
    requests.push({
      digest: url.pathname.slice(url.pathname.lastIndexOf("/") + 1),
      range: req.headers.get("Range"),
    });
    const reader = upstream.body.getReader();
    let pending = new Uint8Array(0);
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        while (pending.length < piece) {
          const next = await reader.read();
          if (next.done) break;
          const joined = new Uint8Array(pending.length + next.value.length);
          joined.set(pending);
          joined.set(next.value, pending.length);
          pending = joined;
        }
        if (pending.length === 0) return controller.close();
        const out = pending.subarray(0, piece);
        pending = pending.subarray(out.length);
        await new Promise((r) => setTimeout(r, (out.length / bytesPerSecond) * 1000));
        controller.enqueue(out);
      },
      cancel: (reason) => reader.cancel(reason),
    });
    return new Response(body, { status: upstream.status, headers: upstream.headers });
  });
  return {
    host: `127.0.0.1:${server.addr.port}`,
    requests,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}
