/**
 * Helpers of the CLI tests: spawn cli.ts as a user runs it, flags for the harness's daemon,
 * leftover audits. Help snapshots live in tests/cli/help/ (regenerate with
 * `UPDATE_SNAPSHOTS=1 deno task test tests/cli/usage_test.ts`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { connect, type ContainerdClient } from "../../lib/grpc/connection.ts";
import { LABELS, MANAGED_BY } from "../../lib/labels.ts";
import { importOneLayer } from "../daemon_helpers.ts";
import type { HarnessInfo } from "../harness.ts";

export const CLI = new URL("../../cli.ts", import.meta.url).pathname;
export const ROOT = new URL("../..", import.meta.url).pathname;
export const HELP_DIR = new URL("./help/", import.meta.url).pathname;
export const UPDATE = Deno.env.get("UPDATE_SNAPSHOTS") === "1";

export interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno run -A cli.ts ARGS` to completion. */
export async function cli(args: string[], env: Record<string, string> = {}): Promise<Output> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** `deno run -A cli.ts ...args` as a command to spawn, with the given stdio (default: null/piped). */
export function cliCommand(
  args: string[],
  options: Pick<Deno.CommandOptions, "stdin" | "stdout" | "stderr" | "env"> = {},
): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...options,
  });
}

/** A CLI process whose output is read while it runs. */
export interface SpawnedCli {
  /** The process. */
  child: Deno.ChildProcess;
  /** Its stdout, as text. */
  stdout: ReadableStreamDefaultReader<string>;
  /** Its whole stderr, when it exits. */
  stderr: Promise<string>;
  /** Stops reading, SIGKILLs the process if it still runs, and waits for it. */
  close(): Promise<void>;
}

/** Spawns `deno run -A cli.ts ...args` with piped output, to read it while it runs. */
export function spawnCli(args: string[]): SpawnedCli {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const stderr = new Response(child.stderr).text();
  return {
    child,
    stdout,
    stderr,
    async close() {
      await stdout.cancel().catch(() => {});
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await child.status;
      await stderr.catch(() => {});
    },
  };
}

/** The flags a step needs on the harness daemon. */
export function stepFlags(h: HarnessInfo): string[] {
  return [
    "--image",
    h.images.oneLayer.name,
    "--snapshotter",
    h.snapshotter,
    "--runc-root",
    h.runcRoot,
  ];
}

export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

export async function client(h: HarnessInfo, namespace = h.namespace): Promise<ContainerdClient> {
  return await connect(`unix://${h.address}`, { namespace });
}

/** What a test works in: a private IO dir, a token in every name, a namespace, global flags. */
export interface Scope {
  ioDir: string;
  token: string;
  namespace: string;
  /** `--address`, `--namespace` and `--io-dir` for the CLI. */
  g: string[];
}

/** Containers, tasks, leases and snapshots of ours in `namespace` whose id `match`es. */
export async function leftovers(
  h: HarnessInfo,
  namespace: string,
  match: (id: string) => boolean,
): Promise<string[]> {
  await using c = await client(h, namespace);
  const left: string[] = [];
  for (const x of (await c.containers.list({})).containers) {
    if (x.labels[LABELS.managedBy] === MANAGED_BY && match(x.id)) left.push(`container ${x.id}`);
  }
  for (const t of (await c.tasks.list({})).tasks) if (match(t.id)) left.push(`task ${t.id}`);
  for (const l of (await c.leases.list({})).leases) {
    if (l.labels[LABELS.managedBy] === MANAGED_BY && match(l.id)) left.push(`lease ${l.id}`);
  }
  for await (const batch of c.snapshots.list({ snapshotter: h.snapshotter })) {
    for (const info of batch.info) {
      if (info.labels[LABELS.managedBy] === MANAGED_BY && match(info.name)) {
        left.push(`snapshot ${info.name}`);
      }
    }
  }
  return left;
}

/**
 * Runs `fn` in a scope and asserts afterwards that no container, task, lease, snapshot or
 * capture dir of the test is left. Test files run in parallel, so a test only looks at what
 * carries its token; `privateNamespace` gives it a namespace of its own (with the one-layer
 * image imported) where everything of ours counts, for tests that prune.
 */
export async function clean(
  h: HarnessInfo,
  fn: (s: Scope) => Promise<void>,
  options: { privateNamespace?: boolean } = {},
): Promise<void> {
  const token = crypto.randomUUID().slice(0, 8);
  const namespace = options.privateNamespace ? `wfe-cli-${token}` : h.namespace;
  const ioDir = await Deno.makeTempDir({ prefix: "wfe-cli-test-" });
  try {
    if (options.privateNamespace) {
      await importOneLayer(h, namespace);
    }
    const g = ["--address", `unix://${h.address}`, "--namespace", namespace, "--io-dir", ioDir];
    await fn({ ioDir, token, namespace, g });
    const match = options.privateNamespace ? () => true : (id: string) => id.includes(token);
    assert.deepEqual(await leftovers(h, namespace, match), [], "left behind");
    assert.deepEqual(await Array.fromAsync(Deno.readDir(ioDir)), [], "capture dirs left behind");
  } finally {
    await Deno.remove(ioDir, { recursive: true });
    if (options.privateNamespace) {
      await using c = await client(h, namespace);
      await c.images.delete({ name: h.images.oneLayer.name, sync: true }).catch(() => {});
      await c.namespaces.delete({ name: namespace });
    }
  }
}

/** Reads a text stream until `needle` appears; returns what was read and the open reader. */
export async function readUntil(
  reader: ReadableStreamDefaultReader<string>,
  needle: string,
  timeoutMs = 30_000,
): Promise<string> {
  let text = "";
  const deadline = Date.now() + timeoutMs;
  while (!text.includes(needle)) {
    if (Date.now() > deadline) throw new Error(`no '${needle}' within ${timeoutMs} ms: ${text}`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`the stream ended before '${needle}': ${text}`);
    text += value;
  }
  return text;
}

export async function readRest(reader: ReadableStreamDefaultReader<string>): Promise<string> {
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return text;
    text += value;
  }
}

export async function taskOf(h: HarnessInfo, prefix: string, namespace = h.namespace) {
  await using c = await client(h, namespace);
  return (await c.tasks.list({})).tasks.find((t) => t.id.startsWith(prefix));
}
