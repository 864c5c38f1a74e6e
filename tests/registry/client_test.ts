import assert from "node:assert/strict";
import { readImageFiles } from "../../lib/image/files.ts";
import { resolveManifest } from "../../lib/image/manifest.ts";
import { MediaType } from "../../lib/oci/media_types.ts";
import { RegistryClient } from "../../lib/registry/client.ts";
import { RegistryError } from "../../lib/registry/errors.ts";
import { assertRejects } from "../asserts.ts";
import type { ImageSpec } from "../oci_archive.ts";
import { startRegistry } from "../registry_harness.ts";

const SPEC: ImageSpec = {
  name: "wfe.test/hello:1",
  layers: [
    [{ type: "file", path: "etc/hello.txt", content: "hello from the registry\n" }],
    [{ type: "file", path: "etc/second.txt", content: "second layer\n" }],
  ],
};

Deno.test("RegistryClient resolves a pushed tag and a pinned digest to the manifest's descriptor", async () => {
  await using registry = await startRegistry();
  const built = await registry.push(SPEC, "team/hello", "1");
  const client = new RegistryClient();
  const byTag = await client.resolve(`${registry.host}/team/hello:1`);
  assert.equal(byTag.name, `${registry.host}/team/hello:1`);
  assert.deepEqual(byTag.descriptor, {
    mediaType: MediaType.ociManifest,
    digest: built.manifestDigest,
    size: built.manifestSize,
  });
  const byDigest = await client.resolve(`${registry.host}/team/hello@${built.manifestDigest}`);
  assert.equal(byDigest.descriptor.digest, built.manifestDigest);
  assert.equal(byDigest.reference.tag, undefined);
});

Deno.test("RegistryClient names registry, repository and status of an unknown tag or repository", async () => {
  await using registry = await startRegistry();
  await registry.push(SPEC, "team/hello", "1");
  const client = new RegistryClient();
  const err = await assertRejects(
    () => client.resolve(`${registry.host}/team/hello:nope`),
    RegistryError,
    `registry ${registry.host}, repository team/hello: manifest unknown: nope not found (HTTP 404)`,
  );
  assert.equal(err.status, 404);
  await assertRejects(
    () => client.resolve(`${registry.host}/team/absent:1`),
    RegistryError,
    "repository team/absent: manifest unknown",
  );
});

Deno.test("RegistryClient reports a registry that does not answer as unreachable", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  await assertRejects(
    () => new RegistryClient({ retryDelayMs: 1 }).resolve(`127.0.0.1:${port}/team/hello:1`),
    RegistryError,
    `cannot reach http://127.0.0.1:${port}/v2/team/hello/manifests/1`,
  );
});

Deno.test("RegistryClient uses https except for loopback and the plainHttp hosts", () => {
  const client = new RegistryClient({ plainHttp: ["registry.test:5000"] });
  assert.equal(client.endpoint("localhost:5000"), "http://localhost:5000/v2/");
  assert.equal(client.endpoint("127.0.0.1:1234"), "http://127.0.0.1:1234/v2/");
  assert.equal(client.endpoint("registry.test:5000"), "http://registry.test:5000/v2/");
  assert.equal(client.endpoint("other.test"), "https://other.test/v2/");
  assert.equal(new RegistryClient({ plainHttp: true }).endpoint("x.test"), "http://x.test/v2/");
});

Deno.test("a registry blob provider resolves the image and reads its files like the content store", async () => {
  await using registry = await startRegistry();
  const built = await registry.push(SPEC, "team/hello", "1");
  const client = new RegistryClient();
  const { descriptor } = await client.resolve(`${registry.host}/team/hello:1`);
  const provider = client.blobProvider(`${registry.host}/team/hello`);
  const image = await resolveManifest(provider, descriptor);
  assert.equal(image.manifestDigest, built.manifestDigest);
  assert.equal(image.configDigest, built.configDigest);
  assert.deepEqual(image.diffIds, built.diffIds);
  assert.deepEqual(image.layers.map((l) => l.digest), built.layerDigests);
  const files = await readImageFiles(provider, image, ["/etc/hello.txt", "/etc/second.txt"]);
  assert.equal(new TextDecoder().decode(files.get("/etc/hello.txt")), "hello from the registry\n");
  assert.equal(new TextDecoder().decode(files.get("/etc/second.txt")), "second layer\n");
});

