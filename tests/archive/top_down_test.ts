import assert from "node:assert/strict";
import { readLayeredFiles } from "../../lib/archive/layered.ts";
import { readFilesTopDown } from "../../lib/archive/top_down.ts";
import { chunked, dec, file, layersOf, whiteout } from "./_tar_fixtures.ts";
import { type TarEntry, writeTar } from "../oci_archive.ts";

const PATHS = ["/etc/passwd", "/etc/group"];

function text(files: Map<string, Uint8Array | undefined> | undefined) {
  assert.ok(files, "the fast path handled the layers");
  return Object.fromEntries([...files].map(([p, v]) => [p, v && dec.decode(v)]));
}

/** A base layer with /etc early and 2 MiB of other files after it; counts chunks pulled. */
function baseLayer(): { total: number; pulled: () => number; open: () => Iterable<Uint8Array> } {
  const chunks = chunked(
    writeTar([
      { type: "dir", path: "/etc" },
      file("/etc/group", "root:x:0:\n"),
      file("/etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
      ...Array.from({ length: 32 }, (_, i) => file(`/usr/lib/f${i}`, "x".repeat(65536))),
    ]),
    4096,
  );
  let pulled = 0;
  return {
    total: chunks.length,
    pulled: () => pulled,
    open: function* () {
      for (const c of chunks) {
        pulled++;
        yield c;
      }
    },
  };
}

Deno.test("readFilesTopDown() stops reading the base layer once both files are found", async () => {
  const base = baseLayer();
  const top = writeTar([file("/app/run.sh", "echo\n")]);
  const got = await readFilesTopDown([
    { name: "base", open: base.open },
    { name: "top", open: () => chunked(top, 211) },
  ], PATHS);
  assert.deepEqual(text(got), {
    "/etc/passwd": "root:x:0:0::/root:/bin/sh\n",
    "/etc/group": "root:x:0:\n",
  });
  assert.ok(base.pulled() < base.total / 10, `pulled ${base.pulled()} of ${base.total} chunks`);
});

Deno.test("readFilesTopDown() takes the topmost version and never opens lower layers once decided", async () => {
  const { sources, opens } = layersOf(
    writeTar([file("/etc/passwd", "bottom\n"), file("/etc/group", "bottom group\n")]),
    writeTar([file("/etc/group", "middle group\n")]),
    writeTar([{ type: "dir", path: "/etc" }, file("/etc/passwd", "top\n")]),
  );
  assert.deepEqual(text(await readFilesTopDown(sources, PATHS)), {
    "/etc/passwd": "top\n",
    "/etc/group": "middle group\n",
  });
  assert.equal(opens(), 2, "the bottom layer was not opened");
});

Deno.test("readFilesTopDown() honours whiteouts of the files and reports absent files", async () => {
  const { sources } = layersOf(
    writeTar([file("/etc/passwd", "old\n"), file("/etc/group", "old group\n")]),
    writeTar([whiteout("/etc/passwd")]),
  );
  assert.deepEqual(text(await readFilesTopDown(sources, PATHS)), {
    "/etc/passwd": undefined,
    "/etc/group": "old group\n",
  });
  const none = layersOf(writeTar([file("/bin/sh", "")]));
  assert.deepEqual(text(await readFilesTopDown(none.sources, PATHS)), {
    "/etc/passwd": undefined,
    "/etc/group": undefined,
  });
});

Deno.test("readFilesTopDown() hands links, parent whiteouts, opaque dirs and big files to the full reader", async () => {
  const cases: TarEntry[][][] = [
    [[file("/etc/shadow", "s\n")], [{ type: "symlink", path: "/etc/passwd", target: "shadow" }]],
    [[file("/real/passwd", "p\n")], [{ type: "symlink", path: "/etc", target: "/real" }]],
    [[file("/etc/passwd", "p\n")], [whiteout("/etc")]],
    [[file("/etc/passwd", "p\n")], [file("/etc/.wh..wh..opq", "")]],
    [[file("/etc/passwd", "x".repeat(2000))]],
  ];
  for (const [i, stack] of cases.entries()) {
    const { sources } = layersOf(...stack.map((entries) => writeTar(entries)));
    assert.equal(
      await readFilesTopDown(sources, PATHS, { maxFileBytes: 1000 }),
      undefined,
      `case ${i}`,
    );
    // The full reader answers these (or refuses the big file).
    const full = await readLayeredFiles(sources, PATHS, { maxFileBytes: 1000 }).then(
      (m) => m.size,
      (e: Error) => e.message,
    );
    assert.ok(full === 2 || /exceed maxFileBytes 1000/.test(String(full)), `case ${i}: ${full}`);
  }
});
