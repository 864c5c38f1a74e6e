import { zstdCompressSync } from "node:zlib";
import assert from "node:assert/strict";
import { withLease } from "../../lib/content/lease.ts";
import { readAllContent } from "../../lib/content/read.ts";
import { connect, type ContainerdClient } from "../../lib/grpc/connection.ts";
import { ContainerdError, isNotFound } from "../../lib/grpc/errors.ts";
import {
  clearImageFilesCache,
  imageFilesCacheStats,
  type ImageLayers,
  readImageFiles,
  readImagePasswdGroup,
} from "../../lib/image/files.ts";
import type { BlobProvider } from "../../lib/image/provider.ts";
import { resolveUser } from "../../lib/runtime/user.ts";
import { dec, enc, file, whiteout } from "../archive/_tar_fixtures.ts";
import { assertRejects, assertThrows } from "../asserts.ts";
import { containerdTest, ctr, type HarnessInfo } from "../harness.ts";
import { importBuilt } from "../daemon_helpers.ts";
import {
  buildImage,
  busyboxBaseLayer,
  gzip,
  readStaticBusybox,
  sha256Digest,
  writeTar,
} from "../oci_archive.ts";

Deno.test("readImageFiles() names the layer and media type of an unknown layer", async () => {
  const fakeClient = {} as ContainerdClient; // never called: the media type is checked first
  const digest = `sha256:${"ab".repeat(32)}`;
  const image = (mediaType: string): ImageLayers => ({
    manifestDigest: `sha256:${crypto.randomUUID().replaceAll("-", "").padEnd(64, "0")}`,
    layers: [{ mediaType, digest, size: 1 }],
  });
  await assertRejects(
    () => readImageFiles(fakeClient, image("application/vnd.example.weird"), ["/x"]),
    Error,
    `Cannot read layer ${digest} (application/vnd.example.weird) of image sha256:`,
  );
  await assertRejects(
    () => readImageFiles(fakeClient, image("application/vnd.example.weird"), ["/x"]),
    Error,
    "not a tar layer media type (expected tar, tar+gzip or tar+zstd)",
  );
  await assertRejects(
    () => readImageFiles(fakeClient, { manifestDigest: "sha256:nope", layers: [] }, ["/x"]),
    TypeError,
    "manifestDigest",
  );
});

/** A blob provider that serves blobs from memory, in 1000-byte chunks. */
function memoryProvider(blobs: Map<string, Uint8Array>): BlobProvider {
  return {
    description: "memory",
    readBlob: (desc) => Promise.resolve(blobs.get(desc.digest) ?? new Uint8Array()),
    async *openBlob(desc) {
      const blob = blobs.get(desc.digest);
      if (!blob) {
        throw new ContainerdError({ code: 5, method: "Content.Read", details: "not found" });
      }
      for (let i = 0; i < blob.length; i += 1000) yield blob.subarray(i, i + 1000);
    },
  };
}

Deno.test("readImageFiles() reads tar, tar+gzip and tar+zstd layers of every usual media type", async () => {
  const tar = writeTar([file("/etc/passwd", "from the layer\n")]);
  const gz = await gzip(tar);
  const zst = new Uint8Array(zstdCompressSync(tar));
  const blobs = new Map([
    [await sha256Digest(tar), tar],
    [await sha256Digest(gz), gz],
    [await sha256Digest(zst), zst],
  ]);
  const c = memoryProvider(blobs);
  const cases: [string, Uint8Array][] = [
    ["application/vnd.oci.image.layer.v1.tar", tar],
    ["application/vnd.oci.image.layer.v1.tar+gzip", gz],
    ["application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", gz],
    ["application/vnd.docker.image.rootfs.diff.tar.gzip", gz],
    ["application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", gz],
    ["application/vnd.oci.image.layer.v1.tar+zstd", zst],
    ["application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", zst],
  ];
  for (const [mediaType, blob] of cases) {
    const image: ImageLayers = {
      manifestDigest: await sha256Digest(enc.encode(mediaType)), // unique: no cache hits
      layers: [{ mediaType, digest: await sha256Digest(blob), size: blob.length }],
    };
    const files = await readImageFiles(c, image, ["/etc/passwd"]);
    assert.equal(dec.decode(files.get("/etc/passwd")), "from the layer\n", mediaType);
  }
  // gzip bytes under a plain tar media type are not a tar archive.
  const wrong: ImageLayers = {
    manifestDigest: await sha256Digest(enc.encode("wrong")),
    name: "wfe.test/wrong:tar",
    layers: [{
      mediaType: "application/vnd.oci.image.layer.v1.tar",
      digest: await sha256Digest(gz),
      size: gz.length,
    }],
  };
  await assertRejects(
    () => readImageFiles(c, wrong, ["/etc/passwd"]),
    Error,
    `Cannot read layer ${await sha256Digest(gz)} (application/vnd.oci.image.layer.v1.tar): tar: `,
  );
  // A named image is named in messages.
  await assert.rejects(
    () => readImageFiles(c, { ...wrong, layers: [] }, ["/etc/passwd"], { maxFileBytes: -1 }),
    RangeError,
  );
  const named: ImageLayers = {
    ...wrong,
    layers: [{ ...wrong.layers[0], digest: await sha256Digest(tar) }],
  };
  await assertRejects(
    () => readImageFiles(c, named, ["/etc/passwd"], { maxFileBytes: 3 }),
    RangeError,
    `Cannot read /etc/passwd from image wfe.test/wrong:tar (${wrong.manifestDigest}): its 15 bytes`,
  );
});

