/**
 * Test runner behind `deno task test`: starts one private containerd (tests/harness.ts), runs
 * `deno test -A <args or tests/>` (files one after another) with `WFE_TEST_HARNESS` set, always stops the
 * daemon afterwards (also on SIGINT/SIGTERM), and exits with the test run's exit code.
 *
 * Without containerd (not Linux, not root, nothing to install it with) it prints the reason and
 * still runs the tests, so unit tests run and containerd-backed ones are skipped; with
 * `WFE_REQUIRE_CONTAINERD=1` it fails instead.
 *
 * @module
 */

import {
  containerdSkipReason,
  type Harness,
  HARNESS_ENV,
  type HarnessInfo,
  REQUIRE_ENV,
  SKIP_REASON_ENV,
  startHarness,
} from "./harness.ts";

/** Adds the default `tests/` target when the arguments name no existing file or directory. */
function testArgs(args: string[]): string[] {
  const namesPath = args.some((a) => {
    if (a.startsWith("-")) return false;
    try {
      Deno.statSync(a);
      return true;
    } catch {
      return false;
    }
  });
  // The e2e suite needs its own topology: `deno task e2e` runs it.
  return namesPath ? args : [...args, "--ignore=tests/e2e/", "tests/"];
}

async function main(): Promise<number> {
  const reason = containerdSkipReason();
  const env: Record<string, string> = {};
  let harness: Harness | undefined;
  if (reason) {
    if (Deno.env.get(REQUIRE_ENV) === "1") {
      console.error(`containerd tests cannot run: ${reason}`);
      return 1;
    }
    const line = `skipped: containerd-backed tests (${reason})`;
    console.error(`${"=".repeat(line.length)}\n${line}\n${"=".repeat(line.length)}`);
    env[SKIP_REASON_ENV] = reason;
  } else {
    const started = performance.now();
    try {
      harness = await startHarness();
    } catch (e) {
      console.error(`harness: failed to start containerd: ${e instanceof Error ? e.message : e}`);
      return 1;
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.error(
      `harness: containerd ${harness.version} pid ${harness.pid} at ${harness.address} ` +
        `(ready with images in ${seconds} s)`,
    );
    const { stop: _stop, ...info } = harness;
    env[HARNESS_ENV] = JSON.stringify(info satisfies HarnessInfo);
  }

  const child = new Deno.Command(Deno.execPath(), {
    // --expose-gc: the soak test measures memory after a full collection.
    args: ["test", "-A", "--v8-flags=--expose-gc", ...testArgs(Deno.args)],
    env,
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();

  let interrupted: Deno.Signal | undefined;
  const onSignal = (signal: Deno.Signal) => async () => {
    if (interrupted) return;
    interrupted = signal;
    console.error(`\nrun_tests: ${signal}: stopping tests and containerd`);
    try {
      child.kill("SIGTERM");
    } catch { /* already exited */ }
    await harness?.stop().catch((e) => console.error(`harness: stop failed: ${e}`));
    Deno.exit(signal === "SIGINT" ? 130 : 143);
  };
  const listeners: [Deno.Signal, () => void][] = [
    ["SIGINT", onSignal("SIGINT")],
    ["SIGTERM", onSignal("SIGTERM")],
  ];
  for (const [sig, fn] of listeners) Deno.addSignalListener(sig, fn);

  const status = await child.status;
  if (interrupted) return new Promise(() => {}); // the signal handler exits
  for (const [sig, fn] of listeners) Deno.removeSignalListener(sig, fn);
  if (harness) {
    try {
      await harness.stop();
      console.error(`harness: containerd pid ${harness.pid} stopped, ${harness.dir} removed`);
    } catch (e) {
      console.error(`harness: stop failed: ${e instanceof Error ? e.message : e}`);
      return status.code === 0 ? 1 : status.code;
    }
  }
  return status.code;
}

if (import.meta.main) {
  Deno.exit(await main());
}
