/**
 * Collecting files out of a step through containerd's differ and content store, against the
 * harness's containerd.
 *
 * @module
 */

import assert from "node:assert/strict";
import { connect } from "../../lib/grpc/connection.ts";
import { StepError } from "../../lib/step/errors.ts";
import { runStep, type StepResult } from "../../lib/step/run.ts";
import { assertRejects } from "../asserts.ts";
import { assertNothingLeft, contentDigests, stepConfig, withTempDir } from "../daemon_helpers.ts";
import { containerdTest, type HarnessInfo } from "../harness.ts";

async function snapshotKeys(h: HarnessInfo): Promise<string[]> {
  await using c = await connect(`unix://${h.address}`, { namespace: h.namespace });
  const keys: string[] = [];
  for await (const r of c.snapshots.list({ snapshotter: h.snapshotter })) {
    keys.push(...r.info.map((i) => i.name));
  }
  return keys.sort();
}

containerdTest(
  "collect copies what a failed step wrote (files, modes, links as links) and leaves nothing behind",
  async (h) => {
    await withTempDir("wfe-collect-", async (dir) => {
      const blobs = await contentDigests(h);
      const snapshots = await snapshotKeys(h);
      const err = await assertRejects(
        () =>
          runStep(stepConfig(h, {
            user: "0:0",
            run: "mkdir -p /out/sub && echo alpha > /out/a.txt && " +
              "printf 'b' > /out/sub/b.bin && chmod 640 /out/sub/b.bin && " +
              "ln -s /etc/passwd /out/link && echo done > /report.txt && exit 3",
            collect: [
              { path: "/out", to: `${dir}/out` },
              { path: "/report.txt", to: `${dir}/report` },
              { path: "/never/written", to: `${dir}/none` },
            ],
          })),
        StepError,
        "container exited with code 3",
      );
      const result = err.result as StepResult;
      assert.deepEqual(result.collected.map((c) => [c.path, c.found, c.files.sort()]), [
        ["/out", true, [`${dir}/out/a.txt`, `${dir}/out/link`, `${dir}/out/sub/b.bin`]],
        ["/report.txt", true, [`${dir}/report`]],
        ["/never/written", false, []],
      ]);
      assert.equal(await Deno.readTextFile(`${dir}/out/a.txt`), "alpha\n");
      assert.equal(await Deno.readTextFile(`${dir}/report`), "done\n");
      assert.equal((await Deno.stat(`${dir}/out/sub/b.bin`)).mode! & 0o777, 0o640);
      assert.equal(await Deno.readLink(`${dir}/out/link`), "/etc/passwd");
      assert.ok((await Deno.lstat(`${dir}/out/link`)).isSymlink);
      await assert.rejects(Deno.lstat(`${dir}/none`), Deno.errors.NotFound);
      // No staging dir is left next to the destinations.
      assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["out", "report"]);
      await assertNothingLeft(h, result.containerId);
      assert.deepEqual(await contentDigests(h), blobs, "the diff blob was left");
      assert.deepEqual(await snapshotKeys(h), snapshots, "the view snapshot was left");
    });
  },
);

containerdTest(
  "collect refuses a destination that exists, or a relative container path, before anything runs",
  async (h) => {
    await withTempDir("wfe-collect-", async (dir) => {
      await Deno.writeTextFile(`${dir}/taken`, "mine\n");
      await assertRejects(
        () =>
          runStep(stepConfig(h, { run: "true", collect: [{ path: "/x", to: `${dir}/taken` }] })),
        TypeError,
        `collect[0].to '${dir}/taken': it already exists`,
      );
      await assertRejects(
        () => runStep(stepConfig(h, { run: "true", collect: [{ path: "x", to: `${dir}/y` }] })),
        TypeError,
        'collect[0].path "x": expected an absolute path',
      );
      await assertRejects(
        () => runStep(stepConfig(h, { run: "true", collect: [{ path: "/x", to: `${dir}/no/y` }] })),
        TypeError,
        `collect[0].to '${dir}/no/y': no directory '${dir}/no'`,
      );
      assert.equal(await Deno.readTextFile(`${dir}/taken`), "mine\n");
    });
  },
);
