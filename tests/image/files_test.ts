import assert from "node:assert/strict";
import { concat as concatAll } from "../../lib/_util/bytes.ts";
import { assertRejects, assertThrows } from "../asserts.ts";
import { type LayerSource, readLayeredFiles } from "../../lib/archive/layered.ts";
import { readTar, type TarItem } from "../../lib/archive/tar.ts";
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
import { resolveUser } from "../../lib/runtime/user.ts";
import { containerdTest, ctr, type HarnessInfo } from "../harness.ts";
import {
  buildImage,
  busyboxBaseLayer,
  gzip,
  readStaticBusybox,
  sha256Digest,
  type TarEntry,
  tarHeaderChecksum,
  writeTar,
} from "../oci_archive.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

// ---------------------------------------------------------------------------------------------
// helpers: hand-made tar pieces (writeTar writes plain ustar only)

interface RawHeader {
  name: string;
  type: string;
  size?: number;
  linkname?: string;
  prefix?: string;
  /** GNU magic ("ustar  \0") instead of POSIX ("ustar\0" "00"). */
  gnu?: boolean;
}

function header(o: RawHeader): Uint8Array {
  const h = new Uint8Array(512);
  const put = (offset: number, s: string) => h.set(enc.encode(s), offset);
  put(0, o.name);
  put(100, "0000644\0");
  put(108, "0000000\0");
  put(116, "0000000\0");
  put(124, (o.size ?? 0).toString(8).padStart(11, "0") + "\0");
  put(136, "14524523000\0");
  put(156, o.type);
  if (o.linkname) put(157, o.linkname);
  if (o.gnu) {
    put(257, "ustar  \0");
  } else {
    put(257, "ustar\0");
    put(263, "00");
  }
  if (o.prefix) put(345, o.prefix);
  put(148, tarHeaderChecksum(h).toString(8).padStart(6, "0") + "\0 ");
  return h;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return concatAll(parts);
}

function padded(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(data.length / 512) * 512);
  out.set(data);
  return out;
}

/** A header plus its padded data. */
function raw(o: RawHeader, data: Uint8Array | string = new Uint8Array()): Uint8Array {
  const bytes = typeof data === "string" ? enc.encode(data) : data;
  return concat(header({ ...o, size: o.size ?? bytes.length }), padded(bytes));
}

/** PAX records with correct self-including lengths. */
function paxData(records: Record<string, string>): Uint8Array {
  let text = "";
  for (const [k, v] of Object.entries(records)) {
    const body = ` ${k}=${v}\n`;
    const bodyLength = enc.encode(body).length;
    let length = bodyLength + 1;
    while (String(length).length + bodyLength !== length) {
      length = String(length).length + bodyLength;
    }
    text += `${length}${body}`;
  }
  return enc.encode(text);
}

const END = new Uint8Array(1024);

/** Splits bytes into small chunks so headers and data straddle chunk boundaries. */
function chunked(bytes: Uint8Array, size = 97): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

async function entries(tar: Uint8Array): Promise<{ item: TarItem; data: string }[]> {
  const out: { item: TarItem; data: string }[] = [];
  for await (const item of readTar(chunked(tar))) {
    out.push({ item, data: item.type === "file" ? dec.decode(await item.bytes()) : "" });
  }
  return out;
}

/** In-memory layers that count how often they are opened. */
function layersOf(...tars: Uint8Array[]): { sources: LayerSource[]; opens: () => number } {
  let opens = 0;
  const sources = tars.map((tar, i) => ({
    name: `layer${i}`,
    open: () => {
      opens++;
      return chunked(tar, 211);
    },
  }));
  return { sources, opens: () => opens };
}

async function readText(
  tars: Uint8Array[],
  paths: string[],
  maxFileBytes?: number,
): Promise<Record<string, string | undefined>> {
  const { sources } = layersOf(...tars);
  const files = await readLayeredFiles(sources, paths, { maxFileBytes, imageName: "test" });
  return Object.fromEntries(paths.map((p) => {
    const v = files.get(p);
    return [p, v === undefined ? undefined : dec.decode(v)];
  }));
}

function file(path: string, content: string): TarEntry {
  return { type: "file", path, content };
}

function whiteout(path: string): TarEntry {
  const i = path.lastIndexOf("/");
  return { type: "file", path: `${path.slice(0, i)}/.wh.${path.slice(i + 1)}`, content: "" };
}

// ---------------------------------------------------------------------------------------------
// readTar

