import assert from "node:assert/strict";
import { containerdTest, ctr } from "./harness.ts";
import {
  buildImage,
  buildTestImages,
  busyboxBaseLayer,
  FIXED_MTIME,
  gzip,
  isStaticElf,
  sha256Digest,
  tarHeaderChecksum,
  writeTar,
} from "./oci_archive.ts";

const decoder = new TextDecoder();

function field(block: Uint8Array, offset: number, length: number): string {
  const raw = decoder.decode(block.subarray(offset, offset + length));
  const nul = raw.indexOf("\0");
  return nul === -1 ? raw : raw.slice(0, nul);
}

interface ParsedHeader {
  name: string;
  mode: number;
  size: number;
  type: string;
  linkname: string;
  mtime: number;
}

/** An independent little ustar reader: checks every header checksum and the end marker. */
function readTar(tar: Uint8Array): ParsedHeader[] {
  assert.equal(tar.length % 512, 0, "archive is a whole number of blocks");
  const headers: ParsedHeader[] = [];
  let off = 0;
  while (off < tar.length) {
    const block = tar.subarray(off, off + 512);
    if (block.every((b) => b === 0)) {
      assert.ok(tar.subarray(off).every((b) => b === 0), "only zero blocks after the end marker");
      assert.ok(tar.length - off >= 1024, "two zero blocks at the end");
      return headers;
    }
    const stored = parseInt(field(block, 148, 8).trim(), 8);
    assert.equal(stored, tarHeaderChecksum(block), `checksum of header at ${off}`);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : block[i];
    assert.equal(stored, sum, "checksum recomputed independently");
    assert.equal(field(block, 257, 6), "ustar");
    const prefix = field(block, 345, 155);
    const name = (prefix ? prefix + "/" : "") + field(block, 0, 100);
    const size = parseInt(field(block, 124, 12), 8);
    headers.push({
      name,
      mode: parseInt(field(block, 100, 8), 8),
      size,
      type: String.fromCharCode(block[156]),
      linkname: field(block, 157, 100),
      mtime: parseInt(field(block, 136, 12), 8),
    });
    assert.equal(parseInt(field(block, 108, 8), 8), 0, "uid 0");
    assert.equal(parseInt(field(block, 116, 8), 8), 0, "gid 0");
    off += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error("archive ends without the two zero blocks");
}

Deno.test("tar writer: headers have valid checksums, modes, types and long names", () => {
  const longPath = "/a/" + "d".repeat(90) + "/" + "f".repeat(60) + ".txt";
  const tar = writeTar([
    { type: "dir", path: "/tmp", mode: 0o1777 },
    { type: "file", path: "/bin/tool", mode: 0o755, content: "x".repeat(513) },
    { type: "symlink", path: "/bin/sh", target: "busybox" },
    { type: "file", path: longPath, content: "" },
  ]);
  const headers = readTar(tar);
  assert.deepEqual(headers.map((h) => [h.name, h.type, h.mode, h.size, h.linkname]), [
    ["tmp/", "5", 0o1777, 0, ""],
    ["bin/tool", "0", 0o755, 513, ""],
    ["bin/sh", "2", 0o777, 0, "busybox"],
    [longPath.slice(1), "0", 0o644, 0, ""],
  ]);
  assert.ok(headers.every((h) => h.mtime === FIXED_MTIME));
  assert.equal(tar.length, 512 * (4 + 2) + 1024, "data padded to blocks, two end blocks");
});

Deno.test("image archive: deterministic bytes, digests match blobs", async () => {
  const spec = {
    name: "wfe.test/unit:tag",
    layers: [[{ type: "file" as const, path: "/hello", content: "hello\n" }]],
  };
  const a = await buildImage(spec);
  const b = await buildImage(spec);
  assert.deepEqual(a.archive, b.archive);
  assert.equal(a.manifestDigest, b.manifestDigest);
  assert.equal(a.tag, "tag");

  const names = readTar(a.archive).map((h) => h.name);
  assert.ok(names.includes("oci-layout") && names.includes("index.json"));
  for (const d of [a.manifestDigest, a.configDigest, ...a.layerDigests]) {
    assert.ok(names.includes(`blobs/sha256/${d.slice(7)}`), `blob ${d} present`);
  }
  const layerTar = writeTar(spec.layers[0]);
  assert.equal(a.diffIds[0], await sha256Digest(layerTar));
  assert.equal(a.layerDigests[0], await sha256Digest(await gzip(layerTar)));
});

Deno.test("test images: static busybox, shared base layer, deterministic", async (t) => {
  let images;
  try {
    images = await buildTestImages();
  } catch (e) {
    // No static busybox on this machine (e.g. macOS); the harness provisions it on Linux.
    console.error(`skipped: test images: ${e instanceof Error ? e.message : e}`);
    return;
  }
  const again = await buildTestImages();
  assert.deepEqual(images.oneLayer.archive, again.oneLayer.archive);
  assert.deepEqual(images.threeLayer.archive, again.threeLayer.archive);
  assert.equal(images.oneLayer.layerDigests.length, 1);
  assert.equal(images.threeLayer.layerDigests.length, 3);
  assert.equal(images.threeLayer.layerDigests[0], images.oneLayer.layerDigests[0]);
  assert.equal(images.threeLayer.diffIds[0], images.oneLayer.diffIds[0]);
  await t.step("base layer content", () => {
    const base = busyboxBaseLayer(new Uint8Array(0));
    const tmp = base.find((e) => e.path === "/tmp");
    assert.equal(tmp?.type === "dir" && tmp.mode, 0o1777);
    const passwd = base.find((e) => e.path === "/etc/passwd");
    assert.match(String(passwd?.type === "file" && passwd.content), /^tester:x:1000:1000:/m);
  });
  assert.ok(isStaticElf(await Deno.readFile("/bin/busybox")));
});

containerdTest("harness: ctr lists both images with the computed digests", async (h) => {
  const out = await ctr(h.address, ["images", "ls"], { namespace: h.namespace });
  const rows = out.trim().split("\n").slice(1).map((l) => l.split(/\s+/));
  for (const image of [h.images.oneLayer, h.images.threeLayer]) {
    const row = rows.find((r) => r[0] === image.name);
    if (!row) throw new Error(`${image.name} not listed by ctr:\n${out}`);
    assert.equal(row[1], "application/vnd.oci.image.manifest.v1+json");
    assert.equal(row[2], image.manifestDigest);
  }
  // The manifest stored in the content store is byte-identical to the one we built.
  const manifest = JSON.parse(
    await ctr(h.address, ["content", "get", h.images.threeLayer.manifestDigest], {
      namespace: h.namespace,
    }),
  );
  assert.equal(manifest.config.digest, h.images.threeLayer.configDigest);
  assert.deepEqual(
    manifest.layers.map((l: { digest: string }) => l.digest),
    h.images.threeLayer.layerDigests,
  );
});

containerdTest("harness: images are unpacked into the snapshotter", async (h) => {
  const out = await ctr(h.address, ["snapshots", "--snapshotter", h.snapshotter, "ls"], {
    namespace: h.namespace,
  });
  // At least one committed snapshot per distinct layer chain: base, base+2, base+2+3 (the base
  // layer is shared by both images).
  const committed = out.split("\n").filter((l) => /\bCommitted\b/.test(l));
  assert.ok(committed.length >= 3, out);
});

containerdTest("harness: runs only our private daemon", async (h) => {
  const cmd = Deno.readTextFileSync(`/proc/${h.pid}/cmdline`).split("\0");
  assert.ok(cmd.includes(`${h.dir}/config.toml`), cmd.join(" "));
  assert.ok(h.address.startsWith(h.dir + "/"));
  assert.match(h.version, /^\d+\.\d+/);
  await Promise.resolve();
});
