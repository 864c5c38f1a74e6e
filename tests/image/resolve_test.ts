import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { withLease } from "../../lib/content/lease.ts";
import { writeContent } from "../../lib/content/write.ts";
import { connect, type ContainerdClient } from "../../lib/grpc/connection.ts";
import { ContainerdError, GrpcCode } from "../../lib/grpc/errors.ts";
import { clearImageCache, imageCacheStats } from "../../lib/image/manifest.ts";
import { imageExists, resolveImage } from "../../lib/image/resolve.ts";
import { MediaType } from "../../lib/oci/media_types.ts";
import { parsePlatform } from "../../lib/oci/platform.ts";
import {
  DEFAULT_DOMAIN,
  imageNameCandidates,
  normalizeImageName,
} from "../../lib/oci/reference.ts";
import { assertInstanceOf, assertRejects, assertThrows } from "../asserts.ts";
import { containerdTest, type HarnessInfo, type ImageFacts } from "../harness.ts";
import { Kind } from "../../proto/gen/types.ts";

const HEX = "0123456789abcdef".repeat(4);

// ---------------------------------------------------------------------------------------------
// names (no daemon)

Deno.test("normalizeImageName() adds docker.io, library/ and :latest like Docker", () => {
  const cases: [string, string][] = [
    ["alpine", "docker.io/library/alpine:latest"],
    ["alpine:3.18", "docker.io/library/alpine:3.18"],
    ["user/app", "docker.io/user/app:latest"],
    ["user/app:v1.2", "docker.io/user/app:v1.2"],
    ["docker.io/alpine", "docker.io/library/alpine:latest"],
    ["index.docker.io/library/alpine:edge", "docker.io/library/alpine:edge"],
    ["docker.io/library/alpine:latest", "docker.io/library/alpine:latest"],
    ["host:5000/x", "host:5000/x:latest"],
    ["host:5000/x:1", "host:5000/x:1"],
    ["localhost/app", "localhost/app:latest"],
    ["ghcr.io/org/team/app", "ghcr.io/org/team/app:latest"],
    ["wfe.test/busybox:one-layer", "wfe.test/busybox:one-layer"],
    [`alpine@sha256:${HEX}`, `docker.io/library/alpine@sha256:${HEX}`],
    [`alpine:3.18@sha256:${HEX}`, `docker.io/library/alpine:3.18@sha256:${HEX}`],
    [`quay.io/a/b@sha256:${HEX}`, `quay.io/a/b@sha256:${HEX}`],
    ["my_org/my-app__x", "docker.io/my_org/my-app__x:latest"],
  ];
  for (const [ref, expected] of cases) assert.equal(normalizeImageName(ref), expected, ref);
  assert.equal(DEFAULT_DOMAIN, "docker.io");
});

Deno.test("normalizeImageName() explains what is wrong with a reference", () => {
  const cases: [string, string][] = [
    ["", "Cannot parse image reference '': it is empty"],
    ["alpine latest", "it contains white space"],
    ["Alpine", "Cannot parse image reference 'Alpine': repository 'Alpine' must be lower case"],
    ["alpine:", "tag '' is not valid"],
    ["alpine:-x", "tag '-x' is not valid"],
    ["alpine@sha256:xyz", "'sha256:xyz' is not a digest"],
    ["ghcr.io/", "the repository is empty"],
    ["user/-app", "repository component '-app' is not valid"],
    ["bad_host.io:port/x", "'bad_host.io:port' is not a valid registry"],
  ];
  for (const [ref, message] of cases) {
    assertThrows(() => normalizeImageName(ref), TypeError, message);
  }
});

