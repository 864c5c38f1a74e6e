import assert from "node:assert/strict";
import type { ContainerdClient } from "../../lib/grpc/connection.ts";
import { ContainerdError, found, GrpcCode, isNotFound } from "../../lib/grpc/errors.ts";
import { pull } from "../../lib/image/pull.ts";
import type { PullProgress } from "../../lib/image/store.ts";
import { RegistryError } from "../../lib/registry/errors.ts";
import { runStep } from "../../lib/step/run.ts";
import { assertRejects } from "../asserts.ts";
import { containerdTest, ctr } from "../harness.ts";
import { scratchNamespace } from "../daemon_helpers.ts";
import { busyboxBaseLayer, type ImageSpec, readStaticBusybox } from "../oci_archive.ts";
import { startRegistry } from "../registry_harness.ts";

/** A busybox image with two more layers, one of them 6 MiB of random bytes. */
async function multiLayerSpec(): Promise<ImageSpec> {
  const big = new Uint8Array(6 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
  return {
    name: "wfe.test/pulled:1",
    layers: [
      busyboxBaseLayer(await readStaticBusybox()),
      [{ type: "file", path: "/data/random.bin", content: big }],
      [{ type: "file", path: "/pulled.txt", content: "pulled from the registry\n" }],
    ],
  };
}

/** Every blob's labels, by digest. */
async function contentLabels(
  client: ContainerdClient,
): Promise<Map<string, Record<string, string>>> {
  const out = new Map<string, Record<string, string>>();
  for await (const res of client.content.list({})) {
    for (const info of res.info) out.set(info.digest, info.labels);
  }
  return out;
}

const exists = found;

containerdTest(
  "pull stores an image as ctr images pull does (target, labels, snapshots), it survives GC and a step runs from it",
  async (h) => {
    await using registry = await startRegistry();
    const built = await registry.push(await multiLayerSpec(), "team/pulled", "1");
    const ref = `${registry.host}/team/pulled:1`;
    await using ours = await scratchNamespace(h);
    await using theirs = await scratchNamespace(h);

    const events: PullProgress[] = [];
    const image = await pull(ours.client, ref, {
      snapshotter: h.snapshotter,
      onProgress: (e) => events.push(e),
    });
    assert.equal(image.name, ref);
    assert.equal(image.target.digest, built.manifestDigest);
    assert.equal(image.fetched, 5, "manifest, config and three layers written");
    assert.equal(image.existed, 0);
    for (const digest of built.layerDigests) {
      const phases = events.filter((e) => e.digest === digest).map((e) => e.phase);
      assert.ok(phases.includes("downloading"), `${digest}: ${phases}`);
      assert.equal(phases.at(-1), "done", `${digest}: ${phases}`);
    }

    await ctr(h.address, ["images", "pull", "--plain-http", "--snapshotter", h.snapshotter, ref], {
      namespace: theirs.name,
      timeoutMs: 120_000,
    });
    const { image: record } = await ours.client.images.get({ name: ref });
    const { image: theirRecord } = await theirs.client.images.get({ name: ref });
    assert.deepEqual(record?.target, theirRecord?.target, "same target descriptor");
    assert.deepEqual(
      await contentLabels(ours.client),
      await contentLabels(theirs.client),
      "every blob with the same labels (gc refs, distribution source, uncompressed, snapshot)",
    );
    for (const key of [image.chainId]) {
      const a = await ours.client.snapshots.stat({ snapshotter: h.snapshotter, key });
      const b = await theirs.client.snapshots.stat({ snapshotter: h.snapshotter, key });
      assert.equal(a.info?.parent, b.info?.parent, "same snapshot chain");
      assert.deepEqual(a.info?.labels, b.info?.labels);
    }
    const { leases } = await ours.client.leases.list({});
    assert.deepEqual(leases, [], "the pull's lease is gone");

    // Garbage collection (a synchronous lease delete runs it) keeps everything the image holds.
    await ours.client.leases.create({ id: "gc-trigger" });
    await ours.client.leases.delete({ id: "gc-trigger", sync: true });
    for (const digest of [built.manifestDigest, built.configDigest, ...built.layerDigests]) {
      assert.ok(await exists(() => ours.client.content.info({ digest })), `${digest} kept`);
    }
    assert.ok(
      await exists(() =>
        ours.client.snapshots.stat({ snapshotter: h.snapshotter, key: image.chainId })
      ),
      "top snapshot kept",
    );

    const result = await runStep({
      image: ref,
      run: "cat /pulled.txt; wc -c < /data/random.bin",
      containerdAddr: h.address,
      namespace: ours.name,
      snapshotter: h.snapshotter,
    });
    assert.equal(result.exitCode, 0, result.stderr);
    assert.equal(result.stdout, `pulled from the registry\n${6 * 1024 * 1024}\n`);

    // A second pull finds everything present and fetches nothing.
    const again = await pull(ours.client, ref, { snapshotter: h.snapshotter });
    assert.equal(again.fetched, 0);
    assert.equal(again.existed, 5);
  },
);

containerdTest("pull of an unknown tag says manifest unknown and stores nothing", async (h) => {
  await using registry = await startRegistry();
  await using ns = await scratchNamespace(h);
  await assertRejects(
    () => pull(ns.client, `${registry.host}/team/none:1`, { snapshotter: h.snapshotter }),
    RegistryError,
    `registry ${registry.host}, repository team/none: manifest unknown: 1 not found (HTTP 404)`,
  );
  const { images } = await ns.client.images.list({});
  assert.deepEqual(images, []);
});

containerdTest(
  "runStep() pull policies: if-not-present pulls a missing image, always follows a moved tag, never names the fix",
  async (h) => {
    await using registry = await startRegistry();
    const spec = await multiLayerSpec();
    await registry.push(spec, "team/policy", "1");
    const ref = `${registry.host}/team/policy:1`;
    await using ns = await scratchNamespace(h);
    const step = (pull: "if-not-present" | "always" | "never", run: string) =>
      runStep({
        image: ref,
        run,
        pull,
        containerdAddr: h.address,
        namespace: ns.name,
        snapshotter: h.snapshotter,
      });

    const missing = await assertRejects(
      () => step("never", "true"),
      ContainerdError,
      `and the pull policy is 'never'; pull it first (\`wfe-containerd -n ${ns.name} images pull ${ref}\`)`,
    );
    assert.ok(isNotFound(missing));

    const pulled: PullProgress[] = [];
    const first = await runStep({
      image: ref,
      run: "cat /pulled.txt",
      containerdAddr: h.address,
      namespace: ns.name,
      snapshotter: h.snapshotter,
    }, { onPullProgress: (e) => pulled.push(e) });
    assert.equal(first.stdout, "pulled from the registry\n");
    assert.ok(pulled.some((e) => e.phase === "downloading"), "if-not-present pulled");

    // The tag moves to a new image: if-not-present keeps the stored one, always follows.
    await registry.push(
      {
        ...spec,
        layers: [
          ...spec.layers.slice(0, 2),
          [{ type: "file", path: "/pulled.txt", content: "the tag moved\n" }],
        ],
      },
      "team/policy",
      "1",
    );
    assert.equal(
      (await step("if-not-present", "cat /pulled.txt")).stdout,
      "pulled from the registry\n",
    );
    assert.equal((await step("always", "cat /pulled.txt")).stdout, "the tag moved\n");
    assert.equal((await step("never", "cat /pulled.txt")).stdout, "the tag moved\n");
  },
);

containerdTest(
  "pull of a corrupted blob fails with a digest error and commits nothing",
  async (h) => {
    await using registry = await startRegistry();
    const built = await registry.push(await multiLayerSpec(), "team/corrupt", "1");
    const big = built.layerDigests[1];
    const hex = big.slice("sha256:".length);
    const path = `${registry.blobDir}/sha256/${hex.slice(0, 2)}/${hex}/data`;
    const bytes = await Deno.readFile(path);
    bytes[bytes.length >> 1] ^= 0xff; // same size, other bytes
    await Deno.writeFile(path, bytes);
    await using ns = await scratchNamespace(h);
    const err = await assertRejects(
      () => pull(ns.client, `${registry.host}/team/corrupt:1`, { snapshotter: h.snapshotter }),
      ContainerdError,
      `layer ${big} from registry ${registry.host}, repository team/corrupt does not match ` +
        "its digest: unexpected commit digest sha256:",
    );
    assert.equal(err.code, GrpcCode.DATA_LOSS);
    assert.equal(await exists(() => ns.client.content.info({ digest: big })), false);
    const { statuses } = await ns.client.content.listStatuses({});
    assert.deepEqual(statuses.map((s) => s.ref), [], "the bad ingest was dropped");
    assert.deepEqual((await ns.client.images.list({})).images, []);
  },
);

containerdTest(
  "an interrupted pull leaves a resumable ingest and no image; a rerun resumes it",
  async (h) => {
    await using registry = await startRegistry();
    const built = await registry.push(await multiLayerSpec(), "team/resume", "1");
    const big = built.layerDigests[1];
    const ref = `${registry.host}/team/resume:1`;
    await using ns = await scratchNamespace(h);
    const stop = new AbortController();
    await assertRejects(
      () =>
        pull(ns.client, ref, {
          snapshotter: h.snapshotter,
          signal: stop.signal,
          onProgress: (e) => {
            if (e.digest === big && e.phase === "downloading" && e.done >= 1024 * 1024) {
              stop.abort(new Error("interrupted on purpose"));
            }
          },
        }),
      Error,
      "interrupted on purpose",
    );
    assert.deepEqual((await ns.client.images.list({})).images, [], "no image record");
    const { statuses } = await ns.client.content.listStatuses({});
    const ingest = statuses.find((s) => s.ref === `layer-${big}`);
    assert.ok(ingest && ingest.offset >= 1024 * 1024, `ingest kept: ${JSON.stringify(statuses)}`);

    const kept = (await ns.client.leases.list({})).leases;
    assert.equal(
      kept.length,
      1,
      "the failed pull's lease is kept (it expires), holding the ingest",
    );
    const image = await pull(ns.client, ref, { snapshotter: h.snapshotter });
    assert.equal(image.target.digest, built.manifestDigest);
    assert.deepEqual((await ns.client.leases.list({})).leases, [], "the stale lease was dropped");
    const bigSize = built.layerSizes[1];
    assert.ok(
      image.bytes < bigSize,
      `resumed: ${image.bytes} bytes written, the layer has ${bigSize}`,
    );
    const step = await runStep({
      image: ref,
      run: "wc -c < /data/random.bin",
      containerdAddr: h.address,
      namespace: ns.name,
      snapshotter: h.snapshotter,
    });
    assert.equal(step.stdout, `${6 * 1024 * 1024}\n`);
  },
);

containerdTest("pull with a wrong password says the credentials were rejected (401)", async (h) => {
  await using registry = await startRegistry({
    tokenAuth: { users: { ada: "secret" }, anonymousPull: false, oauthPost: true },
  });
  await registry.push(await multiLayerSpec(), "team/private", "1");
  await using ns = await scratchNamespace(h);
  const ref = `${registry.host}/team/private:1`;
  const err = await assertRejects(
    () =>
      pull(ns.client, ref, {
        snapshotter: h.snapshotter,
        dockerConfigDir: false,
        registryAuth: { [registry.host]: { username: "ada", password: "wrong" } },
      }),
    RegistryError,
    `credentials for ${registry.host} were rejected`,
  );
  assert.ok(!err.message.includes("wrong"), "the password is not in the message");
  const image = await pull(ns.client, ref, {
    snapshotter: h.snapshotter,
    dockerConfigDir: false,
    registryAuth: { [registry.host]: { username: "ada", password: "secret" } },
  });
  assert.equal(image.name, ref);
});

containerdTest(
  "pull over HTTPS with a test CA and Basic auth: untrusted certificate, missing and wrong credentials are named",
  async (h) => {
    await using registry = await startRegistry({ tlsBasic: { users: { ada: "secret" } } });
    await registry.push(await multiLayerSpec(), "team/tls", "1");
    const ref = `${registry.host}/team/tls:1`;
    await using ns = await scratchNamespace(h);
    await using other = await startRegistry({ tlsBasic: { users: {} } }); // another CA
    const base = { snapshotter: h.snapshotter, dockerConfigDir: false as const, retryDelayMs: 1 };
    await assertRejects(
      () => pull(ns.client, ref, { ...base, caCerts: [other.caPem!] }),
      RegistryError,
      `registry ${registry.host}, repository team/tls: TLS: cannot verify ${registry.host}'s certificate`,
    );
    await assertRejects(
      () => pull(ns.client, ref, { ...base, caCerts: [registry.caPem!] }),
      RegistryError,
      `repository team/tls: unauthorized: no credentials for ${registry.host} found (HTTP 401)`,
    );
    await assertRejects(
      () =>
        pull(ns.client, ref, {
          ...base,
          caCerts: [registry.caPem!],
          registryAuth: { [registry.host]: { username: "ada", password: "nope" } },
        }),
      RegistryError,
      `unauthorized: manifest 1: credentials for ${registry.host} were rejected (HTTP 401)`,
    );
    const certsDir = await Deno.makeTempDir();
    try {
      await Deno.mkdir(`${certsDir}/${registry.host}`);
      await Deno.writeTextFile(`${certsDir}/${registry.host}/ca.crt`, registry.caPem!);
      const image = await pull(ns.client, ref, {
        ...base,
        certsDir,
        registryAuth: { [registry.host]: { username: "ada", password: "secret" } },
      });
      assert.equal(image.name, ref);
      assert.equal(image.fetched, 5);
    } finally {
      await Deno.remove(certsDir, { recursive: true });
    }
  },
);

containerdTest("pull tries the registry's mirrors first and keeps the image's name", async (h) => {
  await using mirror = await startRegistry();
  await using upstream = await startRegistry();
  const onMirror = await mirror.push(await multiLayerSpec(), "team/mirrored", "1");
  const onUpstream = await upstream.push(await multiLayerSpec(), "team/upstream-only", "1");
  await using ns = await scratchNamespace(h);
  const options = {
    snapshotter: h.snapshotter,
    retryDelayMs: 1,
    mirrors: { [upstream.host]: [mirror.host] },
  };
  const fromMirror = await pull(ns.client, `${upstream.host}/team/mirrored:1`, options);
  assert.equal(fromMirror.name, `${upstream.host}/team/mirrored:1`);
  assert.equal(fromMirror.target.digest, onMirror.manifestDigest);
  // Not on the mirror: the registry itself serves it.
  const fallback = await pull(ns.client, `${upstream.host}/team/upstream-only:1`, options);
  assert.equal(fallback.target.digest, onUpstream.manifestDigest);
  // Nowhere: both answers are named.
  await assertRejects(
    () => pull(ns.client, `${upstream.host}/team/nowhere:1`, options),
    RegistryError,
    `registry ${upstream.host}, repository team/nowhere: not found on its mirrors or itself: ` +
      `mirror registry ${mirror.host}, repository team/nowhere: manifest unknown`,
  );
});