// ---------------------------------------------------------------------------------------------
// against containerd

async function client(h: HarnessInfo): Promise<ContainerdClient> {
  return await connect(`unix://${h.address}`, { namespace: h.namespace });
}

async function layersOfImage(c: ContainerdClient, manifestDigest: string): Promise<ImageLayers> {
  const manifest = JSON.parse(dec.decode(await readAllContent(c, manifestDigest)));
  return { manifestDigest, layers: manifest.layers };
}

/** /etc/passwd and /etc/group as the harness writes them. */
function harnessText(path: string): string {
  for (const entry of busyboxBaseLayer(new Uint8Array())) {
    if (entry.path === path && entry.type === "file" && typeof entry.content === "string") {
      return entry.content;
    }
  }
  throw new Error(`the harness base layer has no ${path}`);
}

containerdTest(
  "readImageFiles() reads /etc/passwd and /etc/group of the one-layer image",
  async (h) => {
    await using c = await client(h);
    clearImageFilesCache();
    const image = await layersOfImage(c, h.images.oneLayer.manifestDigest);
    const files = await readImageFiles(c, image, [
      "/etc/passwd",
      "/etc/group",
      "/etc/hostname",
      "/etc/missing",
      "/bin",
    ]);
    assert.deepEqual([...files.keys()], [
      "/etc/passwd",
      "/etc/group",
      "/etc/hostname",
      "/etc/missing",
      "/bin",
    ]);
    assert.equal(dec.decode(files.get("/etc/passwd")), harnessText("/etc/passwd"));
    assert.ok(dec.decode(files.get("/etc/passwd")).includes("tester:x:1000:1000:"));
    assert.equal(dec.decode(files.get("/etc/group")), harnessText("/etc/group"));
    assert.equal(dec.decode(files.get("/etc/hostname")), "wfe-test\n");
    assert.equal(files.get("/etc/missing"), undefined);
    assert.equal(files.get("/bin"), undefined);

    const text = await readImagePasswdGroup(c, image);
    assert.deepEqual(resolveUser("tester", text, h.images.oneLayer.name), {
      uid: 1000,
      gid: 1000,
      additionalGids: [1000],
      username: "tester",
    });
  },
);

containerdTest(
  "readImageFiles() follows /bin/sh to busybox and enforces maxFileBytes",
  async (h) => {
    await using c = await client(h);
    const image = await layersOfImage(c, h.images.oneLayer.manifestDigest);
    await assertRejects(
      () => readImageFiles(c, image, ["/bin/sh"]),
      RangeError,
      "Cannot read /bin/sh (resolved to /bin/busybox) from image " +
        `${h.images.oneLayer.manifestDigest}: its`,
    );
    const busybox = await readStaticBusybox();
    const files = await readImageFiles(c, image, ["/bin/sh"], { maxFileBytes: 64 << 20 });
    const sh = files.get("/bin/sh");
    if (!sh) throw new Error("/bin/sh not found");
    assert.equal(await sha256Digest(sh), await sha256Digest(busybox));
  },
);