Deno.test("readTar() reads what writeTar() writes, across chunk boundaries", async () => {
  const longPath = `/${"d".repeat(80)}/${"f".repeat(60)}.txt`; // needs the ustar prefix
  const tar = writeTar([
    { type: "dir", path: "/etc" },
    file("/etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
    { type: "symlink", path: "/bin/sh", target: "busybox" },
    file(longPath, "long\n"),
    file("/empty", ""),
  ]);
  const got = await entries(tar);
  assert.deepEqual(got.map(({ item }) => [item.path, item.type, item.linkname, item.size]), [
    ["etc/", "dir", "", 0],
    ["etc/passwd", "file", "", 26],
    ["bin/sh", "symlink", "busybox", 0],
    [longPath.slice(1), "file", "", 5],
    ["empty", "file", "", 0],
  ]);
  assert.equal(got[1].data, "root:x:0:0::/root:/bin/sh\n");
  assert.equal(got[3].data, "long\n");
  assert.equal(got[1].item.mode, 0o644);
});

Deno.test("readTar() skips the data of entries whose bytes are not read", async () => {
  const big = new Uint8Array(5000).fill(7);
  const tar = writeTar([
    { type: "file", path: "/big", content: big },
    file("/after", "after\n"),
  ]);
  const seen: string[] = [];
  for await (const item of readTar(chunked(tar, 333))) {
    seen.push(item.path);
    if (item.path === "after") assert.equal(dec.decode(await item.bytes()), "after\n");
  }
  assert.deepEqual(seen, ["big", "after"]);
});

Deno.test("readTar() applies GNU long names and long link names", async () => {
  const name = `etc/${"n".repeat(150)}`;
  const link = `/usr/${"l".repeat(130)}`;
  const tar = concat(
    raw({ name: "././@LongLink", type: "L", gnu: true }, name + "\0"),
    raw({ name: name.slice(0, 99), type: "0", gnu: true }, "long name\n"),
    raw({ name: "././@LongLink", type: "K", gnu: true }, link + "\0"),
    raw({ name: "etc/short-link", type: "2", linkname: link.slice(0, 99), gnu: true }),
    raw({ name: "etc/plain", type: "0", gnu: true, prefix: "ignored-in-gnu" }, "plain\n"),
    END,
  );
  const got = await entries(tar);
  assert.deepEqual(got.map(({ item }) => [item.path, item.type, item.linkname]), [
    [name, "file", ""],
    ["etc/short-link", "symlink", link],
    ["etc/plain", "file", ""],
  ]);
  assert.equal(got[0].data, "long name\n");
});

Deno.test("readTar() applies PAX path, linkpath and size records and skips global headers", async () => {
  const path = `opt/${"p".repeat(200)}/ünïcode.txt`;
  const tar = concat(
    raw({ name: "pax_global_header", type: "g" }, paxData({ comment: "global" })),
    raw({ name: "PaxHeaders/x", type: "x" }, paxData({ path, mtime: "1700000000.5" })),
    raw({ name: "truncated-name", type: "0" }, "pax\n"),
    raw({ name: "PaxHeaders/y", type: "x" }, paxData({ linkpath: "/a/very/long/target" })),
    raw({ name: "opt/link", type: "2", linkname: "short" }),
    // A PAX size overrides the header's size field (used for files over 8 GiB).
    raw({ name: "PaxHeaders/z", type: "x" }, paxData({ size: "3" })),
    concat(header({ name: "opt/sized", type: "0", size: 0 }), padded(enc.encode("abc"))),
    raw({ name: "opt/next", type: "0" }, "next\n"),
    END,
  );
  const got = await entries(tar);
  assert.deepEqual(got.map(({ item }) => [item.path, item.linkname, item.size]), [
    [path, "", 4],
    ["opt/link", "/a/very/long/target", 0],
    ["opt/sized", "", 3],
    ["opt/next", "", 5],
  ]);
  assert.deepEqual(got.map(({ data }) => data), ["pax\n", "", "abc", "next\n"]);
});

Deno.test("readTar() reads hard links, devices and base-256 sizes", async () => {
  const base256 = header({ name: "b256", type: "0" });
  base256.fill(0, 124, 136);
  base256[124] = 0x80;
  base256[135] = 4; // size 4 in base-256
  base256.fill(0x20, 148, 156);
  base256.set(enc.encode(tarHeaderChecksum(base256).toString(8).padStart(6, "0") + "\0 "), 148);
  const tar = concat(
    raw({ name: "a", type: "0" }, "data"),
    raw({ name: "b", type: "1", linkname: "a" }),
    raw({ name: "dev/null", type: "3" }),
    raw({ name: "fifo", type: "6" }),
    base256,
    padded(enc.encode("b256")),
    END,
  );
  const got = await entries(tar);
  assert.deepEqual(got.map(({ item, data }) => [item.path, item.type, item.linkname, data]), [
    ["a", "file", "", "data"],
    ["b", "hardlink", "a", ""],
    ["dev/null", "char", "", ""],
    ["fifo", "fifo", "", ""],
    ["b256", "file", "", "b256"],
  ]);
});

Deno.test("readTar() rejects a bad checksum and a truncated archive", async () => {
  const tar = writeTar([file("/a", "hello")]);
  const corrupt = tar.slice();
  corrupt[0] ^= 1;
  await assertRejects(() => entries(corrupt), Error, "tar: invalid header checksum at byte 0");
  await assertRejects(() => entries(tar.slice(0, 600)), Error, "the archive ends inside");
  await assertRejects(() => entries(tar.slice(0, 300)), Error, "ends inside a header");
  // No end-of-archive blocks at all is accepted.
  const noEnd = tar.slice(0, 1024);
  assert.deepEqual((await entries(noEnd)).map(({ data }) => data), ["hello"]);
});

Deno.test("readTar() refuses data reads after moving on", async () => {
  const tar = writeTar([file("/a", "one"), file("/b", "two")]);
  const items: TarItem[] = [];
  for await (const item of readTar([tar])) items.push(item);
  await assertRejects(() => items[0].bytes(), Error, "data read after moving to the next entry");
});

// ---------------------------------------------------------------------------------------------
// readLayeredFiles: whiteouts, links, limits

const BASE: TarEntry[] = [
  { type: "dir", path: "/etc" },
  file("/etc/passwd", "base passwd\n"),
  file("/etc/group", "base group\n"),
  file("/etc/motd", "base motd\n"),
  { type: "dir", path: "/etc/skel" },
  file("/etc/skel/.profile", "profile\n"),
  { type: "dir", path: "/opt" },
  file("/opt/old.txt", "old\n"),
  file("/opt/sub/deep.txt", "deep\n"),
  file("/data/keep.txt", "keep\n"),
];

Deno.test("readLayeredFiles() takes the topmost version of a file", async () => {
  const got = await readText([
    writeTar(BASE),
    writeTar([{ type: "dir", path: "/etc" }, file("/etc/passwd", "layer two passwd\n")]),
    writeTar([file("/etc/group", "layer three group\n")]),
  ], ["/etc/passwd", "/etc/group", "/data/keep.txt", "etc/motd", "/nonexistent", "/etc"]);
  assert.deepEqual(got, {
    "/etc/passwd": "layer two passwd\n",
    "/etc/group": "layer three group\n",
    "/data/keep.txt": "keep\n",
    "etc/motd": "base motd\n",
    "/nonexistent": undefined,
    "/etc": undefined, // a directory is not a file
  });
});

Deno.test("readLayeredFiles() applies .wh. whiteouts to files and directories of lower layers", async () => {
  const paths = ["/etc/motd", "/etc/skel/.profile", "/etc/passwd", "/opt/old.txt"];
  const got = await readText([
    writeTar(BASE),
    writeTar([whiteout("/etc/motd"), whiteout("/etc/skel")]),
  ], paths);
  assert.deepEqual(got, {
    "/etc/motd": undefined,
    "/etc/skel/.profile": undefined,
    "/etc/passwd": "base passwd\n",
    "/opt/old.txt": "old\n",
  });
  // A higher layer can put a whited-out file back.
  const back = await readText([
    writeTar(BASE),
    writeTar([whiteout("/etc/motd")]),
    writeTar([file("/etc/motd", "back\n")]),
  ], ["/etc/motd"]);
  assert.equal(back["/etc/motd"], "back\n");
});

Deno.test("readLayeredFiles() hides lower content of an opaque directory, keeping its own layer's", async () => {
  const paths = ["/opt/old.txt", "/opt/sub/deep.txt", "/opt/new.txt", "/opt/later.txt"];
  const got = await readText([
    writeTar(BASE),
    writeTar([
      file("/opt/new.txt", "new\n"), // before the marker in the same layer: kept
      { type: "file", path: "/opt/.wh..wh..opq", content: "" },
      file("/opt/later.txt", "later\n"), // after the marker: kept
    ]),
  ], paths);
  assert.deepEqual(got, {
    "/opt/old.txt": undefined,
    "/opt/sub/deep.txt": undefined,
    "/opt/new.txt": "new\n",
    "/opt/later.txt": "later\n",
  });
});

Deno.test("readLayeredFiles() lets a non-directory replace a whole tree", async () => {
  const got = await readText([
    writeTar(BASE),
    writeTar([file("/opt", "now a file\n")]),
  ], ["/opt/old.txt", "/opt"]);
  assert.deepEqual(got, { "/opt/old.txt": undefined, "/opt": "now a file\n" });
});

Deno.test("readLayeredFiles() follows a symlink whose target is in the same layer in one pass", async () => {
  const { sources, opens } = layersOf(
    writeTar(BASE),
    writeTar([
      { type: "symlink", path: "/etc/passwd", target: "passwd.real" },
      file("/etc/passwd.real", "real passwd\n"),
    ]),
  );
  const files = await readLayeredFiles(sources, ["/etc/passwd"]);
  assert.equal(dec.decode(files.get("/etc/passwd")), "real passwd\n");
  assert.equal(opens(), 2);
});

Deno.test("readLayeredFiles() follows a symlink into a lower layer with a second pass", async () => {
  const { sources, opens } = layersOf(
    writeTar([...BASE, file("/usr/share/base-passwd/passwd", "lower target\n")]),
    writeTar([{ type: "symlink", path: "/etc/passwd", target: "../usr/share/base-passwd/passwd" }]),
  );
  const files = await readLayeredFiles(sources, ["/etc/passwd"]);
  assert.equal(dec.decode(files.get("/etc/passwd")), "lower target\n");
  assert.equal(opens(), 4);
});

Deno.test("readLayeredFiles() resolves absolute, chained and parent-directory symlinks inside the image", async () => {
  const got = await readText([
    writeTar([
      file("/private/etc/passwd", "private passwd\n"),
      file("/real/group", "real group\n"),
      { type: "symlink", path: "/etc", target: "/private/etc" },
      { type: "symlink", path: "/one", target: "two" },
      { type: "symlink", path: "/two", target: "/real/group" },
      // ".." cannot leave the image root.
      { type: "symlink", path: "/escape", target: "../../../../real/group" },
      { type: "symlink", path: "/dangling", target: "/nowhere" },
      { type: "symlink", path: "/loop-a", target: "loop-b" },
      { type: "symlink", path: "/loop-b", target: "loop-a" },
    ]),
  ], ["/etc/passwd", "/one", "/escape", "/dangling"]);
  assert.deepEqual(got, {
    "/etc/passwd": "private passwd\n",
    "/one": "real group\n",
    "/escape": "real group\n",
    "/dangling": undefined,
  });
  const { sources } = layersOf(
    writeTar([
      { type: "symlink", path: "/loop-a", target: "loop-b" },
      { type: "symlink", path: "/loop-b", target: "loop-a" },
    ]),
  );
  await assertRejects(
    () => readLayeredFiles(sources, ["/loop-a"], { imageName: "loopy" }),
    Error,
    "Cannot read /loop-a from image loopy: too many levels of symbolic links",
  );
});

Deno.test("readLayeredFiles() gives a hard link the content of the entry it names", async () => {
  const tar = concat(
    raw({ name: "etc/passwd-", type: "0" }, "linked passwd\n"),
    raw({ name: "etc/passwd", type: "1", linkname: "etc/passwd-" }),
    END,
  );
  const { sources, opens } = layersOf(writeTar(BASE), tar);
  const files = await readLayeredFiles(sources, ["/etc/passwd"]);
  assert.equal(dec.decode(files.get("/etc/passwd")), "linked passwd\n");
  assert.equal(opens(), 4); // the link target was not watched in the first pass
  // Asking for both needs one pass.
  const again = layersOf(writeTar(BASE), tar);
  const both = await readLayeredFiles(again.sources, ["/etc/passwd-", "/etc/passwd"]);
  assert.equal(dec.decode(both.get("/etc/passwd")), "linked passwd\n");
  assert.equal(again.opens(), 2);
});

Deno.test("readLayeredFiles() caps file sizes but ignores big files nobody asked for", async () => {
  const big = "x".repeat(3000);
  const tars = [
    writeTar([file("/etc/passwd", big), file("/big/unrelated", big.repeat(10))]),
    writeTar([file("/etc/group", big)]),
  ];
  // The lower, too-large passwd is replaced: fine.
  const got = await readText([...tars, writeTar([file("/etc/passwd", "small\n")])], [
    "/etc/passwd",
  ], 100);
  assert.equal(got["/etc/passwd"], "small\n");
  await assertRejects(
    () => readText(tars, ["/etc/group"], 100),
    RangeError,
    "Cannot read /etc/group from image test: its 3000 bytes exceed maxFileBytes 100",
  );
  const linked = [...tars, writeTar([{ type: "symlink", path: "/g", target: "etc/group" }])];
  await assertRejects(
    () => readText(linked, ["/g"], 100),
    RangeError,
    "Cannot read /g (resolved to /etc/group) from image test",
  );
});

Deno.test("readLayeredFiles() rejects sparse files, bad layers and aborts", async () => {
  const sparse = concat(
    raw({ name: "PaxHeaders/s", type: "x" }, paxData({ "GNU.sparse.major": "1" })),
    raw({ name: "etc/passwd", type: "0" }, "map\n"),
    END,
  );
  await assertRejects(
    () => readText([sparse], ["/etc/passwd"]),
    Error,
    "it is a sparse file (not supported)",
  );
  const corrupt = writeTar(BASE);
  corrupt[1] ^= 1;
  await assertRejects(
    () => readText([corrupt], ["/etc/passwd"]),
    Error,
    "Cannot read layer layer0: tar: invalid header checksum at byte 0",
  );
  const controller = new AbortController();
  controller.abort(new Error("stop now"));
  const { sources } = layersOf(writeTar(BASE));
  await assertRejects(
    () => readLayeredFiles(sources, ["/etc/passwd"], { signal: controller.signal }),
    Error,
    "stop now",
  );
  await assertRejects(() => readLayeredFiles(sources, [""]), TypeError, "expected a file path");
});

Deno.test("readImageFiles() names the layer and media type of zstd and unknown layers", async () => {
  const fakeClient = {} as ContainerdClient; // never called: the media type is checked first
  const digest = `sha256:${"ab".repeat(32)}`;
  const image = (mediaType: string): ImageLayers => ({
    manifestDigest: `sha256:${crypto.randomUUID().replaceAll("-", "").padEnd(64, "0")}`,
    layers: [{ mediaType, digest, size: 1 }],
  });
  await assertRejects(
    () =>
      readImageFiles(fakeClient, image("application/vnd.oci.image.layer.v1.tar+zstd"), [
        "/etc/passwd",
      ]),
    Error,
    `Cannot read layer ${digest} (application/vnd.oci.image.layer.v1.tar+zstd) of image ` +
      "sha256:",
  );
  await assertRejects(
    () => readImageFiles(fakeClient, image("application/vnd.oci.image.layer.v1.tar+zstd"), ["/x"]),
    Error,
    "zstd-compressed layers are not supported (only tar and tar+gzip)",
  );
  await assertRejects(
    () => readImageFiles(fakeClient, image("application/vnd.example.weird"), ["/x"]),
    Error,
    "not a tar layer media type",
  );
  await assertRejects(
    () => readImageFiles(fakeClient, { manifestDigest: "sha256:nope", layers: [] }, ["/x"]),
    TypeError,
    "manifestDigest",
  );
});

/** A client whose content service serves blobs from memory, in 1000-byte messages. */
function memoryClient(blobs: Map<string, Uint8Array>): ContainerdClient {
  const content = {
    async *read(req: { digest: string }) {
      const blob = blobs.get(req.digest);
      if (!blob) {
        throw new ContainerdError({ code: 5, method: "Content.Read", details: "not found" });
      }
      for (let i = 0; i < blob.length; i += 1000) {
        yield { offset: i, data: blob.subarray(i, i + 1000) };
      }
    },
  };
  return { content } as unknown as ContainerdClient;
}

Deno.test("readImageFiles() reads tar and tar+gzip layers of every usual media type", async () => {
  const tar = writeTar([file("/etc/passwd", "from the layer\n")]);
  const gz = await gzip(tar);
  const blobs = new Map([[await sha256Digest(tar), tar], [await sha256Digest(gz), gz]]);
  const c = memoryClient(blobs);
  const cases: [string, Uint8Array][] = [
    ["application/vnd.oci.image.layer.v1.tar", tar],
    ["application/vnd.oci.image.layer.v1.tar+gzip", gz],
    ["application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", gz],
    ["application/vnd.docker.image.rootfs.diff.tar.gzip", gz],
    ["application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", gz],
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
    const archive = await Deno.makeTempFile({ prefix: "wfe-image-files-", suffix: ".tar" });
    await using c = await client(h);
    try {
      await Deno.writeFile(archive, built.archive);
      await ctr(h.address, [
        "images",
        "import",
        "--platform",
        built.platform,
        "--snapshotter",
        h.snapshotter,
        archive,
      ], { namespace: h.namespace, timeoutMs: 120_000 });

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
      await Deno.remove(archive).catch(() => {});
    }
  },
);
