import assert from "node:assert/strict";
import { readTar, type TarItem } from "../../lib/archive/tar.ts";
import {
  chunked,
  concat,
  dec,
  enc,
  END,
  entries,
  file,
  header,
  padded,
  paxData,
  raw,
} from "./_tar_fixtures.ts";
import { assertRejects } from "../asserts.ts";
import { tarHeaderChecksum, writeTar } from "../oci_archive.ts";

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

Deno.test("TarItem.chunks() streams large data in 1 MiB pieces; a read stopped part way is skipped", async () => {
  const big = new Uint8Array(3 * 1024 * 1024 + 100);
  for (let i = 0; i < big.length; i += 4096) big[i] = (i / 4096) & 0xff;
  const tar = writeTar([
    { type: "file", path: "big", content: big },
    { type: "file", path: "after", content: "next entry" },
    { type: "file", path: "big2", content: big },
    { type: "file", path: "last", content: "end" },
  ]);
  // Fed in odd-sized pieces, as a network stream would.
  const pieces = Array.from(
    { length: Math.ceil(tar.length / 70001) },
    (_, i) => tar.subarray(i * 70001, (i + 1) * 70001),
  );
  const seen: string[] = [];
  for await (const item of readTar(pieces)) {
    if (item.path === "big") {
      const parts: Uint8Array[] = [];
      for await (const part of item.chunks()) parts.push(part);
      assert.deepEqual(parts.map((p) => p.length), [1048576, 1048576, 1048576, 100]);
      const joined = new Uint8Array(big.length);
      parts.reduce((at, p) => (joined.set(p, at), at + p.length), 0);
      assert.ok(joined.every((b, i) => b === big[i]), "the data differs");
    } else if (item.path === "big2") {
      for await (const _ of item.chunks()) break; // one piece, then on to the next entry
    } else {
      seen.push(`${item.path}=${new TextDecoder().decode(await item.bytes())}`);
    }
  }
  assert.deepEqual(seen, ["after=next entry", "last=end"]);
});
