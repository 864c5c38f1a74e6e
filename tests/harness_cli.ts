/**
 * Long-lived private containerd for development: `deno task up` / `deno task down` /
 * `deno run -A tests/harness_cli.ts status`.
 *
 * `up` starts (or reuses) a daemon in its own session under `$WFE_DEV_DIR` (default
 * `/tmp/wfe-containerd-dev`), imports the test images, writes `<dir>/state.json` and prints shell
 * exports on stdout, so `eval "$(deno task up)"` sets `WFE_CONTAINERD_ADDR`,
 * `CONTAINERD_NAMESPACE` and `WFE_TEST_HARNESS` (the latter lets `deno test -A tests/x_test.ts`
 * use this daemon). `down` stops it by the PID in the state file, with the same procedure as the
 * test harness, and removes the directory.
 *
 * @module
 */

import {
  containerdSkipReason,
  ctr,
  type DaemonHandle,
  HARNESS_ENV,
  type HarnessInfo,
  importTestImages,
  isOurDaemon,
  launch,
  mountsUnder,
  pidAlive,
  provisionIfNeeded,
  serverVersion,
  stopDaemon,
  unmountUnder,
} from "./harness.ts";

/** The development daemon's directory. */
function devDir(): string {
  return Deno.env.get("WFE_DEV_DIR") ?? "/tmp/wfe-containerd-dev";
}

function statePath(dir: string): string {
  return `${dir}/state.json`;
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

async function readState(dir: string): Promise<HarnessInfo | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(statePath(dir))) as HarnessInfo;
  } catch {
    return undefined;
  }
}

function printExports(info: HarnessInfo): void {
  console.log(`export WFE_CONTAINERD_ADDR=unix://${info.address}`);
  console.log(`export CONTAINERD_NAMESPACE=${info.namespace}`);
  console.log(`export ${HARNESS_ENV}=${shellQuote(JSON.stringify(info))}`);
}

/** Checks a recorded daemon: PID alive, really our containerd, and answering Version. */
async function healthy(state: HarnessInfo): Promise<boolean> {
  if (!pidAlive(state.pid) || !isOurDaemon(state.pid, state.dir)) return false;
  try {
    await serverVersion(state.address);
    return true;
  } catch {
    return false;
  }
}

function handleOf(state: HarnessInfo): DaemonHandle {
  return { dir: state.dir, pid: state.pid, address: state.address };
}

/**
 * Starts the development daemon, or reuses it when it is already up (re-importing the test
 * images if they are gone). Logs to stderr; returns what a client needs to use it.
 *
 * @throws {Error} When containerd cannot run here (not Linux, not root, nothing to install with).
 */
export async function ensureDevDaemon(): Promise<HarnessInfo> {
  const reason = containerdSkipReason();
  if (reason) throw new Error(`containerd cannot run here: ${reason}`);
  const dir = devDir();
  const state = await readState(dir);
  if (state && await healthy(state)) {
    const names = await ctr(state.address, ["images", "ls", "-q"], { namespace: state.namespace });
    const listed = names.split("\n").map((s) => s.trim());
    if (
      !listed.includes(state.images.oneLayer.name) || !listed.includes(state.images.threeLayer.name)
    ) {
      console.error("harness: re-importing test images");
      state.images = await importTestImages(state.address, dir, state.namespace, state.snapshotter);
      await Deno.writeTextFile(statePath(dir), JSON.stringify(state, null, 2) + "\n");
    }
    console.error(
      `harness: reusing containerd ${state.version} pid ${state.pid} at ${state.address}`,
    );
    return state;
  }
  if (state) {
    console.error(`harness: stale state in ${dir} (pid ${state.pid} not running); cleaning up`);
    await stopDaemon(handleOf(state));
  } else if (mountsUnder(dir).length > 0) {
    await unmountUnder(dir);
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await provisionIfNeeded();
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const started = performance.now();
  const { info } = await launch(await Deno.realPath(dir), true);
  await Deno.writeTextFile(statePath(dir), JSON.stringify(info, null, 2) + "\n");
  console.error(
    `harness: containerd ${info.version} pid ${info.pid} at ${info.address} ` +
      `(${((performance.now() - started) / 1000).toFixed(1)} s); stop with \`deno task down\``,
  );
  return info;
}

async function up(): Promise<number> {
  try {
    printExports(await ensureDevDaemon());
    return 0;
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    return 1;
  }
}

async function down(): Promise<number> {
  const dir = devDir();
  const state = await readState(dir);
  if (!state) {
    if (mountsUnder(dir).length > 0) await unmountUnder(dir);
    console.error(`harness: nothing to stop (no ${statePath(dir)})`);
    return 0;
  }
  const wasAlive = pidAlive(state.pid) && isOurDaemon(state.pid, state.dir);
  await stopDaemon(handleOf(state));
  console.error(
    wasAlive
      ? `harness: stopped containerd pid ${state.pid}, removed ${state.dir}`
      : `harness: pid ${state.pid} was not running; removed ${state.dir}`,
  );
  return 0;
}

async function status(): Promise<number> {
  const dir = devDir();
  const state = await readState(dir);
  if (!state) {
    console.log(`down (no ${statePath(dir)})`);
    return 1;
  }
  if (await healthy(state)) {
    console.log(`up: containerd ${state.version} pid ${state.pid} at ${state.address}`);
    printExports(state);
    return 0;
  }
  console.log(`stale: pid ${state.pid} not running or not answering (run \`deno task down\`)`);
  return 1;
}

if (import.meta.main) {
  const command = Deno.args[0];
  const commands: Record<string, () => Promise<number>> = { up, down, status };
  if (!command || !(command in commands)) {
    console.error("usage: deno run -A tests/harness_cli.ts up|down|status");
    Deno.exit(2);
  }
  try {
    Deno.exit(await commands[command]());
  } catch (e) {
    console.error(`harness: ${command} failed: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
