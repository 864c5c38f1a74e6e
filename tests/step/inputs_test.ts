/**
 * Step inputs against the harness's containerd: files, directories, symlinks and tar streams
 * packed on this side, written to the content store and applied onto the step's snapshot.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runStep } from "../../lib/step/run.ts";
import { assertRejects } from "../asserts.ts";
import { assertNothingLeft, contentDigests, stepConfig, withTempDir } from "../daemon_helpers.ts";
import { containerdTest, type HarnessInfo } from "../harness.ts";
import { writeTar } from "../oci_archive.ts";

const LIST = "cd /in && find . | sort | while read -r p; do " +
  'if [ -L "$p" ]; then echo "$p -> $(readlink "$p")"; ' +
  'else echo "$p $(stat -c "%a %u:%g" "$p")"; fi; done';

async function sourceTree(dir: string): Promise<void> {
  await Deno.mkdir(`${dir}/src/sub`, { recursive: true });
  await Deno.writeTextFile(`${dir}/src/a.txt`, "alpha\n");
  await Deno.chmod(`${dir}/src/a.txt`, 0o640);
  await Deno.writeTextFile(`${dir}/src/sub/run.sh`, "#!/bin/sh\necho ran\n");
  await Deno.chmod(`${dir}/src/sub/run.sh`, 0o755);
  await Deno.writeTextFile(`${dir}/secret`, "host secret\n");
  // A link out of the source: kept as a link, its target never read.
  await Deno.symlink("../../secret", `${dir}/src/sub/escape`);
  await Deno.symlink("a.txt", `${dir}/src/link`);
  await Deno.writeTextFile(`${dir}/one.conf`, "k=v\n");
}

containerdTest(
  "inputs: a directory, a file and a tar stream reach the step with modes, owners and links kept",
  async (h: HarnessInfo) => {
    await withTempDir("wfe-inputs-", async (dir) => {
      await sourceTree(dir);
      const before = await contentDigests(h);
      const tar = writeTar([
        { type: "dir", path: "/data" },
        { type: "file", path: "/data/x.bin", content: "xyz", mode: 0o600 },
        { type: "file", path: "/../../evil", content: "clamped" },
      ]);
      const result = await runStep(stepConfig(h, {
        user: "1000:1000",
        run: `${LIST}; cat /in/a.txt /in/sub/escape 2>&1; /in/sub/run.sh; cat /etc/app/one.conf; ` +
          "stat -c '%a %u:%g' /etc/app/one.conf; cat /t/data/x.bin; echo; cat /t/evil; echo; " +
          "stat -c '%a %u:%g' /t/data/x.bin; ls /evil 2>&1 || true",
        inputs: [
          { source: `${dir}/src`, target: "/in" },
          { source: `${dir}/one.conf`, target: "/etc/app/one.conf", uid: 0, gid: 0, mode: 0o444 },
          {
            source: new Blob([tar as Uint8Array<ArrayBuffer>]).stream(),
            target: "/t",
            uid: 7,
            gid: 8,
            mode: 0o604,
          },
        ],
      }));
      assert.equal(
        result.stdout,
        [
          ". 755 1000:1000",
          "./a.txt 640 1000:1000",
          "./link -> a.txt",
          "./sub 755 1000:1000",
          "./sub/escape -> ../../secret",
          "./sub/run.sh 755 1000:1000",
          "alpha",
          "cat: can't open '/in/sub/escape': No such file or directory",
          "ran",
          "k=v",
          "444 0:0",
          "xyz",
          "clamped",
          "604 7:8",
          "ls: /evil: No such file or directory",
          "",
        ].join("\n"),
      );
      await assertNothingLeft(h, result.containerId);
      assert.deepEqual(await contentDigests(h), before, "content left behind");
    });
  },
);

containerdTest(
  "inputs: a missing source, a relative target or a bad mode is refused naming the field; nothing is created",
  async (h: HarnessInfo) => {
    const before = await contentDigests(h);
    for (
      const [inputs, pattern] of [
        [
          [{ source: "/nonexistent/wfe-x", target: "/x" }],
          "inputs[0].source '/nonexistent/wfe-x': No such file",
        ],
        [
          [{ source: "/etc/hostname", target: "x" }],
          'inputs[0].target "x": expected an absolute path',
        ],
        [
          [{ source: "/etc/hostname", target: "/x", mode: 0o17777 }],
          "inputs[0].mode 8191: expected permission bits",
        ],
        [[{ source: "/etc/hostname", target: "/x", uid: -1 }], "inputs[0].uid -1: expected 0 to"],
        [
          [{ source: "/etc/hostname", target: "/a/../x" }],
          "inputs[0].target '/a/../x': '..' is not allowed",
        ],
      ] as const
    ) {
      await assertRejects(
        // deno-lint-ignore no-explicit-any
        () => runStep(stepConfig(h, { run: "true", inputs: inputs as any })),
        Error,
        pattern,
      );
    }
    assert.deepEqual(await contentDigests(h), before);
  },
);