containerdTest("readImageFiles() reads the top layers of the three-layer image", async (h) => {
  await using c = await client(h);
  const image = await layersOfImage(c, h.images.threeLayer.manifestDigest);
  assert.equal(image.layers.length, 3);
  const files = await readImageFiles(c, image, ["/layer2.txt", "/layer3.txt", "/etc/passwd"]);
  assert.equal(dec.decode(files.get("/layer2.txt")), "layer two\n");
  assert.equal(dec.decode(files.get("/layer3.txt")), "layer three\n");
  assert.equal(dec.decode(files.get("/etc/passwd")), harnessText("/etc/passwd"));
});

containerdTest(
  "readImageFiles() memoizes per manifest and path, so a second call reads no layers",
  async (h) => {
    await using c = await client(h);
    clearImageFilesCache();
    const image = await layersOfImage(c, h.images.threeLayer.manifestDigest);
    const before = imageFilesCacheStats();
    const first = await readImageFiles(c, image, ["/etc/passwd", "/etc/group"]);
    const afterFirst = imageFilesCacheStats();
    assert.equal(afterFirst.layerReads - before.layerReads, 3);
    assert.equal(afterFirst.cacheMisses - before.cacheMisses, 2);
    assert.equal(afterFirst.entries, 2);

    first.get("/etc/passwd")!.fill(0); // callers get copies: this must not reach the cache
    const second = await readImagePasswdGroup(c, image);
    const afterSecond = imageFilesCacheStats();
    assert.equal(afterSecond.layerReads, afterFirst.layerReads);
    assert.equal(afterSecond.cacheHits - afterFirst.cacheHits, 2);
    assert.equal(second.passwd, harnessText("/etc/passwd"));

    // A new path reads the layers again, for that path only; absent files are cached too.
    await readImageFiles(c, image, ["/etc/passwd", "/nope"]);
    const afterThird = imageFilesCacheStats();
    assert.equal(afterThird.layerReads - afterSecond.layerReads, 3);
    assert.equal(afterThird.cacheMisses - afterSecond.cacheMisses, 1);
    await readImageFiles(c, image, ["/nope"]);
    assert.equal(imageFilesCacheStats().layerReads, afterThird.layerReads);
    // A cached file still honours a smaller cap.
    await assertRejects(
      () => readImageFiles(c, image, ["/etc/passwd"], { maxFileBytes: 10 }),
      RangeError,
      "exceed maxFileBytes 10",
    );
  },
);

containerdTest("readImageFiles() reports a missing layer blob as NOT_FOUND", async (h) => {
  await using c = await client(h);
  const image = await layersOfImage(c, h.images.oneLayer.manifestDigest);
  const missing: ImageLayers = {
    manifestDigest: `sha256:${"0".repeat(63)}1`,
    layers: [{ ...image.layers[0], digest: `sha256:${"0".repeat(63)}2` }],
  };
  await assert.rejects(
    () => readImageFiles(c, missing, ["/etc/passwd"]),
    (e: unknown) => isNotFound(e),
  );
});

