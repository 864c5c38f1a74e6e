import assert from "node:assert/strict";
import { sha256Digest } from "../../lib/content/digest.ts";
import { readAllContent } from "../../lib/content/read.ts";
import { connect } from "../../lib/grpc/connection.ts";
import { containerdTest, type HarnessInfo, lookPath } from "../harness.ts";

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

async function waitForPort(port: number, deadlineMs = 5000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (true) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

/** socat forwarding 127.0.0.1:<port> to the daemon's socket, as in a Lima VM; stopped by PID. */
async function withSocat(h: HarnessInfo, fn: (port: number) => Promise<void>): Promise<void> {
  const port = freePort();
  const child = new Deno.Command(lookPath("socat") ?? "socat", {
    args: [`TCP4-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr`, `UNIX-CONNECT:${h.address}`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await waitForPort(port);
    await fn(port);
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}

containerdTest("tcp:// and http:// reach containerd through a socat proxy", async (h) => {
  await withSocat(h, async (port) => {
    for (const address of [`tcp://127.0.0.1:${port}`, `http://127.0.0.1:${port}`]) {
      await using c = await connect(address, { namespace: h.namespace });
      assert.equal(c.serverVersion.version, h.version);
      assert.equal(c.address.transport, "tcp");
      const manifest = await readAllContent(c, h.images.oneLayer.manifestDigest);
      assert.equal(await sha256Digest(manifest), h.images.oneLayer.manifestDigest);
    }
  });
});

const openssl = lookPath("openssl");

/**
 * A TLS terminator with ALPN h2 in front of the daemon's socket, so the client's
 * https:// path talks real TLS to a real containerd.
 */
containerdTest("https:// with a CA file reaches containerd through a TLS terminator", async (h) => {
  assert.ok(openssl, "openssl is required for this test");
  const dir = await Deno.makeTempDir({ prefix: "wfe-tls-" });
  try {
    const out = await new Deno.Command(openssl!, {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        // A server certificate, not a CA (rustls refuses a CA certificate as the server's).
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const listener = Deno.listenTls({
      hostname: "127.0.0.1",
      port: 0,
      cert: await Deno.readTextFile(`${dir}/cert.pem`),
      key: await Deno.readTextFile(`${dir}/key.pem`),
      alpnProtocols: ["h2"],
    });
    const pipes: Promise<unknown>[] = [];
    const serving = (async () => {
      try {
        for await (const conn of listener) {
          const upstream = await Deno.connect({ transport: "unix", path: h.address });
          pipes.push(
            conn.readable.pipeTo(upstream.writable).catch(() => {}),
            upstream.readable.pipeTo(conn.writable).catch(() => {}),
          );
        }
      } catch { /* listener closed */ }
    })();
    try {
      const address = `https://localhost:${listener.addr.port}`;
      await using c = await connect(address, {
        namespace: h.namespace,
        tls: { ca: `${dir}/cert.pem` },
      });
      assert.equal(c.serverVersion.version, h.version);
      const { image } = await c.images.get({ name: h.images.threeLayer.name });
      assert.equal(image?.target?.digest, h.images.threeLayer.manifestDigest);
      // Without the CA the server's certificate is not trusted.
      await assert.rejects(
        () => connect(address, { namespace: h.namespace, connectTimeoutMs: 1500 }),
        /cannot connect to containerd/,
      );
    } finally {
      listener.close();
      await serving;
      await Promise.all(pipes);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
