/**
 * Pull and import speed against ctr, side by side on one private containerd:
 * a 5-layer image of ~100 MiB (incompressible data, gzip layers) pushed to a
 * local `docker-registry`, pulled with `pull()` (in-process), with this
 * project's CLI (`images pull`, a new process) and with
 * `ctr images pull --plain-http`; then the same image's OCI archive imported
 * with `importImages()`, the CLI's `images import` and `ctr images import`.
 * Runs alternate; before each, the namespace is emptied (image records,
 * leases, snapshots, ingests) and garbage-collected, so every run fetches and
 * unpacks everything. Reports medians and ratios ours/ctr (below 1.0: we are
 * faster).
 *
 * ```sh
 * deno run -A bench/pull_vs_ctr.ts [--runs 5] [--mib 100]
 * ```
 *
 * @module
 */

import { connect, importImages, pull } from "../api.ts";
import { clearNamespace } from "../tests/daemon_helpers.ts";
import { ctr, startHarness } from "../tests/harness.ts";
import { startRegistry } from "../tests/registry_harness.ts";
import { flag, median } from "./_util.ts";

async function cliRun(args: string[]): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../cli.ts", import.meta.url).pathname, ...args],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`cli ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

const runs = flag("runs", 5);
const mib = flag("mib", 100);
const layerBytes = Math.floor((mib * 1024 * 1024) / 5);
const random = (n: number) => {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) {
    crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  }
  return out;
};
const spec = {
  name: "wfe.test/bench-pull:1",
  layers: Array.from({ length: 5 }, (_, i) => [
    { type: "file" as const, path: `/data/layer${i}.bin`, content: random(layerBytes) },
  ]),
};

const h = await startHarness();
await using registry = await startRegistry();
const archiveDir = await Deno.makeTempDir({ prefix: "wfe-bench-pull-" });
try {
  const built = await registry.push(spec, "bench/pull", "1");
  const archive = `${archiveDir}/image.tar`;
  await Deno.writeFile(archive, built.archive);
  const total = built.layerSizes.reduce((a, b) => a + b, 0);
  const ref = `${registry.host}/bench/pull:1`;
  const namespace = "wfe-bench-pull";
  await using client = await connect(`unix://${h.address}`, { namespace });
  const g = ["--address", `unix://${h.address}`, "--namespace", namespace];
  const reset = () => clearNamespace(client, h.snapshotter);

  const times: Record<string, number[]> = {};
  const measure = async (name: string, fn: () => Promise<unknown>) => {
    await reset();
    const t = performance.now();
    await fn();
    (times[name] ??= []).push(performance.now() - t);
  };
  for (let i = 0; i < runs; i++) {
    await measure("pull()", () => pull(client, ref, { snapshotter: h.snapshotter }));
    await measure(
      "cli images pull",
      () => cliRun([...g, "images", "pull", "-q", "--snapshotter", h.snapshotter, ref]),
    );
    await measure(
      "ctr images pull",
      () =>
        ctr(h.address, ["images", "pull", "--plain-http", "--snapshotter", h.snapshotter, ref], {
          namespace,
          timeoutMs: 300_000,
        }),
    );
    await measure(
      "importImages()",
      () => importImages(client, archive, { snapshotter: h.snapshotter }),
    );
    await measure(
      "cli images import",
      () => cliRun([...g, "images", "import", "-q", "--snapshotter", h.snapshotter, archive]),
    );
    await measure(
      "ctr images import",
      () =>
        ctr(h.address, ["images", "import", "--snapshotter", h.snapshotter, archive], {
          namespace,
          timeoutMs: 300_000,
        }),
    );
  }
  await reset();
  console.log(
    `image: 5 layers, ${
      (total / 1048576).toFixed(1)
    } MiB compressed; ${runs} runs each, alternating`,
  );
  const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
  for (const [name, value] of Object.entries(m)) {
    console.log(`${name.padEnd(18)} median ${(value / 1000).toFixed(2)} s`);
  }
  const ratio = (a: string, b: string) => (m[a] / m[b]).toFixed(2);
  console.log(`ratio pull() / ctr images pull:             ${ratio("pull()", "ctr images pull")}`);
  console.log(
    `ratio cli images pull / ctr images pull:    ${ratio("cli images pull", "ctr images pull")}`,
  );
  console.log(
    `ratio importImages() / ctr images import:   ${ratio("importImages()", "ctr images import")}`,
  );
  console.log(
    `ratio cli images import / ctr images import: ${
      ratio("cli images import", "ctr images import")
    }`,
  );
} finally {
  await Deno.remove(archiveDir, { recursive: true });
  await h.stop();
}
