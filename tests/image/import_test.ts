import assert from "node:assert/strict";
import { openImageArchive } from "../../lib/archive/image_archive.ts";
import { importImages } from "../../lib/image/import.ts";
import { chainId } from "../../lib/oci/chain_id.ts";
import { MediaType } from "../../lib/oci/media_types.ts";
import { runStep } from "../../lib/step/run.ts";
import { assertRejects } from "../asserts.ts";
import { scratchNamespace } from "../daemon_helpers.ts";
import { containerdTest, ctr } from "../harness.ts";
import { buildImage, busyboxBaseLayer, gzip, readStaticBusybox } from "../oci_archive.ts";

async function busyboxImage(name: string) {
  return await buildImage({
    name,
    layers: [
      busyboxBaseLayer(await readStaticBusybox()),
      [{ type: "file", path: "/imported.txt", content: `imported as ${name}\n` }],
    ],
  });
}

async function tempFile(bytes: Uint8Array, suffix: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "wfe-import-test-" });
  const path = `${dir}/archive${suffix}`;
  await Deno.writeFile(path, bytes);
  return path;
}

async function skopeo(args: string[]): Promise<void> {
  const out = await new Deno.Command("skopeo", { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`skopeo ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

containerdTest(
  "importImages() of an OCI archive and its gzip'd form stores the image as ctr import does; a step runs from it",
  async (h) => {
    const built = await busyboxImage("wfe.test/imported:oci");
    const plain = await tempFile(built.archive, ".tar");
    const gzipped = await tempFile(await gzip(built.archive), ".tar.gz");
    try {
      await using ours = await scratchNamespace(h);
      await using theirs = await scratchNamespace(h);
      const result = await importImages(ours.client, plain, { snapshotter: h.snapshotter });
      assert.equal(result.format, "oci");
      assert.deepEqual(result.images.map((i) => i.name), ["wfe.test/imported:oci"]);
      assert.equal(result.images[0].target.digest, built.manifestDigest);
      assert.equal(result.images[0].fetched, 4, "manifest, config, two layers");

      await ctr(h.address, ["images", "import", "--snapshotter", h.snapshotter, plain], {
        namespace: theirs.name,
      });
      const { image: mine } = await ours.client.images.get({ name: "wfe.test/imported:oci" });
      const { image: ctrs } = await theirs.client.images.get({ name: "wfe.test/imported:oci" });
      assert.deepEqual(mine?.target, ctrs?.target, "same target, annotations included");

      const step = await runStep({
        image: "wfe.test/imported:oci",
        run: "cat /imported.txt",
        containerdAddr: h.address,
        namespace: ours.name,
        snapshotter: h.snapshotter,
      });
      assert.equal(step.stdout, "imported as wfe.test/imported:oci\n");

      // The gzip'd archive imports too (into a fresh namespace, so everything is written again).
      await using again = await scratchNamespace(h);
      const fromGzip = await importImages(again.client, gzipped, { snapshotter: h.snapshotter });
      assert.equal(fromGzip.images[0].target.digest, built.manifestDigest);
      assert.equal(fromGzip.images[0].fetched, 4);
    } finally {
      await Deno.remove(plain.slice(0, plain.lastIndexOf("/")), { recursive: true });
      await Deno.remove(gzipped.slice(0, gzipped.lastIndexOf("/")), { recursive: true });
    }
  },
);

containerdTest(
  "importImages() of a docker-save archive made by skopeo gives the manifest digest ctr import gives, one image per tag",
  async (h) => {
    const built = await busyboxImage("wfe.test/imported:docker");
    const oci = await tempFile(built.archive, ".tar");
    const dir = oci.slice(0, oci.lastIndexOf("/"));
    const docker = `${dir}/docker.tar`;
    try {
      await skopeo([
        "copy",
        "--quiet",
        `oci-archive:${oci}`,
        `docker-archive:${docker}:wfe.test/saved:1`,
      ]);
      await using archive = await openImageArchive(docker);
      assert.equal(archive.format, "docker");
      assert.deepEqual(archive.images.map((i) => i.names), [["wfe.test/saved:1"]]);
      assert.equal(archive.images[0].target.mediaType, MediaType.dockerManifest);

      await using ours = await scratchNamespace(h);
      await using theirs = await scratchNamespace(h);
      const { images } = await importImages(
        ours.client,
        (await Deno.open(docker)).readable,
        { snapshotter: h.snapshotter },
      );
      assert.deepEqual(images.map((i) => i.name), ["wfe.test/saved:1"]);
      await ctr(h.address, ["images", "import", "--snapshotter", h.snapshotter, docker], {
        namespace: theirs.name,
      });
      const { image: mine } = await ours.client.images.get({ name: "wfe.test/saved:1" });
      const { image: ctrs } = await theirs.client.images.get({ name: "wfe.test/saved:1" });
      assert.deepEqual(mine?.target, ctrs?.target);
      assert.equal(images[0].chainId, await chainId(built.diffIds), "the image's chain");
      const step = await runStep({
        image: "wfe.test/saved:1",
        run: "cat /imported.txt",
        containerdAddr: h.address,
        namespace: ours.name,
        snapshotter: h.snapshotter,
      });
      assert.equal(step.stdout, "imported as wfe.test/imported:docker\n");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("openImageArchive() rejects a tar that is no image archive, naming both formats", async () => {
  const { writeTar } = await import("../oci_archive.ts");
  const path = await tempFile(
    writeTar([{ type: "file", path: "hello.txt", content: "hi\n" }]),
    ".tar",
  );
  try {
    await assertRejects(
      () => openImageArchive(path),
      TypeError,
      "not an image archive: it has neither oci-layout and index.json (OCI image layout) nor manifest.json (docker save)",
    );
  } finally {
    await Deno.remove(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  }
});
