import assert from "node:assert/strict";
import { parseImageConfig, parseIndex, parseManifest } from "../../lib/oci/documents.ts";
import { MediaType } from "../../lib/oci/media_types.ts";
import { formatPlatform, parsePlatform, selectManifest } from "../../lib/oci/platform.ts";
import { assertThrows } from "../asserts.ts";
import { AMD64, ARMV7, digestOf, DOC, encoder, json, multiArch } from "./_fixtures.ts";

const CONFIG = digestOf("c");
const LAYERS = [digestOf("1"), digestOf("2"), digestOf("3")];

function ociManifest(): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: CONFIG, size: 1234 },
    layers: LAYERS.map((digest, i) => ({
      mediaType: MediaType.ociLayerGzip,
      digest,
      size: 1000 * (i + 1),
    })),
    annotations: { "org.opencontainers.image.created": "2024-01-01T00:00:00Z" },
  };
}

/** Shaped like `docker manifest inspect --verbose` of a Docker Hub image. */
function dockerManifest(): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: MediaType.dockerManifest,
    config: { mediaType: MediaType.dockerConfig, size: 1472, digest: CONFIG },
    layers: [
      { mediaType: MediaType.dockerLayerGzip, size: 3408729, digest: LAYERS[0] },
      { mediaType: MediaType.dockerLayerForeignGzip, size: 10, digest: LAYERS[1] },
    ],
  };
}

/** Shaped like a Docker-built config: nulls for unset fields, container_config, history. */
function dockerConfig(): Record<string, unknown> {
  return {
    architecture: "amd64",
    config: {
      Hostname: "",
      User: "",
      AttachStdin: false,
      ExposedPorts: { "80/tcp": {} },
      Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      Cmd: ["nginx", "-g", "daemon off;"],
      Image: "sha256:" + "e".repeat(64),
      Volumes: null,
      WorkingDir: "",
      Entrypoint: ["/docker-entrypoint.sh"],
      OnBuild: null,
      Labels: { maintainer: "NGINX Docker Maintainers" },
      StopSignal: "SIGQUIT",
    },
    container_config: { Cmd: ["/bin/sh", "-c", "#(nop) "] },
    created: "2023-08-16T09:50:55.765544033Z",
    docker_version: "20.10.23",
    history: [
      { created: "2023-08-07T19:20:20.894140623Z", created_by: "/bin/sh -c #(nop) ADD file" },
      { created: "2023-08-07T19:20:21Z", created_by: 'CMD ["sh"]', empty_layer: true },
    ],
    os: "linux",
    rootfs: { type: "layers", diff_ids: [digestOf("a"), digestOf("b")] },
  };
}

Deno.test("parseManifest() returns an OCI manifest's config and layers", () => {
  const m = parseManifest(json(ociManifest()), DOC);
  assert.equal(m.schemaVersion, 2);
  assert.equal(m.mediaType, MediaType.ociManifest);
  assert.deepEqual(m.config, { mediaType: MediaType.ociConfig, digest: CONFIG, size: 1234 });
  assert.deepEqual(m.layers.map((l) => l.digest), LAYERS);
  assert.deepEqual(m.layers.map((l) => l.size), [1000, 2000, 3000]);
});

Deno.test("parseManifest() accepts a Docker schema 2 manifest with foreign layers", () => {
  const m = parseManifest(json(dockerManifest()), DOC, { mediaType: MediaType.dockerManifest });
  assert.equal(m.config.mediaType, MediaType.dockerConfig);
  assert.deepEqual(m.layers.map((l) => l.mediaType), [
    MediaType.dockerLayerGzip,
    MediaType.dockerLayerForeignGzip,
  ]);
});

Deno.test("parseManifest() accepts a manifest without a mediaType field", () => {
  const doc = ociManifest();
  delete doc.mediaType;
  const m = parseManifest(json(doc), DOC, { mediaType: MediaType.ociManifest });
  assert.equal(m.mediaType, undefined);
  assert.equal(m.layers.length, 3);
});

Deno.test("parseManifest() names the digest and the layer whose digest is malformed", () => {
  const doc = ociManifest();
  (doc.layers as Record<string, unknown>[])[2].digest = "x";
  assert.throws(() => parseManifest(json(doc), DOC), {
    name: "TypeError",
    message: `manifest ${DOC}: layers[2].digest is not a digest: 'x'`,
  });
});

