import assert from "node:assert/strict";
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
import type { OciIndex } from "../../lib/oci/types.ts";
import { assertThrows } from "../asserts.ts";
import { AMD64, ARM64, ARMV7, digestOf, multiArch, platformEntry } from "./_fixtures.ts";

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
