import assert from "node:assert/strict";
import { assertThrows } from "../asserts.ts";
import { parseImageConfig, parseIndex, parseManifest } from "../../lib/oci/documents.ts";
import { layerCompression, MediaType, mediaTypeKind } from "../../lib/oci/media_types.ts";
import {
  compatiblePlatforms,
  describeOffers,
  formatPlatform,
  hostPlatform,
  matchingManifests,
  matchPlatform,
  normalizePlatform,
  parsePlatform,
  selectManifest,
} from "../../lib/oci/platform.ts";
import type { OciDescriptor, OciIndex, OciPlatform } from "../../lib/oci/types.ts";

const encoder = new TextEncoder();
const json = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value));
const digestOf = (c: string): string => `sha256:${c.repeat(64)}`;

const DOC = digestOf("d");
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

function platformEntry(digest: string, platform?: OciPlatform): OciDescriptor {
  const d: OciDescriptor = { mediaType: MediaType.ociManifest, digest, size: 500 };
  if (platform) d.platform = platform;
  return d;
}

/** amd64, arm64/v8 and arm/v7, as Docker Hub's multi-arch images list them. */
const AMD64 = digestOf("a");
const ARM64 = digestOf("b");
const ARMV7 = digestOf("7");
const multiArch: OciIndex = {
  schemaVersion: 2,
  mediaType: MediaType.ociIndex,
  manifests: [
    platformEntry(AMD64, { os: "linux", architecture: "amd64" }),
    platformEntry(ARM64, { os: "linux", architecture: "arm64", variant: "v8" }),
    platformEntry(ARMV7, { os: "linux", architecture: "arm", variant: "v7" }),
  ],
};

// ---------------------------------------------------------------------------------------------
// media types

Deno.test("mediaTypeKind() classifies OCI and Docker media types", () => {
  assert.equal(mediaTypeKind(MediaType.ociIndex), "index");
  assert.equal(mediaTypeKind(MediaType.dockerManifestList), "index");
  assert.equal(mediaTypeKind(MediaType.ociManifest), "manifest");
  assert.equal(mediaTypeKind(MediaType.dockerManifest), "manifest");
  assert.equal(mediaTypeKind(MediaType.ociConfig), "config");
  assert.equal(mediaTypeKind(MediaType.dockerConfig), "config");
  for (
    const t of [
      MediaType.ociLayer,
      MediaType.ociLayerGzip,
      MediaType.ociLayerZstd,
      MediaType.ociLayerNonDistributable,
      MediaType.ociLayerNonDistributableGzip,
      MediaType.ociLayerNonDistributableZstd,
      MediaType.dockerLayer,
      MediaType.dockerLayerGzip,
      MediaType.dockerLayerForeign,
      MediaType.dockerLayerForeignGzip,
    ]
  ) {
    assert.equal(mediaTypeKind(t), "layer", t);
  }
  assert.equal(mediaTypeKind("application/vnd.in-toto+json"), undefined);
  assert.equal(mediaTypeKind(""), undefined);
});

Deno.test("layerCompression() tells none, gzip and zstd apart", () => {
  assert.equal(layerCompression("application/vnd.oci.image.layer.v1.tar"), "none");
  assert.equal(layerCompression("application/vnd.oci.image.layer.v1.tar+gzip"), "gzip");
  assert.equal(layerCompression("application/vnd.oci.image.layer.v1.tar+zstd"), "zstd");
  assert.equal(
    layerCompression("application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"),
    "zstd",
  );
  assert.equal(layerCompression("application/vnd.docker.image.rootfs.diff.tar.gzip"), "gzip");
  assert.equal(
    layerCompression("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"),
    "gzip",
  );
  assert.equal(layerCompression(MediaType.ociConfig), undefined);
});

// ---------------------------------------------------------------------------------------------
// manifests

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

Deno.test("hostPlatform() maps Deno.build to OCI names", () => {
  const host = hostPlatform();
  assert.equal(host.os, Deno.build.os === "darwin" ? "linux" : Deno.build.os);
  if (Deno.build.arch === "x86_64") assert.deepEqual(host, { os: host.os, architecture: "amd64" });
  if (Deno.build.arch === "aarch64") {
    assert.deepEqual(host, { os: host.os, architecture: "arm64", variant: "v8" });
  }
});

