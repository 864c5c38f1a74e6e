import assert from "node:assert/strict";
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
