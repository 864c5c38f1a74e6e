import assert from "node:assert/strict";
import { readLayeredFiles } from "../../lib/archive/layered.ts";
import {
  concat,
  dec,
  END,
  file,
  layersOf,
  paxData,
  raw,
  readText,
  whiteout,
} from "./_tar_fixtures.ts";
import { assertRejects } from "../asserts.ts";
import { type TarEntry, writeTar } from "../oci_archive.ts";

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
