import assert from "node:assert/strict";
import { readAllContent } from "../../lib/content/read.ts";
import { clearImageFilesCache, imageFilesCacheStats } from "../../lib/image/files.ts";
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
