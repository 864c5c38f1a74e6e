import assert from "node:assert/strict";
import { scratchNamespace } from "../daemon_helpers.ts";
import { containerdTest } from "../harness.ts";
import { buildImage, busyboxBaseLayer, readStaticBusybox } from "../oci_archive.ts";
import { startRegistry, throttledProxy } from "../registry_harness.ts";
import { cli, cliCommand } from "./_cli.ts";

async function spec(text: string) {
  return {
    name: "wfe.test/cli-image:1",
    layers: [
      busyboxBaseLayer(await readStaticBusybox()),
      [{ type: "file" as const, path: "/hello.txt", content: text }],
    ],
  };
}

containerdTest(
  "cli images pull prints the name on stdout, progress on stderr (plain lines, --json, --quiet); run --pull always follows the tag",
  async (h) => {
    await using registry = await startRegistry();
    const built = await registry.push(await spec("first\n"), "team/cli", "1");
    const ref = `${registry.host}/team/cli:1`;
    await using ns = await scratchNamespace(h);
    const g = ["--address", `unix://${h.address}`, "--namespace", ns.name];

    const plain = await cli([...g, "images", "pull", "--snapshotter", h.snapshotter, ref]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stdout, `${ref}\n`, "stdout holds only the name");
    assert.match(plain.stderr, /layer-[0-9a-f]{12}: done +\|=+\|/);
    assert.match(
      plain.stderr,
      new RegExp(
        `pulled ${ref} ${built.manifestDigest} \\(4 blob\\(s\\) new to the namespace, 0 present`,
      ),
    );

    const json = await cli([...g, "images", "pull", "--json", "--snapshotter", h.snapshotter, ref]);
    assert.equal(json.code, 0, json.stderr);
    const events = json.stderr.trim().split("\n").filter((l) => l.startsWith("{")).map((l) =>
      JSON.parse(l)
    );
    assert.ok(events.length >= 4, json.stderr);
    assert.ok(events.every((e) => e.image === ref && typeof e.total === "number"));
    assert.ok(events.some((e) => e.phase === "exists"), "a second pull finds the blobs present");

    const quiet = await cli([...g, "images", "pull", "-q", "--snapshotter", h.snapshotter, ref]);
    assert.deepEqual([quiet.code, quiet.stdout, quiet.stderr], [0, `${ref}\n`, ""]);

    await registry.push(await spec("second\n"), "team/cli", "1");
    const run = (pull: string) =>
      cli([
        ...g,
        "run",
        "--image",
        ref,
        "--pull",
        pull,
        "--snapshotter",
        h.snapshotter,
        "--runc-root",
        h.runcRoot,
        "--",
        "cat",
        "/hello.txt",
      ]);
    assert.equal((await run("if-not-present")).stdout, "first\n");
    assert.equal((await run("always")).stdout, "second\n");

    const missing = await cli([...g, "images", "pull", `${registry.host}/team/cli:nope`]);
    assert.equal(missing.code, 125);
    assert.match(missing.stderr, /manifest unknown: nope not found \(HTTP 404\)/);
  },
);

