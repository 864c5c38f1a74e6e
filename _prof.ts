import { connect, pull } from "./api.ts";
import process from "node:process";
import { clearNamespace } from "./tests/daemon_helpers.ts";
import { startHarness } from "./tests/harness.ts";
import { startRegistry } from "./tests/registry_harness.ts";
const random = (n: number) => { const o = new Uint8Array(n); for (let i = 0; i < n; i += 65536) crypto.getRandomValues(o.subarray(i, Math.min(n, i + 65536))); return o; };
const spec = { name: "x/y:1", layers: Array.from({ length: 5 }, (_, i) => [{ type: "file" as const, path: `/l${i}`, content: random(20 * 1024 * 1024) }]) };
const h = await startHarness();
await using registry = await startRegistry();
try {
  await registry.push(spec, "b/p", "1");
  const ref = `${registry.host}/b/p:1`;
  await using client = await connect(`unix://${h.address}`, { namespace: "prof" });
  for (const unpack of [false, true, false, true]) {
    await clearNamespace(client, h.snapshotter);
    const t0 = performance.now(); const c0 = process.cpuUsage();
    const marks: string[] = [];
    await pull(client, ref, { snapshotter: h.snapshotter, unpack, onProgress: (e) => { if (e.kind === "layer" && e.phase !== "downloading") marks.push(`${(performance.now() - t0).toFixed(0)} ${e.digest.slice(7, 11)} ${e.phase}`); } });
    const c = process.cpuUsage(c0); console.log(`unpack=${unpack}: ${(performance.now() - t0).toFixed(0)} ms, cpu user ${(c.user/1000).toFixed(0)} ms sys ${(c.system/1000).toFixed(0)} ms`);

  }
  // raw fetch speed
  const t = performance.now(); let n = 0;
  const res = await fetch(`http://${registry.host}/v2/b/p/blobs/${(await (await fetch(`http://${registry.host}/v2/b/p/manifests/1`, { headers: { Accept: "application/vnd.oci.image.manifest.v1+json" } })).json()).layers[0].digest}`);
  for await (const c of res.body!) n += c.length;
  console.log(`raw fetch of one layer: ${n} bytes in ${(performance.now() - t).toFixed(0)} ms`);
} finally { await h.stop(); }
