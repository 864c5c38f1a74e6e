import assert from "node:assert/strict";
import { MediaType } from "../../lib/oci/media_types.ts";
import { RegistryClient } from "../../lib/registry/client.ts";
import { RegistryError } from "../../lib/registry/errors.ts";
import { assertRejects } from "../asserts.ts";
import type { ImageSpec } from "../oci_archive.ts";
import { startRegistry, type TestRegistry } from "../registry_harness.ts";

const SPEC: ImageSpec = {
  name: "wfe.test/retry:1",
  layers: [[{ type: "file", path: "etc/retry.txt", content: "retried\n" }]],
};

/**
 * A proxy in front of the real registry that answers the first `failures` requests with
 * `status` itself and forwards the rest; it counts every request.
 */
function faultyProxy(
  registry: TestRegistry,
  failures: number,
  status: number,
): { host: string; requests: () => number; [Symbol.asyncDispose](): Promise<void> } {
  let count = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    count++;
    if (count <= failures) return new Response("try later", { status });
    const url = new URL(req.url);
    return fetch(`http://${registry.host}${url.pathname}${url.search}`, {
      method: req.method,
      headers: req.headers,
    });
  });
  return {
    host: `127.0.0.1:${server.addr.port}`,
    requests: () => count,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

Deno.test("RegistryClient retries 503 and 429 answers with backoff and then succeeds", async () => {
  await using registry = await startRegistry();
  const built = await registry.push(SPEC, "team/retry", "1");
  for (const status of [503, 429]) {
    await using proxy = faultyProxy(registry, 2, status);
    const client = new RegistryClient({ retryDelayMs: 5 });
    const { descriptor } = await client.resolve(`${proxy.host}/team/retry:1`);
    assert.equal(descriptor.digest, built.manifestDigest);
    assert.equal(proxy.requests(), 3, `${status}: two refused attempts and one that passed`);
  }
});

Deno.test("RegistryClient reports the last answer once the attempts are used up", async () => {
  await using registry = await startRegistry();
  await using proxy = faultyProxy(registry, 100, 503);
  const client = new RegistryClient({ attempts: 3, retryDelayMs: 1 });
  const err = await assertRejects(
    () => client.resolve(`${proxy.host}/team/retry:1`),
    RegistryError,
    "manifest 1: ",
  );
  assert.equal(err.status, 503);
  assert.match(err.message, /\(HTTP 503\)$/);
  assert.equal(proxy.requests(), 3);
});

Deno.test("RegistryClient does not retry a 404", async () => {
  await using registry = await startRegistry();
  await registry.push(SPEC, "team/retry", "1");
  await using proxy = faultyProxy(registry, 0, 503);
  const client = new RegistryClient({ retryDelayMs: 1 });
  await assertRejects(
    () => client.resolve(`${proxy.host}/team/retry:absent`),
    RegistryError,
    "manifest unknown: absent not found (HTTP 404)",
  );
  assert.equal(proxy.requests(), 1);
});

Deno.test("RegistryClient retries a connection that is refused, then names the URL", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  const started = performance.now();
  await assertRejects(
    () => new RegistryClient({ attempts: 3, retryDelayMs: 20 }).resolve(`127.0.0.1:${port}/a/b:1`),
    RegistryError,
    `cannot reach http://127.0.0.1:${port}/v2/a/b/manifests/1`,
  );
  assert.ok(performance.now() - started >= 55, "two pauses of 20 and 40 ms came first");
  assert.throws(() => new RegistryClient({ attempts: 0 }), {
    name: "RangeError",
    message: "Cannot use attempts 0: expected an integer >= 1",
  });
});

/**
 * A proxy that passes the first `cut` bytes of the first blob download, then either stalls
 * (sends nothing more, connection open) or drops the connection; later requests pass through.
 * It records the Range header of every blob request.
 */
function cuttingProxy(
  registry: TestRegistry,
  cut: number,
  mode: "stall" | "drop",
): { host: string; ranges: (string | null)[]; [Symbol.asyncDispose](): Promise<void> } {
  const ranges: (string | null)[] = [];
  const held: ReadableStreamDefaultController<Uint8Array>[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const upstream = await fetch(`http://${registry.host}${url.pathname}${url.search}`, {
      method: req.method,
      headers: req.headers,
    });
    if (!url.pathname.includes("/blobs/") || req.method !== "GET") return upstream;
    ranges.push(req.headers.get("Range"));
    if (ranges.length > 1) return upstream;
    const bytes = new Uint8Array(await upstream.arrayBuffer()).subarray(0, cut);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes);
        held.push(controller);
        // Dropped once the first bytes are out (an error right away fails the whole answer).
        if (mode === "drop") {
          setTimeout(() => controller.error(new Error("connection dropped on purpose")), 100);
        }
      },
    });
    return new Response(body, { headers: upstream.headers });
  });
  return {
    host: `127.0.0.1:${server.addr.port}`,
    ranges,
    async [Symbol.asyncDispose]() {
      for (const c of held) {
        try {
          c.error(new Error("closing"));
        } catch { /* already errored */ }
      }
      await server.shutdown();
    },
  };
}

const BIG: ImageSpec = {
  name: "wfe.test/stall:1",
  layers: [[{
    type: "file",
    path: "data.bin",
    content: crypto.getRandomValues(new Uint8Array(60_000)),
  }]],
};

for (const mode of ["stall", "drop"] as const) {
  Deno.test(`RegistryClient resumes a blob with Range after a ${mode} mid-answer and verifies the digest`, async () => {
    await using registry = await startRegistry();
    const built = await registry.push(BIG, "team/big", "1");
    await using proxy = cuttingProxy(registry, 20_000, mode);
    const retries: string[] = [];
    const client = new RegistryClient({
      retryDelayMs: 1,
      stallTimeoutMs: 300,
      onBlobRetry: (e) => retries.push(`${e.offset}: ${e.reason}`),
    });
    const provider = client.blobProvider(`${proxy.host}/team/big`);
    const layer = {
      mediaType: MediaType.ociLayerGzip,
      digest: built.layerDigests[0],
      size: built.layerSizes[0],
    };
    const chunks: Uint8Array[] = [];
    for await (const chunk of provider.openBlob(layer, {})) chunks.push(chunk);
    assert.equal(chunks.reduce((n, c) => n + c.length, 0), layer.size);
    assert.deepEqual(proxy.ranges, [null, "bytes=20000-"]);
    assert.equal(retries.length, 1);
    assert.match(
      retries[0],
      mode === "stall"
        ? /^20000: no data for 300 ms at byte 20000$/
        : /^20000: the connection dropped at byte 20000: /,
    );
  });
}
