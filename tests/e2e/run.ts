/**
 * `deno task e2e`: starts the remote-daemon topology (Lima when `limactl`
 * exists, else a network namespace), runs `deno test tests/e2e/` against it
 * with only `WFE_CONTAINERD_ADDR` (TCP) and `WFE_IO_DIR` (shared dir) pointing
 * at it, and stops what it started.
 *
 * @module
 */

import { netnsSkipReason, startTopology, type Topology } from "./topology.ts";
import { lookPath, REQUIRE_ENV } from "../harness.ts";

async function main(): Promise<number> {
  const reason = lookPath("limactl") ? undefined : netnsSkipReason();
  if (reason) {
    if (Deno.env.get(REQUIRE_ENV) === "1") {
      console.error(`e2e: cannot run: ${reason}`);
      return 1;
    }
    console.error(`skipped: e2e suite (${reason})`);
    return 0;
  }
  let topology: Topology;
  try {
    topology = await startTopology();
  } catch (err) {
    console.error(`e2e: could not start the topology: ${err instanceof Error ? err.message : err}`);
    return 1;
  }
  const { stop, ...info } = topology;
  console.error(
    `e2e: ${info.kind} topology: containerd ${info.version} at ${info.address}, ` +
      `WFE_IO_DIR=${info.ioDir}`,
  );
  let interrupted = false;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", ...(Deno.args.length ? Deno.args : ["tests/e2e/"])],
    env: {
      WFE_E2E: JSON.stringify(info),
      WFE_CONTAINERD_ADDR: info.address,
      WFE_IO_DIR: info.ioDir,
      CONTAINERD_NAMESPACE: info.namespace,
    },
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const onSignal = () => {
    interrupted = true;
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const status = await child.status;
    return interrupted ? 130 : status.code;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await stop();
    console.error(`e2e: ${info.kind} topology stopped`);
  }
}

Deno.exit(await main());