containerdTest("cli images import reads a file and stdin (-) and prints the names", async (h) => {
  const built = await buildImage(await spec("imported\n"));
  const dir = await Deno.makeTempDir({ prefix: "wfe-cli-import-" });
  try {
    const path = `${dir}/image.tar`;
    await Deno.writeFile(path, built.archive);
    await using ns = await scratchNamespace(h);
    const g = ["--address", `unix://${h.address}`, "--namespace", ns.name];
    const fromFile = await cli([...g, "images", "import", "--snapshotter", h.snapshotter, path]);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.equal(fromFile.stdout, "wfe.test/cli-image:1\n");
    assert.match(fromFile.stderr, /imported wfe\.test\/cli-image:1 sha256:/);

    const fromStdin = await new Deno.Command("sh", {
      args: [
        "-c",
        `"${Deno.execPath()}" run -A cli.ts ${g.join(" ")} images import -q - < ${path}`,
      ],
      cwd: new URL("../..", import.meta.url).pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    assert.equal(fromStdin.code, 0, dec.decode(fromStdin.stderr));
    assert.equal(dec.decode(fromStdin.stdout), "wfe.test/cli-image:1\n");
    const ls = await cli([...g, "images", "ls", "-q"]);
    assert.equal(ls.stdout, "wfe.test/cli-image:1\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

containerdTest(
  "cli images pull killed (SIGKILL) mid-layer leaves a resumable ingest; the next pull resumes it with Range",
  async (h) => {
    await using registry = await startRegistry();
    // Larger than the 4 MiB of WRITEs in flight past the acknowledged offset that progress shows.
    const big = new Uint8Array(12 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
    const built = await registry.push(
      {
        name: "wfe.test/killed:1",
        layers: [
          busyboxBaseLayer(await readStaticBusybox()),
          [{ type: "file", path: "/big.bin", content: big }],
        ],
      },
      "team/killed",
      "1",
    );
    const bigLayer = built.layerDigests[1];
    // 12 MiB at 4 MiB/s, killed after 1 MiB is acknowledged: the layer is far from complete.
    await using proxy = throttledProxy(registry, 4 * 1024 * 1024);
    const ref = `${proxy.host}/team/killed:1`;
    await using ns = await scratchNamespace(h);
    const g = ["--address", `unix://${h.address}`, "--namespace", ns.name];

    const child = cliCommand([
      ...g,
      "images",
      "pull",
      "--json",
      "--snapshotter",
      h.snapshotter,
      ref,
    ], { stdin: "null", stdout: "null", stderr: "piped" }).spawn();
    const lines = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    let killedAt = 0;
    try {
      while (!killedAt) {
        const next = await lines.read();
        if (next.done) throw new Error(`the pull ended before it could be killed: ${buffered}`);
        buffered += next.value;
        for (const line of buffered.split("\n").slice(0, -1)) {
          const e = line.startsWith("{") ? JSON.parse(line) : undefined;
          if (e?.digest === bigLayer && e.phase === "downloading" && e.done >= 1024 * 1024) {
            child.kill("SIGKILL");
            killedAt = e.done;
            break;
          }
        }
        buffered = buffered.slice(buffered.lastIndexOf("\n") + 1);
      }
    } finally {
      await lines.cancel().catch(() => {});
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await child.status;
    }
    assert.deepEqual((await ns.client.images.list({})).images, [], "no image record");
    const { statuses } = await ns.client.content.listStatuses({});
    const ingest = statuses.find((s) => s.ref === `layer-${bigLayer}`);
    assert.ok(ingest && ingest.offset >= killedAt, JSON.stringify(statuses));
    assert.ok(ingest.offset < built.layerSizes[1], `killed mid-layer: ${ingest.offset} bytes in`);

    const rerun = await cli([...g, "images", "pull", "--snapshotter", h.snapshotter, ref]);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.equal(rerun.stdout, `${ref}\n`);
    const asked = proxy.requests.filter((r) => r.digest === bigLayer).map((r) => r.range);
    const resumedAt = asked.at(-1);
    assert.match(resumedAt ?? "", /^bytes=\d+-$/, `requests for the big layer: ${asked}`);
    assert.ok(Number(/\d+/.exec(resumedAt!)![0]) >= killedAt, resumedAt!);
    const step = await cli([
      ...g,
      "run",
      "--image",
      ref,
      "--pull",
      "never",
      "--snapshotter",
      h.snapshotter,
      "--runc-root",
      h.runcRoot,
      "--",
      "sh",
      "-c",
      "wc -c < /big.bin",
    ]);
    assert.equal(step.stdout, `${big.length}\n`, step.stderr);
  },
);

containerdTest(
  "cli images pull --user NAME --password-stdin authenticates; a wrong password is named, never shown",
  async (h) => {
    await using registry = await startRegistry({
      tokenAuth: { users: { ci: "s3cret-pw" }, anonymousPull: false, oauthPost: true },
    });
    await registry.push(await spec("private\n"), "team/private", "1");
    const ref = `${registry.host}/team/private:1`;
    await using ns = await scratchNamespace(h);
    const pullWith = async (password: string) => {
      const child = cliCommand([
        "--address",
        `unix://${h.address}`,
        "--namespace",
        ns.name,
        "images",
        "pull",
        "-q",
        "--snapshotter",
        h.snapshotter,
        "--user",
        "ci",
        "--password-stdin",
        ref,
      ], {
        env: { DOCKER_CONFIG: "/nonexistent" },
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(`${password}\n`));
      await writer.close();
      const out = await child.output();
      const dec = new TextDecoder();
      return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
    };
    const wrong = await pullWith("not-it");
    assert.equal(wrong.code, 125);
    assert.match(
      wrong.stderr,
      new RegExp(`credentials for ${registry.host.replace(/\./g, "\\.")} were rejected`),
    );
    assert.doesNotMatch(wrong.stderr, /not-it/);
    const right = await pullWith("s3cret-pw");
    assert.equal(right.code, 0, right.stderr);
    assert.equal(right.stdout, `${ref}\n`);
  },
);