Deno.test("imageNameCandidates() tries the reference as given, then its normalised form", () => {
  assert.deepEqual(imageNameCandidates("alpine"), ["alpine", "docker.io/library/alpine:latest"]);
  assert.deepEqual(imageNameCandidates("host:5000/x"), ["host:5000/x", "host:5000/x:latest"]);
  assert.deepEqual(imageNameCandidates("docker.io/library/alpine:3"), [
    "docker.io/library/alpine:3",
  ]);
  assert.deepEqual(imageNameCandidates("Some Odd Name"), ["Some Odd Name"]);
  assertThrows(() => imageNameCandidates(""), TypeError, "it is empty");
});

// ---------------------------------------------------------------------------------------------
// against containerd

async function client(h: HarnessInfo): Promise<ContainerdClient> {
  return await connect(`unix://${h.address}`, { namespace: h.namespace });
}

/** The chain ID rule, written independently with node:crypto. */
function expectedChainId(diffIds: readonly string[]): string {
  let id = diffIds[0];
  for (const diffId of diffIds.slice(1)) {
    id = `sha256:${createHash("sha256").update(`${id} ${diffId}`).digest("hex")}`;
  }
  return id;
}

/** A view of `c` that counts Content.Info and Content.Read calls per digest. */
function countingReads(
  c: ContainerdClient,
): { client: ContainerdClient; reads: Map<string, number> } {
  const reads = new Map<string, number>();
  const count = (digest: string) => reads.set(digest, (reads.get(digest) ?? 0) + 1);
  const content = new Proxy(c.content, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop !== "read" && prop !== "info") return value;
      return (request: { digest: string }, ...rest: unknown[]) => {
        count(request.digest);
        return (value as (...args: unknown[]) => unknown).call(target, request, ...rest);
      };
    },
  });
  const view = new Proxy(c, {
    get(target, prop) {
      return prop === "content" ? content : Reflect.get(target, prop, target);
    },
  });
  return { client: view, reads };
}

async function checkResolved(c: ContainerdClient, h: HarnessInfo, facts: ImageFacts) {
  const image = await resolveImage(c, facts.name);
  assert.equal(image.name, facts.name);
  assert.deepEqual(image.target, {
    mediaType: MediaType.ociManifest,
    digest: facts.manifestDigest,
    size: facts.manifestSize,
  });
  assert.equal(image.manifestDigest, facts.manifestDigest);
  assert.equal(image.configDigest, facts.configDigest);
  assert.deepEqual(image.diffIds, facts.diffIds);
  assert.deepEqual(image.layers.map((l) => l.digest), facts.layerDigests);
  assert.deepEqual(image.layers.map((l) => l.size), facts.layerSizes);
  assert.equal(image.manifest.layers.length, facts.layerDigests.length);
  assert.deepEqual(image.config.config?.Cmd, ["/bin/sh"]);
  assert.deepEqual(image.platform, parsePlatform(facts.platform));
  assert.equal(image.chainId, expectedChainId(facts.diffIds));
  const { info } = await c.snapshots.stat({ snapshotter: h.snapshotter, key: image.chainId });
  assert.equal(info?.name, image.chainId);
  assert.equal(info?.kind, Kind.COMMITTED);
}

containerdTest("resolveImage() of the one-layer image matches what ctr imported", async (h) => {
  await using c = await client(h);
  await checkResolved(c, h, h.images.oneLayer);
  assert.equal(h.images.oneLayer.diffIds.length, 1);
});

containerdTest("resolveImage() of the three-layer image matches what ctr imported", async (h) => {
  await using c = await client(h);
  await checkResolved(c, h, h.images.threeLayer);
  assert.equal(h.images.threeLayer.diffIds.length, 3);
});

containerdTest(
  "resolveImage() of a missing image is NOT_FOUND naming the names tried",
  async (h) => {
    await using c = await client(h);
    const ref = `wfe-missing-${crypto.randomUUID().slice(0, 8)}`;
    try {
      await resolveImage(c, ref);
      assert.fail("resolved a missing image");
    } catch (e) {
      assertInstanceOf(e, ContainerdError);
      assert.equal(e.code, GrpcCode.NOT_FOUND);
      assert.equal(e.method, "Images.Get");
      assert.match(e.message, new RegExp(`'${ref}', 'docker\\.io/library/${ref}:latest'`));
      assert.match(e.message, /namespace 'wfe-test'/);
      assertInstanceOf(e.cause, ContainerdError);
      assert.equal(e.cause.code, GrpcCode.NOT_FOUND);
    }
    assert.equal(await imageExists(c, ref), undefined);
    assert.equal(await imageExists(c, h.images.oneLayer.name), h.images.oneLayer.name);
  },
);