Deno.test("parsePlatform() reads os/arch and os/arch/variant", () => {
  assert.deepEqual(parsePlatform("linux/amd64"), { os: "linux", architecture: "amd64" });
  assert.deepEqual(parsePlatform("linux/arm64/v8"), {
    os: "linux",
    architecture: "arm64",
    variant: "v8",
  });
  assert.deepEqual(parsePlatform("Linux/x86_64"), { os: "linux", architecture: "amd64" });
  assert.deepEqual(parsePlatform("linux/aarch64"), { os: "linux", architecture: "arm64" });
});

Deno.test("parsePlatform() explains what it expected", () => {
  assertThrows(
    () => parsePlatform("amd64"),
    TypeError,
    "Cannot parse platform 'amd64': expected os/arch[/variant]",
  );
  assertThrows(() => parsePlatform("linux/arm/v7/x"), TypeError, "expected os/arch[/variant]");
  assertThrows(() => parsePlatform(""), TypeError, "Cannot parse platform ''");
  assertThrows(
    () => parsePlatform("linux//v7"),
    TypeError,
    "Cannot parse platform 'linux//v7': the architecture '' is not valid",
  );
  assertThrows(() => parsePlatform("linux/amd 64"), TypeError, "the architecture 'amd 64'");
});

Deno.test("matchPlatform() applies containerd's normalisation", () => {
  const p = (s: string) => parsePlatform(s);
  assert.ok(matchPlatform(p("linux/arm64"), p("linux/arm64/v8")));
  assert.ok(matchPlatform(p("linux/arm64/v8"), p("linux/arm64")));
  assert.ok(matchPlatform(p("linux/aarch64"), p("linux/arm64/8")));
  assert.ok(matchPlatform(p("linux/amd64"), p("linux/amd64/v1")));
  assert.ok(matchPlatform(p("linux/x86_64"), p("linux/amd64")));
  assert.ok(matchPlatform(p("linux/arm"), p("linux/arm/v7")));
  assert.ok(matchPlatform(p("linux/arm/7"), p("linux/arm/v7")));
  assert.ok(matchPlatform({ os: "linux", architecture: "armhf" }, p("linux/arm/v7")));
  assert.ok(!matchPlatform(p("linux/amd64"), p("linux/amd64/v2")));
  assert.ok(!matchPlatform(p("linux/arm/v7"), p("linux/arm/v6")));
  assert.ok(!matchPlatform(p("linux/arm64"), p("linux/arm/v8")));
  assert.ok(!matchPlatform(p("linux/amd64"), p("windows/amd64")));
});

Deno.test("normalizePlatform() drops default variants and resolves aliases", () => {
  assert.deepEqual(normalizePlatform({ os: "Linux", architecture: "aarch64", variant: "v8" }), {
    os: "linux",
    architecture: "arm64",
  });
  assert.deepEqual(normalizePlatform({ os: "linux", architecture: "arm" }), {
    os: "linux",
    architecture: "arm",
    variant: "v7",
  });
  assert.deepEqual(normalizePlatform({ os: "macos", architecture: "armel" }), {
    os: "darwin",
    architecture: "arm",
    variant: "v6",
  });
});

Deno.test("compatiblePlatforms() lists older variants and 32-bit relatives after the platform", () => {
  const list = (s: string) => compatiblePlatforms(parsePlatform(s)).map(formatPlatform);
  assert.deepEqual(list("linux/amd64"), ["linux/amd64", "linux/386"]);
  assert.deepEqual(list("linux/amd64/v3"), [
    "linux/amd64/v3",
    "linux/amd64/v2",
    "linux/amd64",
    "linux/386",
  ]);
  assert.deepEqual(list("linux/arm/v7"), ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]);
  assert.deepEqual(list("linux/arm64/v8"), [
    "linux/arm64",
    "linux/arm/v8",
    "linux/arm/v7",
    "linux/arm/v6",
    "linux/arm/v5",
  ]);
});

