/**
 * Parsing and validating image documents, and platform selection:
 * `parseManifest()` of a 7-layer manifest, `parseImageConfig()` of a
 * Docker-built config with history, `parseIndex()` and `selectManifest()` on a
 * 10-platform index.
 *
 * ```sh
 * deno bench bench/manifest_bench.ts
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import { parseImageConfig, parseIndex, parseManifest } from "../lib/oci/documents.ts";
import { MediaType } from "../lib/oci/media_types.ts";
import { parsePlatform, selectManifest } from "../lib/oci/platform.ts";
import type { OciIndex } from "../lib/oci/types.ts";

const digest = (seed: string): string =>
  `sha256:${createHash("sha256").update(seed).digest("hex")}`;
const encode = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

/** An OCI manifest as a BuildKit build pushes it: 7 gzip layers, annotations. */
const manifestBytes = encode({
  schemaVersion: 2,
  mediaType: MediaType.ociManifest,
  config: { mediaType: MediaType.ociConfig, digest: digest("config"), size: 7023 },
  layers: Array.from({ length: 7 }, (_, i) => ({
    mediaType: MediaType.ociLayerGzip,
    digest: digest(`layer ${i}`),
    size: 1_000_000 + i * 12_345,
  })),
  annotations: {
    "org.opencontainers.image.created": "2024-05-01T10:00:00Z",
    "org.opencontainers.image.source": "https://github.com/example/app",
    "org.opencontainers.image.revision": "0123456789abcdef0123456789abcdef01234567",
  },
});

/** A Docker-built config: nulls, container_config, 15 history entries, env, labels. */
const configBytes = encode({
  architecture: "amd64",
  os: "linux",
  created: "2024-05-01T10:00:00.123456789Z",
  docker_version: "24.0.7",
  config: {
    Hostname: "",
    User: "app",
    ExposedPorts: { "8080/tcp": {}, "8443/tcp": {} },
    Env: [
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "LANG=C.UTF-8",
      "PYTHON_VERSION=3.12.3",
      "PYTHON_PIP_VERSION=24.0",
      "APP_HOME=/srv/app",
    ],
    Entrypoint: ["/usr/local/bin/docker-entrypoint.sh"],
    Cmd: ["python3", "-m", "app", "--port", "8080"],
    Volumes: { "/data": {} },
    WorkingDir: "/srv/app",
    OnBuild: null,
    Labels: {
      "org.opencontainers.image.title": "app",
      "org.opencontainers.image.version": "1.4.2",
      maintainer: "team@example.com",
    },
    StopSignal: "SIGTERM",
  },
  container_config: { Cmd: ["/bin/sh", "-c", '#(nop) CMD ["python3"]'], Labels: null },
  rootfs: { type: "layers", diff_ids: Array.from({ length: 7 }, (_, i) => digest(`diff ${i}`)) },
  history: Array.from({ length: 15 }, (_, i) => ({
    created: "2024-05-01T10:00:00Z",
    created_by: `/bin/sh -c #(nop) RUN step ${i} && apt-get install -y something-${i}`,
    ...(i % 2 ? { empty_layer: true } : {}),
  })),
});

const PLATFORMS = [
  "linux/amd64",
  "linux/arm/v5",
  "linux/arm/v6",
  "linux/arm/v7",
  "linux/arm64/v8",
  "linux/386",
  "linux/mips64le",
  "linux/ppc64le",
  "linux/riscv64",
  "linux/s390x",
];
const indexBytes = encode({
  schemaVersion: 2,
  mediaType: MediaType.ociIndex,
  manifests: PLATFORMS.map((p) => ({
    mediaType: MediaType.ociManifest,
    digest: digest(p),
    size: 1_609,
    platform: parsePlatform(p),
  })),
});
const index: OciIndex = parseIndex(indexBytes, digest("index"));
const manifestDigest = digest("manifest");
const configDigest = digest("config");
const amd64 = parsePlatform("linux/amd64");
const arm64 = parsePlatform("linux/arm64/v8");

Deno.bench(`parseManifest() of a 7-layer manifest (${manifestBytes.length} B)`, () => {
  parseManifest(manifestBytes, manifestDigest, { mediaType: MediaType.ociManifest });
});

Deno.bench(`parseImageConfig() of a Docker-built config (${configBytes.length} B)`, () => {
  parseImageConfig(configBytes, configDigest, { mediaType: MediaType.dockerConfig });
});

Deno.bench(`parseIndex() of a 10-entry index (${indexBytes.length} B)`, () => {
  parseIndex(indexBytes, digest("index"), { mediaType: MediaType.ociIndex });
});

Deno.bench("selectManifest() on a 10-entry index, linux/amd64", () => {
  selectManifest(index, amd64);
});

Deno.bench("selectManifest() on a 10-entry index, linux/arm64/v8", () => {
  selectManifest(index, arm64);
});