containerdTest("resolveImage() reads manifest and config once per target digest", async (h) => {
  await using c = await client(h);
  const { client: counted, reads } = countingReads(c);
  const facts = h.images.threeLayer;
  clearImageCache();
  const first = await resolveImage(counted, facts.name);
  assert.deepEqual(imageCacheStats(), {
    hits: 0,
    misses: 1,
    entries: 1,
    bytes: facts.configSize,
  });
  const configReads = reads.get(facts.configDigest) ?? 0;
  const manifestReads = reads.get(facts.manifestDigest) ?? 0;
  assert.ok(configReads > 0 && manifestReads > 0, "the first resolve reads both");
  const second = await resolveImage(counted, facts.name);
  assert.equal(reads.get(facts.configDigest), configReads, "the second resolve reads no config");
  assert.equal(reads.get(facts.manifestDigest), manifestReads, "nor the manifest");
  assert.equal(imageCacheStats().hits, 1);
  assert.equal(imageCacheStats().misses, 1);
  assert.equal(second.chainId, first.chainId);
  assert.deepEqual(second.config, first.config);
  clearImageCache();
  assert.deepEqual(imageCacheStats(), { hits: 0, misses: 0, entries: 0, bytes: 0 });
});

containerdTest("resolveImage() finds an image stored under its normalised name", async (h) => {
  await using c = await client(h);
  const short = `wfe-alias-${crypto.randomUUID().slice(0, 8)}`;
  const stored = `docker.io/library/${short}:latest`;
  const { image } = await c.images.get({ name: h.images.oneLayer.name });
  await c.images.create({ image: { name: stored, target: image!.target } });
  try {
    const resolved = await resolveImage(c, short);
    assert.equal(resolved.name, stored);
    assert.equal(resolved.manifestDigest, h.images.oneLayer.manifestDigest);
    assert.equal(await imageExists(c, short), stored);
    assert.equal(await imageExists(c, `${short}:latest`), stored);
  } finally {
    await c.images.delete({ name: stored });
  }
});

containerdTest("resolveImage() narrows an index to the platform's manifest", async (h) => {
  await using c = await client(h);
  const facts = h.images.threeLayer;
  const host = parsePlatform(facts.platform);
  const other = host.architecture === "arm64"
    ? { os: "linux", architecture: "amd64" }
    : { os: "linux", architecture: "arm64", variant: "v8" };
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      {
        mediaType: MediaType.ociManifest,
        digest: `sha256:${"0".repeat(64)}`, // never read: another platform
        size: 1,
        platform: other,
      },
      {
        mediaType: MediaType.ociManifest,
        digest: facts.manifestDigest,
        size: facts.manifestSize,
        platform: host,
      },
      {
        mediaType: MediaType.ociManifest,
        digest: `sha256:${"a".repeat(64)}`,
        size: 1,
        platform: { os: "unknown", architecture: "unknown" },
        annotations: { "vnd.docker.reference.type": "attestation-manifest" },
      },
    ],
  };
  const bytes = new TextEncoder().encode(JSON.stringify(index));
  const name = `wfe.test/index-${crypto.randomUUID().slice(0, 8)}:multi`;
  await withLease(c, async (leased) => {
    const { digest } = await writeContent(leased, bytes);
    await c.images.create({
      image: { name, target: { mediaType: MediaType.ociIndex, digest, size: bytes.length } },
    });
    try {
      const resolved = await resolveImage(c, name, { platform: facts.platform });
      assert.deepEqual(resolved.target, {
        mediaType: MediaType.ociIndex,
        digest,
        size: bytes.length,
      });
      assert.equal(resolved.manifestDigest, facts.manifestDigest);
      assert.equal(resolved.chainId, expectedChainId(facts.diffIds));
      const byDefault = await resolveImage(c, name);
      assert.equal(byDefault.manifestDigest, facts.manifestDigest);

      try {
        await resolveImage(c, name, { platform: "linux/riscv64" });
        assert.fail("resolved linux/riscv64");
      } catch (e) {
        assertInstanceOf(e, ContainerdError);
        assert.equal(e.code, GrpcCode.NOT_FOUND);
        assert.match(e.message, /has no manifest for linux\/riscv64/);
        assert.match(e.message, new RegExp(`index ${digest}: it offers .*${facts.platform}`));
        assert.match(e.message, /unknown\/unknown/);
      }
    } finally {
      await c.images.delete({ name });
    }
  });
});