Deno.test("parseManifest() rejects malformed descriptors field by field", () => {
  const cases: [(doc: Record<string, unknown>) => void, string][] = [
    [(d) => delete d.config, "config is missing"],
    [(d) => d.config = "sha256:abc", "config is a string, expected an object"],
    [
      (d) => (d.config as Record<string, unknown>).size = -1,
      "config.size is -1, expected an integer >= 0",
    ],
    [
      (d) => (d.config as Record<string, unknown>).size = 1.5,
      "config.size is 1.5, expected an integer >= 0",
    ],
    [(d) => delete (d.config as Record<string, unknown>).mediaType, "config.mediaType is missing"],
    [(d) => delete d.layers, "layers is missing"],
    [(d) => d.layers = {}, "layers is an object, expected an array"],
    [(d) => (d.layers as unknown[])[1] = null, "layers[1] is null, expected an object"],
    [
      (d) => (d.layers as Record<string, unknown>[])[0].digest = "sha256:" + "A".repeat(64),
      "layers[0].digest is not a digest: 'sha256:AAAA",
    ],
    [(d) => (d.layers as Record<string, unknown>[])[0].size = "12", "layers[0].size is '12'"],
    [(d) => d.annotations = { a: 1 }, 'annotations["a"] is a number, expected a string'],
  ];
  for (const [mutate, message] of cases) {
    const doc = ociManifest();
    mutate(doc);
    assert.throws(
      () => parseManifest(json(doc), DOC),
      (e: unknown) => e instanceof TypeError && e.message.startsWith(`manifest ${DOC}: ${message}`),
      message,
    );
  }
});

Deno.test("parseManifest() checks the schema version and media type", () => {
  const wrongVersion = { ...ociManifest(), schemaVersion: 3 };
  assertThrows(
    () => parseManifest(json(wrongVersion), DOC),
    TypeError,
    "schemaVersion is 3, expected 2",
  );
  const noVersion = ociManifest();
  delete noVersion.schemaVersion;
  assertThrows(() => parseManifest(json(noVersion), DOC), TypeError, "schemaVersion is missing");
  const index = { ...ociManifest(), mediaType: MediaType.ociIndex };
  assertThrows(
    () => parseManifest(json(index), DOC),
    TypeError,
    `mediaType is '${MediaType.ociIndex}', expected '${MediaType.ociManifest}' or`,
  );
  assertThrows(
    () => parseManifest(json(ociManifest()), DOC, { mediaType: MediaType.dockerManifest }),
    TypeError,
    `mediaType is '${MediaType.ociManifest}', but the descriptor says '${MediaType.dockerManifest}'`,
  );
  assertThrows(
    () => parseManifest(json(ociManifest()), DOC, { mediaType: MediaType.ociConfig }),
    TypeError,
    `manifest ${DOC}: media type '${MediaType.ociConfig}' is not`,
  );
  const withManifests = { ...ociManifest(), manifests: [] };
  assertThrows(() => parseManifest(json(withManifests), DOC), TypeError, "manifests is present");
});

Deno.test("parseManifest() refuses Docker schema 1 with a clear message", () => {
  const schema1 = {
    schemaVersion: 1,
    name: "library/old",
    tag: "latest",
    fsLayers: [{ blobSum: digestOf("1") }],
  };
  assertThrows(
    () => parseManifest(json(schema1), DOC),
    TypeError,
    "Docker schema 1 images are not supported",
  );
  const signed = {
    ...schema1,
    mediaType: "application/vnd.docker.distribution.manifest.v1+prettyjws",
  };
  assertThrows(() => parseManifest(json(signed), DOC), TypeError, "Docker schema 1");
});

Deno.test("parseManifest() reports bytes that are not JSON as a SyntaxError naming the digest", () => {
  assertThrows(
    () => parseManifest(encoder.encode("{not json"), DOC),
    SyntaxError,
    `manifest ${DOC}: not a JSON document`,
  );
  assertThrows(
    () => parseManifest(new Uint8Array([0x7b, 0xff, 0x7d]), DOC),
    SyntaxError,
    `manifest ${DOC}`,
  );
  assertThrows(
    () => parseManifest(json([1, 2]), DOC),
    TypeError,
    `manifest ${DOC}: the document is an array, expected an object`,
  );
});

// ---------------------------------------------------------------------------------------------
// indexes

Deno.test("parseIndex() returns the entries of an OCI index with their platforms", () => {
  const index = parseIndex(json(multiArch), DOC, { mediaType: MediaType.ociIndex });
  assert.deepEqual(index.manifests.map((m) => m.platform && formatPlatform(m.platform)), [
    "linux/amd64",
    "linux/arm64/v8",
    "linux/arm/v7",
  ]);
});

Deno.test("parseIndex() accepts a Docker manifest list", () => {
  const list = {
    schemaVersion: 2,
    mediaType: MediaType.dockerManifestList,
    manifests: [
      {
        mediaType: MediaType.dockerManifest,
        size: 528,
        digest: AMD64,
        platform: { architecture: "amd64", os: "linux" },
      },
      {
        mediaType: MediaType.dockerManifest,
        size: 528,
        digest: ARMV7,
        platform: { architecture: "arm", os: "linux", variant: "v7" },
      },
    ],
  };
  const index = parseIndex(json(list), DOC, { mediaType: MediaType.dockerManifestList });
  assert.equal(index.manifests.length, 2);
  assert.equal(selectManifest(index, parsePlatform("linux/arm")).digest, ARMV7);
});

