import assert from "node:assert/strict";
import { readAllContent } from "../../lib/content/read.ts";
import {
  clearImageFilesCache,
  imageFilesCacheStats,
  readImagePasswdGroup,
} from "../../lib/image/files.ts";
import { readLocalPasswdGroup } from "../../lib/image/local_snapshot.ts";
import { connect } from "../../lib/grpc/connection.ts";
import { Kind } from "../../proto/gen/types.ts";
import { resolveImage } from "../../lib/image/resolve.ts";
import { imageUserFiles, USER_FILES_LABEL } from "../../lib/image/user_files.ts";
import { resolveUser } from "../../lib/runtime/user.ts";
import { containerdTest } from "../harness.ts";
import { importOneLayer, scratchNamespace } from "../daemon_helpers.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

containerdTest(
  "imageUserFiles(): 8 concurrent lookups read the layer once, the result is recorded on the config, survives GC and serves a new process without reading layers",
  async (h) => {
    await using ns = await scratchNamespace(h);
    await importOneLayer(h, ns.name);
    const image = await resolveImage(ns.client, h.images.oneLayer.name);
    clearImageFilesCache();
    const before = imageFilesCacheStats().layerReads;
    const all = await Promise.all(
      Array.from({ length: 8 }, () => imageUserFiles(ns.client, image)),
    );
    assert.equal(imageFilesCacheStats().layerReads - before, 1, "one read for 8 lookups");
    for (const files of all) assert.deepEqual(files, all[0]);
    assert.equal(resolveUser("tester", all[0], image.name).uid, 1000);

    // Recorded: a blob referenced from the config by a GC label, kept by a synchronous GC.
    await ns.client.leases.create({ id: "gc-trigger" });
    await ns.client.leases.delete({ id: "gc-trigger", sync: true });
    const { info } = await ns.client.content.info({ digest: image.configDigest });
    const blob = info!.labels[USER_FILES_LABEL];
    assert.match(blob, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(await readAllContent(ns.client, blob))), {
      passwd: all[0].passwd,
      group: all[0].group,
    });

    // Another process: no layer is read.
    const script = `
      import { connect } from "${ROOT}lib/grpc/connection.ts";
      import { imageFilesCacheStats } from "${ROOT}lib/image/files.ts";
      import { resolveImage } from "${ROOT}lib/image/resolve.ts";
      import { imageUserFiles } from "${ROOT}lib/image/user_files.ts";
      await using c = await connect("unix://${h.address}", { namespace: "${ns.name}" });
      const files = await imageUserFiles(c, await resolveImage(c, "${image.name}"));
      console.log(JSON.stringify({ files, reads: imageFilesCacheStats().layerReads }));`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=ts", script],
      cwd: ROOT,
      stderr: "inherit",
    }).output();
    assert.equal(out.code, 0);
    const other = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.deepEqual(other, { files: all[0], reads: 0 });
  },
);

containerdTest(
  "imageUserFiles() with the snapshotter of a local daemon reads the snapshot directories, no layer; the same files as the layers give",
  async (h) => {
    await using c = await connect(`unix://${h.address}`, { namespace: h.namespace });
    for (const facts of [h.images.oneLayer, h.images.threeLayer]) {
      const image = await resolveImage(c, facts.name);
      clearImageFilesCache();
      const fromLayers = await readImagePasswdGroup(c, image);
      assert.ok(fromLayers.passwd?.includes("tester:x:1000:"), "the image has a passwd");
      const layerReads = imageFilesCacheStats().layerReads;
      const local = await readLocalPasswdGroup(c, h.snapshotter, image.chainId);
      assert.deepEqual(local, fromLayers, facts.name);
      assert.equal(imageFilesCacheStats().layerReads, layerReads, "no layer read");
    }
    // The views it made are gone.
    const views: string[] = [];
    for await (const r of c.snapshots.list({ snapshotter: h.snapshotter })) {
      views.push(...r.info.filter((i) => i.kind === Kind.VIEW).map((i) => i.name));
    }
    assert.deepEqual(views, [], "a view was left");

    // Through imageUserFiles (and recorded) in a namespace of its own.
    await using ns = await scratchNamespace(h);
    await importOneLayer(h, ns.name);
    const image = await resolveImage(ns.client, h.images.oneLayer.name);
    clearImageFilesCache();
    const reads = imageFilesCacheStats().layerReads;
    const files = await imageUserFiles(ns.client, image, { snapshotter: h.snapshotter });
    assert.equal(imageFilesCacheStats().layerReads, reads, "no layer read");
    assert.equal(resolveUser("tester", files, image.name).uid, 1000);
  },
);