containerdTest(
  "resolveImage() checks a plain manifest's platform against the wanted one",
  async (h) => {
    await using c = await client(h);
    const facts = h.images.oneLayer;
    const wrong = parsePlatform(facts.platform).architecture === "s390x"
      ? "linux/ppc64le"
      : "linux/s390x";
    await assertRejects(
      () => resolveImage(c, facts.name, { platform: wrong }),
      ContainerdError,
      `manifest ${facts.manifestDigest} is ${facts.platform}`,
    );
    await assertRejects(
      () => resolveImage(c, facts.name, { platform: "s390x" }),
      TypeError,
      "Cannot parse platform 's390x'",
    );
  },
);

containerdTest("resolveImage() names the manifest when layers and diff IDs disagree", async (h) => {
  await using c = await client(h);
  const three = h.images.threeLayer;
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: three.configDigest, size: three.configSize },
    layers: [{
      mediaType: MediaType.ociLayerGzip,
      digest: three.layerDigests[0],
      size: three.layerSizes[0],
    }],
  };
  const bytes = new TextEncoder().encode(JSON.stringify(manifest));
  const name = `wfe.test/broken-${crypto.randomUUID().slice(0, 8)}:mismatch`;
  await withLease(c, async (leased) => {
    const { digest } = await writeContent(leased, bytes);
    await c.images.create({
      image: { name, target: { mediaType: MediaType.ociManifest, digest, size: bytes.length } },
    });
    try {
      await assert.rejects(() => resolveImage(c, name), {
        name: "TypeError",
        message: `Cannot resolve image '${name}': manifest ${digest} has 1 tar layer(s) but its ` +
          `config ${three.configDigest} has 3 diff ID(s)`,
      });
    } finally {
      await c.images.delete({ name });
    }
  });
});

containerdTest("resolveImage() names the blob whose descriptor has the wrong size", async (h) => {
  await using c = await client(h);
  const facts = h.images.oneLayer;
  const name = `wfe.test/badsize-${crypto.randomUUID().slice(0, 8)}:x`;
  await c.images.create({
    image: {
      name,
      target: {
        mediaType: MediaType.ociManifest,
        digest: facts.manifestDigest,
        size: facts.manifestSize + 1,
      },
    },
  });
  try {
    await assertRejects(
      () => resolveImage(c, name),
      TypeError,
      `Cannot resolve image '${name}': manifest ${facts.manifestDigest}: the descriptor says ` +
        `${facts.manifestSize + 1} bytes, the blob has ${facts.manifestSize}`,
    );
  } finally {
    await c.images.delete({ name });
  }
});

containerdTest("resolveImage() with an aborted signal rejects with its reason", async (h) => {
  await using c = await client(h);
  const controller = new AbortController();
  controller.abort(new DOMException("stop", "AbortError"));
  await assert.rejects(
    () => resolveImage(c, h.images.oneLayer.name, { signal: controller.signal }),
    (e: unknown) => e === controller.signal.reason,
  );
});
