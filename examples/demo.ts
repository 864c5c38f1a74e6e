/**
 * `deno task demo`: runs one workflow step on containerd and shows the result.
 *
 * It uses the containerd at WFE_CONTAINERD_ADDR / CONTAINERD_ADDRESS or the
 * system socket when one answers; otherwise it starts the harness's private
 * containerd (`deno task up`; stop it with `deno task down`). The step runs in
 * the test image `wfe.test/busybox:one-layer`, imported with `ctr` if missing.
 *
 * @module
 */

import { connect, defaultAddress, imageExists, parseAddress, runStep } from "../api.ts";
import { ctr } from "../tests/harness.ts";
import { ensureDevDaemon } from "../tests/harness_cli.ts";
import { buildTestImages } from "../tests/oci_archive.ts";

const IMAGE = "wfe.test/busybox:one-layer";

async function reachable(address: string): Promise<boolean> {
  try {
    (await connect(address, { connectTimeoutMs: 2000 })).close();
    return true;
  } catch {
    return false;
  }
}

let address = defaultAddress();
let namespace = Deno.env.get("CONTAINERD_NAMESPACE") || "wfe-demo";
let runcRoot: string | undefined;
if (await reachable(address)) {
  console.log(`demo: using containerd at ${address}, namespace ${namespace}`);
  {
    await using client = await connect(address, { namespace });
    if (!await imageExists(client, IMAGE)) {
      const parsed = parseAddress(address);
      if (parsed.transport !== "unix") {
        throw new Error(`${IMAGE} is missing and ctr can import only over a Unix socket`);
      }
      console.log(`demo: importing ${IMAGE} with ctr`);
      const { oneLayer } = await buildTestImages();
      const file = await Deno.makeTempFile({ suffix: ".tar" });
      await Deno.writeFile(file, oneLayer.archive);
      await ctr(parsed.path, ["images", "import", "--platform", oneLayer.platform, file], {
        namespace,
      });
      await Deno.remove(file);
    }
  }
} else {
  console.log(`demo: no containerd answers at ${address}; starting the harness's own`);
  const info = await ensureDevDaemon();
  address = `unix://${info.address}`;
  namespace = info.namespace;
  runcRoot = info.runcRoot;
  console.log(`demo: containerd ${info.version} at ${address} (stop it with \`deno task down\`)`);
}

console.log("\n--- step output (live) ---");
const result = await runStep({
  image: IMAGE,
  stepName: "demo",
  containerdAddr: address,
  namespace,
  runcOptions: runcRoot ? { root: runcRoot } : undefined,
  workflowData: { greeting: "hello from workflow data" },
  run: [
    'echo "$GREETING"',
    'echo "running as $(id -u):$(id -g) in $(pwd) on $(uname -s) with $(ls /sys/class/net | tr "\\n" " ")"',
    "echo '##wfe[output answer=42]'",
    'echo "##wfe[output kernel=$(uname -r)]"',
    "echo 'a line on stderr' >&2",
  ].join("; "),
  timeoutMs: 30_000,
}, {
  onStdout: (line) => console.log(`stdout | ${line}`),
  onStderr: (line) => console.log(`stderr | ${line}`),
});

console.log("\n--- result ---");
console.log(`exit code:    ${result.exitCode}`);
console.log(`container id: ${result.containerId} (removed)`);
console.log(`duration:     ${result.durationMs.toFixed(0)} ms`);
console.log(`outputs:      ${JSON.stringify(result.outputs)}`);
console.log(`output data:  ${JSON.stringify(Object.keys(result.outputData))}`);