Deno.test("a registry blob provider refuses bytes that do not match the descriptor", async () => {
  await using registry = await startRegistry();
  const built = await registry.push(SPEC, "team/hello", "1");
  const provider = new RegistryClient().blobProvider(`${registry.host}/team/hello`);
  const config = { mediaType: MediaType.ociConfig, digest: built.configDigest };
  await assertRejects(
    () => provider.readBlob({ ...config, size: built.configSize - 1 }, { maxBytes: 1 << 20 }),
    RegistryError,
    `blob ${built.configDigest}: more than the ${built.configSize - 1} bytes its descriptor says`,
  );
  await assertRejects(
    () => provider.readBlob({ ...config, size: built.configSize + 1 }, { maxBytes: 1 << 20 }),
    RegistryError,
    `got ${built.configSize} bytes, its descriptor says ${built.configSize + 1}`,
  );
  await assertRejects(
    () => provider.readBlob({ ...config, size: built.configSize }, { maxBytes: 10 }),
    RangeError,
    `its descriptor says ${built.configSize} bytes, more than 10`,
  );
  const missing = `sha256:${"0".repeat(64)}`;
  await assertRejects(
    () => provider.readBlob({ ...config, digest: missing, size: 1 }, { maxBytes: 1 << 20 }),
    RegistryError,
    `blob unknown: ${missing} not found (HTTP 404)`,
  );
});

Deno.test("RegistryClient gets an anonymous Bearer token when the token service allows it", async () => {
  await using registry = await startRegistry({
    tokenAuth: { users: { alice: "s3cret" }, anonymousPull: true, oauthPost: true },
  });
  const built = await registry.push(SPEC, "team/hello", "1");
  const client = new RegistryClient();
  const { descriptor } = await client.resolve(`${registry.host}/team/hello:1`);
  assert.equal(descriptor.digest, built.manifestDigest);
  const image = await resolveManifest(
    client.blobProvider(`${registry.host}/team/hello`),
    descriptor,
  );
  assert.deepEqual(image.diffIds, built.diffIds);
});

Deno.test("RegistryClient says whether credentials were missing or rejected, never showing them", async () => {
  await using registry = await startRegistry({
    tokenAuth: { users: { alice: "s3cret" }, anonymousPull: false, oauthPost: true },
  });
  const built = await registry.push(SPEC, "team/hello", "1");
  const ref = `${registry.host}/team/hello:1`;
  await assertRejects(
    () => new RegistryClient().resolve(ref),
    RegistryError,
    `unauthorized: no credentials for ${registry.host} found (the token service answered HTTP 401)`,
  );
  const wrong = await assertRejects(
    () =>
      new RegistryClient({
        registryAuth: { [registry.host]: { username: "alice", password: "nope" } },
      }).resolve(ref),
    RegistryError,
    `unauthorized: credentials for ${registry.host} were rejected by the token service (HTTP 401)`,
  );
  assert.ok(!wrong.message.includes("nope"), "the password is not in the message");
  const client = new RegistryClient({
    registryAuth: { [registry.host]: { username: "alice", password: "s3cret" } },
  });
  const { descriptor } = await client.resolve(ref);
  assert.equal(descriptor.digest, built.manifestDigest);
});

Deno.test("RegistryClient falls back to GET with Basic credentials when the OAuth POST is refused", async () => {
  await using registry = await startRegistry({
    tokenAuth: { users: { alice: "s3cret" }, anonymousPull: false, oauthPost: false },
  });
  const built = await registry.push(SPEC, "team/hello", "1");
  const client = new RegistryClient({
    registryAuth: { "127.0.0.1": { username: "alice", password: "s3cret" } },
  });
  const { descriptor } = await client.resolve(`${registry.host}/team/hello:1`);
  assert.equal(descriptor.digest, built.manifestDigest);
  const files = await readImageFiles(
    client.blobProvider(`${registry.host}/team/hello`),
    await resolveManifest(client.blobProvider(`${registry.host}/team/hello`), descriptor),
    ["/etc/hello.txt"],
  );
  assert.equal(new TextDecoder().decode(files.get("/etc/hello.txt")), "hello from the registry\n");
});