Deno.test("parseIndex() rejects malformed entries and manifest fields", () => {
  const bad = structuredClone(multiArch) as unknown as Record<string, unknown>;
  (bad.manifests as Record<string, unknown>[])[1].platform = { os: "linux" };
  assertThrows(
    () => parseIndex(json(bad), DOC),
    TypeError,
    `index ${DOC}: manifests[1].platform.architecture is missing`,
  );
  const withLayers = { ...multiArch, layers: [] };
  assertThrows(
    () => parseIndex(json(withLayers), DOC),
    TypeError,
    `index ${DOC}: layers is present`,
  );
  const noManifests = { schemaVersion: 2, mediaType: MediaType.ociIndex };
  assertThrows(() => parseIndex(json(noManifests), DOC), TypeError, "manifests is missing");
  assertThrows(
    () => parseIndex(json(ociManifest()), DOC),
    TypeError,
    `mediaType is '${MediaType.ociManifest}', expected '${MediaType.ociIndex}' or ` +
      `'${MediaType.dockerManifestList}'`,
  );
});

// ---------------------------------------------------------------------------------------------
// configs

Deno.test("parseImageConfig() returns a Docker config with nulls as absent fields", () => {
  const c = parseImageConfig(json(dockerConfig()), DOC, { mediaType: MediaType.dockerConfig });
  assert.equal(c.architecture, "amd64");
  assert.equal(c.os, "linux");
  assert.deepEqual(c.rootfs, { type: "layers", diff_ids: [digestOf("a"), digestOf("b")] });
  assert.deepEqual(c.config?.Entrypoint, ["/docker-entrypoint.sh"]);
  assert.deepEqual(c.config?.Cmd, ["nginx", "-g", "daemon off;"]);
  assert.equal(c.config?.StopSignal, "SIGQUIT");
  assert.deepEqual(c.config?.ExposedPorts, { "80/tcp": {} });
  assert.ok(!("Volumes" in c.config!), "Volumes: null is dropped");
  assert.equal(c.history?.[1].empty_layer, true);
});

Deno.test("parseImageConfig() accepts a minimal OCI config without runtime defaults", () => {
  const minimal = {
    architecture: "arm64",
    variant: "v8",
    os: "linux",
    rootfs: { type: "layers", diff_ids: [digestOf("a")] },
  };
  const c = parseImageConfig(json(minimal), DOC, { mediaType: MediaType.ociConfig });
  assert.equal(c.config, undefined);
  assert.equal(c.variant, "v8");
  const nullConfig = { ...minimal, config: null, history: null };
  const d = parseImageConfig(json(nullConfig), DOC);
  assert.ok(!("config" in d) && !("history" in d));
});

Deno.test("parseImageConfig() names the digest and the field that is wrong", () => {
  const cases: [(doc: Record<string, unknown>) => void, string][] = [
    [(d) => delete d.architecture, "architecture is missing"],
    [(d) => d.os = "", "os is empty"],
    [(d) => d.rootfs = null, "rootfs is null, expected an object"],
    [
      (d) => (d.rootfs as Record<string, unknown>).type = "layerz",
      "rootfs.type is 'layerz', expected 'layers'",
    ],
    [
      (d) => (d.rootfs as Record<string, unknown>).diff_ids = ["x"],
      "rootfs.diff_ids[0] is not a digest: 'x'",
    ],
    [
      (d) => (d.config as Record<string, unknown>).Env = "PATH=/bin",
      "config.Env is a string, expected an array",
    ],
    [
      (d) => (d.config as Record<string, unknown>).Cmd = ["sh", 1],
      "config.Cmd[1] is a number, expected a string",
    ],
    [
      (d) => (d.config as Record<string, unknown>).User = 0,
      "config.User is a number, expected a string",
    ],
    [
      (d) => (d.config as Record<string, unknown>).Labels = { a: true },
      'config.Labels["a"] is a boolean',
    ],
    [
      (d) => (d.history as Record<string, unknown>[])[0].empty_layer = "yes",
      "history[0].empty_layer is 'yes'",
    ],
  ];
  for (const [mutate, message] of cases) {
    const doc = dockerConfig();
    mutate(doc);
    assert.throws(
      () => parseImageConfig(json(doc), DOC),
      (e: unknown) => e instanceof TypeError && e.message.startsWith(`config ${DOC}: ${message}`),
      message,
    );
  }
  assertThrows(
    () => parseImageConfig(json(dockerConfig()), DOC, { mediaType: MediaType.ociManifest }),
    TypeError,
    "is not 'application/vnd.oci.image.config.v1+json' or",
  );
});

// ---------------------------------------------------------------------------------------------
// platforms