Deno.test("selectManifest() picks each platform of an amd64, arm64/v8, arm/v7 index", () => {
  const pick = (s: string) => selectManifest(multiArch, parsePlatform(s)).digest;
  assert.equal(pick("linux/amd64"), AMD64);
  assert.equal(pick("linux/amd64/v1"), AMD64);
  assert.equal(pick("linux/arm64"), ARM64);
  assert.equal(pick("linux/arm64/v8"), ARM64);
  assert.equal(pick("linux/aarch64"), ARM64);
  assert.equal(pick("linux/arm"), ARMV7);
  assert.equal(pick("linux/arm/v7"), ARMV7);
  assert.equal(pick("linux/arm/v8"), ARMV7, "arm/v8 runs arm/v7");
  assert.equal(
    selectManifest(multiArch, hostPlatform()).platform?.architecture,
    {
      x86_64: "amd64",
      aarch64: "arm64",
    }[Deno.build.arch as string],
  );
});

Deno.test("selectManifest() lists the platforms the index offers when none fits", () => {
  assertThrows(
    () => selectManifest(multiArch, parsePlatform("linux/riscv64")),
    Error,
    "no manifest for linux/riscv64 in the index: it offers linux/amd64, linux/arm64/v8, " +
      "linux/arm/v7",
  );
  assertThrows(
    () => selectManifest(multiArch, parsePlatform("linux/arm/v6")),
    Error,
    "no manifest for linux/arm/v6",
  );
  assertThrows(
    () => selectManifest(multiArch, parsePlatform("windows/amd64")),
    Error,
    "no manifest for windows/amd64",
  );
  assert.equal(describeOffers({ schemaVersion: 2, manifests: [] }), "it is empty");
});

Deno.test("selectManifest() prefers the entry whose variant is spelled as wanted", () => {
  const bare = digestOf("e");
  const index: OciIndex = {
    schemaVersion: 2,
    manifests: [
      platformEntry(bare, { os: "linux", architecture: "arm64" }),
      platformEntry(ARM64, { os: "linux", architecture: "arm64", variant: "v8" }),
    ],
  };
  assert.equal(selectManifest(index, parsePlatform("linux/arm64/v8")).digest, ARM64);
  assert.equal(selectManifest(index, parsePlatform("linux/arm64")).digest, bare);
});

Deno.test("selectManifest() prefers an exact match over a compatible one", () => {
  const i386 = digestOf("3");
  const v6 = digestOf("6");
  const index: OciIndex = {
    schemaVersion: 2,
    manifests: [
      platformEntry(i386, { os: "linux", architecture: "386" }),
      platformEntry(v6, { os: "linux", architecture: "arm", variant: "v6" }),
      ...multiArch.manifests,
    ],
  };
  assert.equal(selectManifest(index, parsePlatform("linux/amd64")).digest, AMD64);
  assert.equal(selectManifest(index, parsePlatform("linux/arm/v7")).digest, ARMV7);
  const only386: OciIndex = { schemaVersion: 2, manifests: [index.manifests[0]] };
  assert.equal(selectManifest(only386, parsePlatform("linux/amd64")).digest, i386);
});

Deno.test("matchingManifests() skips attestations and puts entries without a platform last", () => {
  const attestation = platformEntry(digestOf("f"), { os: "unknown", architecture: "unknown" });
  const noPlatform = platformEntry(digestOf("0"));
  const index: OciIndex = {
    schemaVersion: 2,
    manifests: [noPlatform, attestation, ...multiArch.manifests],
  };
  assert.deepEqual(
    matchingManifests(index, parsePlatform("linux/amd64")).map((d) => d.digest),
    [AMD64, noPlatform.digest],
  );
  const onlyUnlabelled: OciIndex = { schemaVersion: 2, manifests: [noPlatform] };
  assertThrows(
    () => selectManifest(onlyUnlabelled, parsePlatform("linux/amd64")),
    Error,
    "it offers (no platform)",
  );
});