/** chainId of diff IDs, as containerd names committed snapshots. */
async function chainId(diffIds: string[]): Promise<string> {
  let chain = diffIds[0];
  for (const diffId of diffIds.slice(1)) {
    chain = await sha256Digest(enc.encode(`${chain} ${diffId}`));
  }
  return chain;
}

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${dec.decode(out.stderr)}`);
}

/**
 * Reads `paths` from containerd's own unpacked rootfs of an image (a read-only view snapshot
 * of the top chain ID, mounted on a temp directory): the oracle for whiteout semantics.
 */
async function readFromSnapshot(
  c: ContainerdClient,
  h: HarnessInfo,
  diffIds: string[],
  paths: string[],
): Promise<Map<string, string | undefined>> {
  // The lease keeps the view from containerd's garbage collector while it is mounted.
  return await withLease(c, async (leased) => {
    const key = `wfe-image-files-view-${crypto.randomUUID()}`;
    const { mounts } = await leased.snapshots.view({
      snapshotter: h.snapshotter,
      key,
      parent: await chainId(diffIds),
    });
    const target = await Deno.makeTempDir({ prefix: "wfe-image-files-" });
    let mounted = false;
    try {
      assert.equal(mounts.length, 1);
      const m = mounts[0];
      await run("mount", ["-t", m.type, "-o", m.options.join(","), m.source, target]);
      mounted = true;
      const out = new Map<string, string | undefined>();
      for (const path of paths) {
        try {
          out.set(path, await Deno.readTextFile(`${target}${path}`));
        } catch (e) {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
          out.set(path, undefined);
        }
      }
      return out;
    } finally {
      if (mounted) await run("umount", [target]);
      await Deno.remove(target);
      await leased.snapshots.remove({ snapshotter: h.snapshotter, key }).catch((e) => {
        if (!isNotFound(e)) throw e;
      });
    }
  });
}

containerdTest(
  "readImageFiles() applies whiteouts and replacements like containerd's unpack",
  async (h) => {
    const passwd = harnessText("/etc/passwd");
    const group = harnessText("/etc/group");
    const name = `wfe.test/image-files:whiteouts-${crypto.randomUUID().slice(0, 8)}`;
    const built = await buildImage({
      name,
      layers: [
        [
          { type: "dir", path: "/etc" },
          file("/etc/passwd", passwd),
          file("/etc/group", group),
          file("/etc/motd", "base motd\n"),
          { type: "dir", path: "/etc/skel" },
          file("/etc/skel/.profile", "profile\n"),
          { type: "dir", path: "/opt" },
          file("/opt/old.txt", "old\n"),
          { type: "dir", path: "/data" },
          file("/data/keep.txt", "keep\n"),
        ],
        [
          { type: "dir", path: "/etc" },
          file("/etc/passwd", passwd + "builder:x:2000:2000::/home/builder:/bin/sh\n"),
          file("/etc/passwd.real", passwd + "real:x:3000:3000::/:/bin/sh\n"),
          file("/etc/group", group + "builders:x:2000:builder\nextra:x:3000:builder,tester\n"),
          file("/etc/motd", "layer two motd\n"),
        ],
        [
          { type: "dir", path: "/etc" },
          whiteout("/etc/motd"),
          whiteout("/etc/skel"),
          whiteout("/etc/group"),
          { type: "symlink", path: "/etc/passwd", target: "passwd.real" },
          { type: "dir", path: "/opt" },
          { type: "file", path: "/opt/.wh..wh..opq", content: "" },
          file("/opt/new.txt", "new\n"),
        ],
      ],
    });
    await using c = await client(h);
    try {
      await importBuilt(h, built, { timeoutMs: 120_000 });

      const { image } = await c.images.get({ name });
      assert.equal(image?.target?.digest, built.manifestDigest);
      const layers = await layersOfImage(c, built.manifestDigest);
      const paths = [
        "/etc/passwd",
        "/etc/passwd.real",
        "/etc/group",
        "/etc/motd",
        "/etc/skel/.profile",
        "/opt/old.txt",
        "/opt/new.txt",
        "/data/keep.txt",
      ];
      const files = await readImageFiles(c, layers, paths);
      const ours = new Map(paths.map((p) => {
        const v = files.get(p);
        return [p, v === undefined ? undefined : dec.decode(v)];
      }));
      const realPasswd = passwd + "real:x:3000:3000::/:/bin/sh\n";
      assert.deepEqual(Object.fromEntries(ours), {
        "/etc/passwd": realPasswd,
        "/etc/passwd.real": realPasswd,
        "/etc/group": undefined,
        "/etc/motd": undefined,
        "/etc/skel/.profile": undefined,
        "/opt/old.txt": undefined,
        "/opt/new.txt": "new\n",
        "/data/keep.txt": "keep\n",
      });
      // containerd's own unpack agrees.
      const theirs = await readFromSnapshot(c, h, built.diffIds, paths);
      assert.deepEqual(Object.fromEntries(theirs), Object.fromEntries(ours));

      // And the user lookup sees the final files: passwd via the symlink, no /etc/group.
      const text = await readImagePasswdGroup(c, layers);
      assert.equal(text.group, undefined);
      assert.deepEqual(resolveUser("real", text, name), {
        uid: 3000,
        gid: 3000,
        additionalGids: [3000],
        username: "real",
      });
      assertThrows(
        () => resolveUser("builder", text, name),
        Error,
        `Cannot resolve user 'builder': no such user in /etc/passwd of image ${name}`,
      );
      assertThrows(
        () => resolveUser("tester:extra", text, name),
        Error,
        `image ${name} has no /etc/group to look up group 'extra'`,
      );
    } finally {
      await ctr(h.address, ["images", "rm", "--sync", name], { namespace: h.namespace })
        .catch((e) => console.error(`cleanup: ${e}`));
    }
  },
);
