import assert from "node:assert/strict";
import { sha256Digest } from "../../lib/content/digest.ts";
import { readAllContent } from "../../lib/content/read.ts";
import { connect, type ContainerdClient } from "../../lib/grpc/connection.ts";
import { ContainerdError, GrpcCode, isNotFound } from "../../lib/grpc/errors.ts";
import { assertExists, assertInstanceOf, assertRejects } from "../asserts.ts";
import { containerdTest, type HarnessInfo } from "../harness.ts";

async function client(h: HarnessInfo): Promise<ContainerdClient> {
  return await connect(`unix://${h.address}`, { namespace: h.namespace });
}

containerdTest("connect() checks the version and reports the server's", async (h) => {
  await using c = await client(h);
  assert.equal(c.serverVersion.version, h.version);
  const again = await c.version.version({});
  assert.equal(again.version, h.version);
  assert.ok(again.revision.length > 0);
});

containerdTest(
  "Introspection.Plugins lists the harness snapshotter without init error",
  async (h) => {
    await using c = await client(h);
    const { plugins } = await c.introspection.plugins({
      filters: ["type==io.containerd.snapshotter.v1"],
    });
    const usable = plugins.filter((p) => p.initErr === null).map((p) => p.id);
    assert.ok(usable.includes(h.snapshotter), `usable snapshotters: ${usable.join(", ")}`);
    const broken = plugins.find((p) => p.initErr !== null);
    if (broken) assert.ok(broken.initErr!.message.length > 0);
  },
);

containerdTest("Images.Get returns the test images with the digests ctr imported", async (h) => {
  await using c = await client(h);
  for (const facts of [h.images.oneLayer, h.images.threeLayer]) {
    const { image } = await c.images.get({ name: facts.name });
    assertExists(image);
    assert.equal(image.name, facts.name);
    assert.equal(image.target!.digest, facts.manifestDigest);
    assert.ok(image.createdAt!.seconds > 0);
  }
  const { images } = await c.images.list({ filters: [`name==${h.images.threeLayer.name}`] });
  assert.deepEqual(images.map((i) => i.name), [h.images.threeLayer.name]);
});

containerdTest(
  "Content.Read of a manifest hashes to its digest and names its layers",
  async (h) => {
    await using c = await client(h);
    const facts = h.images.threeLayer;
    const bytes = await readAllContent(c, facts.manifestDigest, { verify: false });
    assert.equal(await sha256Digest(bytes), facts.manifestDigest);
    const manifest = JSON.parse(new TextDecoder().decode(bytes));
    assert.equal(manifest.config.digest, facts.configDigest);
    assert.deepEqual(manifest.layers.map((l: { digest: string }) => l.digest), facts.layerDigests);
  },
);

containerdTest("a missing image is a ContainerdError with code 5 naming the method", async (h) => {
  await using c = await client(h);
  try {
    await c.images.get({ name: "wfe.test/none:missing" });
    assert.fail("Images.Get of a missing image succeeded");
  } catch (e) {
    assertInstanceOf(e, ContainerdError);
    assert.equal(e.code, GrpcCode.NOT_FOUND);
    assert.equal(e.method, "Images.Get");
    assert.match(e.message, /wfe\.test\/none:missing/);
    assert.ok(isNotFound(e));
  }
});

containerdTest("Leases create, list and delete", async (h) => {
  await using c = await client(h);
  const id = `test-${crypto.randomUUID()}`;
  const { lease } = await c.leases.create({ id, labels: { "wfe.test/purpose": "lease-test" } });
  assert.equal(lease!.id, id);
  const listed = await c.leases.list({ filters: [`id==${id}`] });
  assert.deepEqual(listed.leases.map((l) => [l.id, l.labels["wfe.test/purpose"]]), [[
    id,
    "lease-test",
  ]]);
  await c.leases.delete({ id, sync: true });
  const after = await c.leases.list({ filters: [`id==${id}`] });
  assert.equal(after.leases.length, 0);
  await assertRejects(() => c.leases.delete({ id }), ContainerdError, "NOT_FOUND");
});

containerdTest("the namespace header selects what a call sees", async (h) => {
  await using c = await client(h);
  const other = c.withNamespace(`wfe-empty-${Date.now()}`);
  const { images } = await other.images.list({});
  assert.equal(images.length, 0);
  const ours = await c.images.list({});
  assert.ok(ours.images.length >= 2);
  const perCall = await c.images.list({}, { namespace: other.namespace });
  assert.equal(perCall.images.length, 0);
  await c.namespaces.delete({ name: other.namespace }).catch(() => {});
});

containerdTest(
  "breaking out of a server stream cancels it and the client stays usable",
  async (h) => {
    await using c = await client(h);
    let seen = 0;
    for await (const batch of c.content.list({})) {
      seen += batch.info.length;
      break;
    }
    assert.ok(seen > 0);
    const again = await c.version.version({});
    assert.equal(again.version, h.version);
  },
);

containerdTest("an aborted signal rejects a call with the signal's reason", async (h) => {
  await using c = await client(h);
  const controller = new AbortController();
  controller.abort(new DOMException("stop now", "AbortError"));
  await assert.rejects(
    () => c.version.version({}, { signal: controller.signal }),
    (e: unknown) => e === controller.signal.reason,
  );
  const reader = c.content.read({ digest: h.images.oneLayer.layerDigests[0] }, {
    signal: AbortSignal.abort(),
  });
  await assert.rejects(async () => {
    for await (const _ of reader) { /* nothing */ }
  }, DOMException);
});

containerdTest("a closed client fails calls and close() is idempotent", async (h) => {
  const c = await client(h);
  c.close();
  c.close();
  assert.ok(c.closed);
  await assert.rejects(() => c.version.version({}), ContainerdError);
});

// ---------------------------------------------------------------------------------------------
// Bad addresses need no daemon.

Deno.test("connect() to a port where nothing listens fails at once as UNAVAILABLE", async () => {
  const started = Date.now();
  try {
    await connect("tcp://127.0.0.1:1", { connectTimeoutMs: 3000 });
    assert.fail("connected to port 1");
  } catch (e) {
    assertInstanceOf(e, ContainerdError);
    assert.equal(e.code, GrpcCode.UNAVAILABLE);
    assert.equal(e.method, "connect");
    assert.match(e.message, /tcp:\/\/127\.0\.0\.1:1: connection refused/);
  }
  assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
});

Deno.test("connect() to a missing socket says so before dialing", async () => {
  await assertRejects(
    () => connect("/nonexistent.sock"),
    ContainerdError,
    "containerd socket not found: /nonexistent.sock",
  );
});

Deno.test("connect() to an ftp:// address is a TypeError naming the scheme", async () => {
  await assertRejects(() => connect("ftp://x"), TypeError, "unsupported scheme 'ftp'");
});

Deno.test("connect() to a TCP peer that never speaks HTTP/2 fails within the deadline", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  const acceptLoop = (async () => {
    try {
      for await (const conn of listener) accepted.push(conn);
    } catch { /* listener closed */ }
  })();
  const started = Date.now();
  try {
    await assertRejects(
      () => connect(`tcp://127.0.0.1:${listener.addr.port}`, { connectTimeoutMs: 700 }),
      ContainerdError,
      "within 700 ms",
    );
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 600 && elapsed < 2500, `took ${elapsed} ms`);
  } finally {
    listener.close();
    await acceptLoop;
    for (const conn of accepted) conn.close();
  }
});
