/**
 * The command line, spawned as a user runs it (`deno run -A cli.ts ...`), against the harness's
 * containerd. Help texts are compared with tests/cli_help/*.txt; regenerate them with
 * `UPDATE_SNAPSHOTS=1 deno task test tests/cli_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { chooseAddress, keyValue } from "../cli/common.ts";
import { parseReady, splitWords } from "../cli/service.ts";
import { connect, type ContainerdClient } from "../lib/grpc/connection.ts";
import { LABELS, MANAGED_BY } from "../lib/labels.ts";
import { chainId } from "../lib/oci/chain_id.ts";
import type { PruneReport } from "../lib/prune.ts";
import { assertExists } from "./asserts.ts";
import { containerdTest, ctr, type HarnessInfo } from "./harness.ts";
import { TaskStatus } from "../proto/gen/types.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;
const HELP_DIR = new URL("./cli_help/", import.meta.url).pathname;
const UPDATE = Deno.env.get("UPDATE_SNAPSHOTS") === "1";

interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno run -A cli.ts ARGS` to completion. */
async function cli(args: string[], env: Record<string, string> = {}): Promise<Output> {
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

/** The flags a step needs on the harness daemon. */
function stepFlags(h: HarnessInfo): string[] {
  return [
    "--image",
    h.images.oneLayer.name,
    "--snapshotter",
    h.snapshotter,
    "--runc-root",
    h.runcRoot,
  ];
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

async function client(h: HarnessInfo, namespace = h.namespace): Promise<ContainerdClient> {
  return await connect(`unix://${h.address}`, { namespace });
}

/** What a test works in: a private IO dir, a token in every name, a namespace, global flags. */
interface Scope {
  ioDir: string;
  token: string;
  namespace: string;
  /** `--address`, `--namespace` and `--io-dir` for the CLI. */
  g: string[];
}

/** Containers, tasks, leases and snapshots of ours in `namespace` whose id `match`es. */
async function leftovers(
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
async function clean(
  h: HarnessInfo,
  fn: (s: Scope) => Promise<void>,
  options: { privateNamespace?: boolean } = {},
): Promise<void> {
  const token = crypto.randomUUID().slice(0, 8);
  const namespace = options.privateNamespace ? `wfe-cli-${token}` : h.namespace;
  const ioDir = await Deno.makeTempDir({ prefix: "wfe-cli-test-" });
  try {
    if (options.privateNamespace) {
      await ctr(h.address, [
        "images",
        "import",
        "--platform",
        h.images.oneLayer.platform,
        "--snapshotter",
        h.snapshotter,
        `${h.dir}/images/one-layer.tar`,
      ], { namespace });
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
async function readUntil(
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

async function readRest(reader: ReadableStreamDefaultReader<string>): Promise<string> {
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return text;
    text += value;
  }
}

async function taskOf(h: HarnessInfo, prefix: string, namespace = h.namespace) {
  await using c = await client(h, namespace);
  return (await c.tasks.list({})).tasks.find((t) => t.id.startsWith(prefix));
}

// ---------------------------------------------------------------------------------------------
// help, errors (no containerd needed)

/** Every command whose help is snapshot-tested, and its snapshot file. */
const HELP: [string[], string][] = [
  [[], "main"],
  [["run"], "run"],
  [["spec"], "spec"],
  [["service"], "service"],
  [["service", "start"], "service-start"],
  [["service", "stop"], "service-stop"],
  [["service", "ls"], "service-ls"],
  [["service", "logs"], "service-logs"],
  [["images"], "images"],
  [["images", "ls"], "images-ls"],
  [["images", "rm"], "images-rm"],
  [["chain-id"], "chain-id"],
  [["manifest"], "manifest"],
  [["version"], "version"],
  [["info"], "info"],
  [["prune"], "prune"],
  [["up"], "up"],
  [["down"], "down"],
  [["completions"], "completions"],
];

Deno.test("cli: every command's --help matches tests/cli_help/ and shows an example", async () => {
  const outputs = await Promise.all(HELP.map(([args]) => cli([...args, "--help"])));
  const stale: string[] = [];
  for (const [i, [args, file]] of HELP.entries()) {
    const { code, stdout, stderr } = outputs[i];
    const what = `${["wfe-containerd", ...args].join(" ")} --help`;
    assert.equal(code, 0, `${what}: ${stderr}`);
    assert.equal(stderr, "", what);
    assert.match(stdout, /\nExamples:\n {2}\S/, `${what} shows no example`);
    const path = `${HELP_DIR}${file}.txt`;
    if (UPDATE) {
      await Deno.mkdir(HELP_DIR, { recursive: true });
      await Deno.writeTextFile(path, stdout);
      continue;
    }
    let expected: string;
    try {
      expected = await Deno.readTextFile(path);
    } catch {
      stale.push(`${file}.txt is missing`);
      continue;
    }
    if (expected !== stdout) {
      const want = expected.split("\n");
      const got = stdout.split("\n");
      const line = got.findIndex((l, n) => l !== want[n]);
      stale.push(
        `${what} differs from ${file}.txt at line ${line + 1}: ` +
          `expected ${JSON.stringify(want[line])}, got ${JSON.stringify(got[line])}`,
      );
    }
  }
  assert.deepEqual(
    stale,
    [],
    "help texts changed; review and regenerate with UPDATE_SNAPSHOTS=1 deno task test tests/cli_test.ts",
  );
  // `help COMMAND` prints the same as `COMMAND --help`.
  const viaHelp = await cli(["help", "prune"]);
  assert.equal(viaHelp.stdout, outputs[HELP.findIndex(([, f]) => f === "prune")].stdout);
});

Deno.test("cli: usage errors are one line on stderr and exit 125", async () => {
  const cases: [string[], RegExp][] = [
    [["bogus"], /^error: unknown command 'bogus'\n$/],
    [["run", "--imagee", "x"], /^error: unknown option '--imagee' \(did you mean --image\?\)\n$/],
    [
      ["run", "--image", "x", "--timeout", "5x"],
      /^error: option '--timeout <duration>' argument '5x' is invalid\. Expected milliseconds .*\n$/,
    ],
    [
      ["run", "--image", "x", "--network", "bridge"],
      /^error: option '--network <mode>' argument 'bridge' is invalid\. Allowed choices are none, host\.\n$/,
    ],
    [
      ["run", "--run", "echo"],
      /^error: no image: pass --image IMAGE or set 'image' in the step file\n$/,
    ],
    [
      ["run", "--image", "x", "--run", "echo", "--", "ls"],
      /^error: give either --run SCRIPT or a command after --, not both\n$/,
    ],
    [["run", "--image", "x", "--env", "=x"], /^error: --env '=x': expected KEY=VALUE\n$/],
    [
      ["run", "--image", "x", "--volume", "/a"],
      /^error: Cannot parse --volume '\/a': expected SRC:DST or SRC:DST:ro \(absolute paths\)\n$/,
    ],
    [
      ["run", "--image", "x", "--memory", "1k"],
      /^error: Cannot use memory '1k': 1024 bytes is below the minimum of 6 MiB runc accepts\n$/,
    ],
    [
      ["run", "--image", "x", "--env-file", "/nonexistent"],
      /^error: --env-file \/nonexistent: no such file\n$/,
    ],
    [["--io-dir", "/nonexistent", "info"], /^error: --io-dir \/nonexistent: no such directory\n$/],
    [["service", "start", "web"], /^error: required option '--image <ref>' not specified\n$/],
    [
      ["service", "start", "web", "--image", "x", "--ready", "udp:53"],
      /^error: --ready 'udp:53': unknown check 'udp'; expected tcp:PORT, /,
    ],
    [["completions", "tcsh"], /^error: completions 'tcsh': expected bash, zsh or fish\n$/],
  ];
  const outputs = await Promise.all(cases.map(([args]) => cli(args)));
  for (const [i, [args, re]] of cases.entries()) {
    const { code, stdout, stderr } = outputs[i];
    assert.equal(code, 125, `${args.join(" ")}: ${stderr}`);
    assert.equal(stdout, "", args.join(" "));
    assert.match(stderr, re, args.join(" "));
  }
});

Deno.test("cli: an unreachable daemon is one error line; --debug adds the stack", async () => {
  const plain = await cli(["--address", "/nonexistent.sock", "images", "ls"]);
  assert.equal(plain.code, 125);
  assert.equal(
    plain.stderr,
    "error: connect: containerd socket not found: /nonexistent.sock (UNAVAILABLE)\n",
  );
  const debug = await cli(["--debug", "--address", "/nonexistent.sock", "images", "ls"]);
  assert.equal(debug.code, 125);
  assert.match(debug.stderr, /^ContainerdError: connect: containerd socket not found.*\n {4}at /);
  assert.match(
    debug.stderr,
    /\nerror: connect: containerd socket not found: \/nonexistent\.sock \(UNAVAILABLE\)\n$/,
  );
  // Nothing configured and no system socket: a hint to start one.
  const none = await cli(["images", "ls"], {
    WFE_CONTAINERD_ADDR: "",
    CONTAINERD_ADDRESS: "",
    WFE_DEV_DIR: "/nonexistent-dev-dir",
  });
  if (none.code === 125 && none.stderr.startsWith("error: no containerd found")) {
    assert.match(none.stderr, /start one with `up`, or pass --address/);
  }
});

Deno.test("cli: a YAML step file with an unknown key names the key and its line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/step.yaml`;
    await Deno.writeTextFile(file, "image: busybox\nrun: echo hi\nenv:\n  A: b\ntimout: 5m\n");
    // No daemon is contacted: the file is rejected first.
    const { code, stdout, stderr } = await cli([
      "--address",
      "/nonexistent.sock",
      "run",
      "-f",
      file,
    ]);
    assert.equal(code, 125);
    assert.equal(stdout, "");
    assert.match(
      stderr,
      new RegExp(
        `^error: ${file}:5:1: unknown key 'timout' \\(did you mean 'timeout'\\?\\)\n$`,
      ),
    );
    assert.equal(stderr.split("\n").length, 2, "one line");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: completions print bash (valid syntax), zsh and fish scripts", async () => {
  const [bash, zsh, fish] = await Promise.all(
    ["bash", "zsh", "fish"].map((shell) => cli(["completions", shell])),
  );
  for (const out of [bash, zsh, fish]) assert.equal(out.code, 0, out.stderr);
  assert.match(bash.stdout, /complete -o filenames -F _wfe_containerd wfe-containerd\n$/);
  assert.match(bash.stdout, /"service"\) echo "start stop ls logs" ;;/);
  assert.match(bash.stdout, /"run"\) echo "[^"]*--image[^"]*--timeout/);
  assert.match(
    zsh.stdout,
    /^# zsh completion[^\n]*\nautoload -U \+X bashcompinit && bashcompinit\n/,
  );
  assert.match(fish.stdout, /complete -c wfe-containerd -f -n '[^']*' -a prune -d /);
  assert.match(fish.stdout, /-l network -xa 'none host'/);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/c.bash`, bash.stdout);
    const check = await new Deno.Command("bash", { args: ["-n", `${dir}/c.bash`] }).output();
    assert.equal(check.code, 0, new TextDecoder().decode(check.stderr));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: --ready checks and exec command lines parse", () => {
  assert.deepEqual(parseReady("tcp:5432"), { tcp: 5432 });
  assert.deepEqual(parseReady("http:8080"), { http: { port: 8080 } });
  assert.deepEqual(parseReady("http:8080/health?x=1"), {
    http: { port: 8080, path: "/health?x=1" },
  });
  assert.deepEqual(parseReady("log:ready to accept"), { log: "ready to accept" });
  assert.deepEqual(parseReady("log:/listening on \\d+/"), { log: "/listening on \\d+/" });
  assert.deepEqual(parseReady(`exec:pg_isready -U "the user"`), {
    exec: ["pg_isready", "-U", "the user"],
  });
  assert.equal(parseReady("none"), false);
  for (const bad of ["tcp:", "tcp:0", "tcp:70000", "http:x/", "log:", "exec:", "udp:53", "tcp"]) {
    assert.throws(() => parseReady(bad), /--ready '.*': .*; expected tcp:PORT, /, bad);
  }
  assert.deepEqual(splitWords(`a  'b c' "d \\"e\\"" f\\ g ''`), ["a", "b c", 'd "e"', "f g", ""]);
  assert.throws(() => splitWords(`a 'b`), /unterminated ' in/);
});

Deno.test("cli: KEY=VALUE flags and the address order", () => {
  assert.deepEqual(keyValue("A=b=c", "--env"), ["A", "b=c"]);
  assert.deepEqual(keyValue("A=", "--env"), ["A", ""]);
  assert.throws(() => keyValue("A", "--label"), /--label 'A': expected KEY=VALUE/);
  Deno.env.set("WFE_CLI_TEST_VAR", "from-here");
  try {
    assert.deepEqual(keyValue("WFE_CLI_TEST_VAR", "--env", true), [
      "WFE_CLI_TEST_VAR",
      "from-here",
    ]);
  } finally {
    Deno.env.delete("WFE_CLI_TEST_VAR");
  }
  assert.throws(
    () => keyValue("WFE_CLI_TEST_VAR", "--env", true),
    /--env WFE_CLI_TEST_VAR: WFE_CLI_TEST_VAR is not set here; write WFE_CLI_TEST_VAR=VALUE/,
  );
  assert.deepEqual(chooseAddress("tcp://127.0.0.1:1"), {
    address: "tcp://127.0.0.1:1",
    source: "--address",
  });
  const saved = ["WFE_CONTAINERD_ADDR", "CONTAINERD_ADDRESS"].map((k) => [k, Deno.env.get(k)]);
  try {
    Deno.env.set("CONTAINERD_ADDRESS", "/b.sock");
    Deno.env.set("WFE_CONTAINERD_ADDR", "/a.sock");
    assert.deepEqual(chooseAddress(undefined), {
      address: "/a.sock",
      source: "WFE_CONTAINERD_ADDR",
    });
    Deno.env.delete("WFE_CONTAINERD_ADDR");
    assert.deepEqual(chooseAddress(undefined), {
      address: "/b.sock",
      source: "CONTAINERD_ADDRESS",
    });
  } finally {
    for (const [k, v] of saved) v === undefined ? Deno.env.delete(k!) : Deno.env.set(k!, v);
  }
});

// ---------------------------------------------------------------------------------------------
// against the harness's containerd

containerdTest("cli run --json prints exit code, output, outputs and output data", async (h) => {
  await clean(h, async (s) => {
    const { code, stdout, stderr } = await cli([
      ...s.g,
      "run",
      ...stepFlags(h),
      "--name",
      `build-${s.token}`,
      "--env",
      "GREETING=hi",
      "--json",
      "--",
      "sh",
      "-c",
      'echo "$GREETING"; echo "##wfe[output version=1.2.3]"; echo oops >&2',
    ]);
    assert.equal(code, 0, stderr);
    assert.equal(stderr, "");
    const result = JSON.parse(stdout);
    assert.deepEqual(Object.keys(result).sort(), [
      "containerId",
      "durationMs",
      "exitCode",
      "outputData",
      "outputs",
      "stderr",
      "stdout",
      "timedOut",
    ]);
    assert.equal(result.exitCode, 0);
    assert.equal(result.timedOut, false);
    assert.equal(result.stdout, "hi\n##wfe[output version=1.2.3]\n");
    assert.equal(result.stderr, "oops\n");
    assert.deepEqual(result.outputs, { version: "1.2.3" });
    assert.equal(result.outputData[`build-${s.token}.exit_code`], 0);
    assert.equal(result.outputData[`build-${s.token}.stderr`], "oops\n");
    assert.equal(result.outputData.version, "1.2.3");
    assert.match(result.containerId, new RegExp(`^wfe-build-${s.token}-[0-9a-f]{16}$`));
    assert.ok(Number.isInteger(result.durationMs) && result.durationMs > 0);
  });
});

containerdTest("cli run exits with the container's exit code (exit 7 -> 7)", async (h) => {
  await clean(h, async (s) => {
    const plain = await cli([
      ...s.g,
      "run",
      ...stepFlags(h),
      "--name",
      `exit-${s.token}`,
      "--run",
      "echo to-stdout; echo to-stderr >&2; exit 7",
    ]);
    assert.equal(plain.code, 7, plain.stderr);
    assert.equal(plain.stdout, "to-stdout\n");
    assert.equal(plain.stderr, "to-stderr\n", "no error line for the container's own exit");
    const json = await cli([
      ...s.g,
      "run",
      ...stepFlags(h),
      "--name",
      `exit-json-${s.token}`,
      "--json",
      "--",
      "sh",
      "-c",
      "exit 7",
    ]);
    assert.equal(json.code, 7, json.stderr);
    assert.equal(JSON.parse(json.stdout).exitCode, 7);
  });
});

containerdTest("cli run streams a line before the container exits", async (h) => {
  await clean(h, async (s) => {
    const sync = await Deno.makeTempDir({ prefix: "wfe-cli-sync-" });
    await Deno.chmod(sync, 0o755);
    const name = `live-${s.token}`;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        CLI,
        ...s.g,
        "run",
        ...stepFlags(h),
        "--name",
        name,
        "--volume",
        `${sync}:/sync:ro`,
        "--",
        "sh",
        "-c",
        // The container cannot exit before the test creates /sync/go.
        "echo first; i=0; while [ ! -e /sync/go ] && [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done; " +
        "if [ -e /sync/go ]; then echo saw-go; else echo gave-up; fi",
      ],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const stderr = new Response(child.stderr).text();
    try {
      const first = await readUntil(stdout, "first\n");
      assert.equal(first, "first\n");
      const task = await taskOf(h, `wfe-${name}-`);
      assertExists(task, "the container is not there while its first line is");
      assert.equal(task.status, TaskStatus.RUNNING);
      await Deno.writeTextFile(`${sync}/go`, "");
      assert.equal(await readRest(stdout), "saw-go\n");
      const status = await child.status;
      assert.equal(status.code, 0, await stderr);
      assert.equal(await stderr, "");
    } finally {
      await stdout.cancel().catch(() => {});
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await child.status;
      await stderr.catch(() => {});
      await Deno.remove(sync, { recursive: true });
    }
  });
});

containerdTest("cli run -f runs a YAML step file; flags override it", async (h) => {
  await clean(h, async (s) => {
    const dir = await Deno.makeTempDir();
    try {
      const file = `${dir}/step.yaml`;
      await Deno.writeTextFile(
        file,
        [
          `image: ${h.images.oneLayer.name}`,
          `step_name: from-file-${s.token}`,
          `snapshotter: ${h.snapshotter}`,
          "env:",
          "  MODE: file",
          "  LEVEL: 3",
          "run: |",
          '  echo "mode=$MODE level=$LEVEL user=$(id -u) cwd=$(pwd)"',
          '  echo "##wfe[output mode=$MODE]"',
          "working_dir: /tmp",
          "timeout: 30s",
          "labels:",
          "  team: infra",
          "",
        ].join("\n"),
      );
      const { code, stdout, stderr } = await cli([
        ...s.g,
        "run",
        "-f",
        file,
        "--runc-root",
        h.runcRoot,
        "--env",
        "MODE=flag",
        "--user",
        "1000:1000",
        "--json",
      ]);
      assert.equal(code, 0, stderr);
      const result = JSON.parse(stdout);
      assert.equal(
        result.stdout,
        "mode=flag level=3 user=1000 cwd=/tmp\n##wfe[output mode=flag]\n",
      );
      assert.deepEqual(result.outputs, { mode: "flag" });
      assert.equal(result.outputData[`from-file-${s.token}.exit_code`], 0);
      assert.match(result.containerId, new RegExp(`^wfe-from-file-${s.token}-`));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

containerdTest("cli run --timeout kills the step and exits 124", async (h) => {
  await clean(h, async (s) => {
    const started = performance.now();
    const plain = await cli([
      ...s.g,
      "run",
      ...stepFlags(h),
      "--name",
      `timeout-${s.token}`,
      "--timeout",
      "1s",
      "--grace-period",
      "200ms",
      "--",
      "sleep",
      "30",
    ]);
    assert.equal(plain.code, 124, plain.stderr);
    assert.match(
      plain.stderr,
      /^error: container execution timed out after 1000 ms \(killed, exit code 137\)\n$/,
    );
    assert.ok(performance.now() - started < 20_000);
    const json = await cli([
      ...s.g,
      "run",
      ...stepFlags(h),
      "--name",
      `timeout-json-${s.token}`,
      "--timeout",
      "500ms",
      "--grace-period",
      "0",
      "--json",
      "--run",
      "echo before; sleep 30",
    ]);
    assert.equal(json.code, 124, json.stderr);
    const result = JSON.parse(json.stdout);
    assert.equal(result.timedOut, true);
    assert.equal(result.stdout, "before\n");
  });
});

containerdTest(
  "cli spec prints the runtime spec: network none vs host, creating nothing",
  async (h) => {
    await clean(h, async (s) => {
      const [none, host] = await Promise.all(
        ["none", "host"].map((network) =>
          cli([
            ...s.g,
            "spec",
            ...stepFlags(h),
            "--name",
            `spec-${s.token}`,
            "--network",
            network,
            "--",
            "id",
            "-u",
          ])
        ),
      );
      assert.equal(none.code, 0, none.stderr);
      assert.equal(host.code, 0, host.stderr);
      const a = JSON.parse(none.stdout);
      const b = JSON.parse(host.stdout);
      for (const spec of [a, b]) {
        assert.deepEqual(spec.process.args, ["id", "-u"]);
        assert.equal(spec.process.user.uid, 65534);
        assert.match(spec.linux.cgroupsPath, new RegExp(`^/${h.namespace}/wfe-spec-${s.token}-`));
      }
      const namespaces = (spec: { linux: { namespaces: { type: string }[] } }) =>
        spec.linux.namespaces.map((n) => n.type);
      const targets = (spec: { mounts: { destination: string }[] }) =>
        spec.mounts.map((m) => m.destination);
      assert.ok(namespaces(a).includes("network"), namespaces(a).join(","));
      assert.ok(!namespaces(b).includes("network"), namespaces(b).join(","));
      assert.ok(!targets(a).includes("/etc/resolv.conf"));
      for (const path of ["/etc/resolv.conf", "/etc/hosts"]) {
        const mount = b.mounts.find((m: { destination: string }) => m.destination === path);
        assertExists(mount, `${path} is not bound with --network host`);
        assert.ok(mount.options.includes("ro"), JSON.stringify(mount));
      }
      assert.ok(b.process.env.some((e: string) => e.startsWith("HOSTNAME=")));
      assert.ok(!a.process.env.some((e: string) => e.startsWith("HOSTNAME=")));
    });
  },
);

containerdTest("cli service start / ls / logs / stop", async (h) => {
  await clean(h, async (s) => {
    const name = `svc-cli-${s.token}`;
    const port = freePort();
    const g = s.g;
    try {
      const start = await cli([
        ...g,
        "service",
        "start",
        name,
        "--image",
        h.images.oneLayer.name,
        "--snapshotter",
        h.snapshotter,
        "--runc-root",
        h.runcRoot,
        "--port",
        String(port),
        "--ready",
        `http:${port}/`,
        "--ready-interval",
        "100ms",
        "-e",
        "GREETING=hello-from-service",
        "--",
        "sh",
        "-c",
        `mkdir -p /www && echo "$GREETING" > /www/index.html && echo serving && echo warn >&2 && ` +
        `exec httpd -f -p ${port} -h /www`,
      ]);
      assert.equal(start.code, 0, start.stderr);
      assert.match(
        start.stdout,
        new RegExp(`^started service ${name}: pid \\d+, image ${h.images.oneLayer.name}\n`),
      );
      const svcPrefix = `SVC_${name.toUpperCase().replaceAll("-", "_")}`;
      assert.match(
        start.stdout,
        new RegExp(`env: +${svcPrefix}_HOST=127\\.0\\.0\\.1 ${svcPrefix}_PORT=${port}\n`),
      );
      const res = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(await res.text(), "hello-from-service\n");

      const ls = await cli([...g, "service", "ls", "--json"]);
      assert.equal(ls.code, 0, ls.stderr);
      const mine = JSON.parse(ls.stdout).find((s: { containerId: string }) =>
        s.containerId === name
      );
      assertExists(mine, ls.stdout);
      assert.equal(mine.status, "running");
      assert.deepEqual(mine.ports, [port]);
      const table = await cli([...g, "service", "ls"]);
      assert.match(table.stdout, /^NAME +STATUS +PID +PORTS +IMAGE +CREATED\n/);
      assert.match(
        table.stdout,
        new RegExp(`\n${name} +running +\\d+ +${port} +${h.images.oneLayer.name} +`),
      );

      const logs = await cli([...g, "service", "logs", name]);
      assert.equal(logs.code, 0, logs.stderr);
      assert.equal(logs.stdout, "serving\n");
      assert.equal(logs.stderr, "warn\n");

      const again = await cli([...g, "service", "start", name, "--image", h.images.oneLayer.name]);
      assert.equal(again.code, 125);
      assert.match(again.stderr, /already exists/);

      const stop = await cli([...g, "service", "stop", name, "--grace-period", "1s"]);
      assert.equal(stop.code, 0, stop.stderr);
      assert.equal(
        stop.stdout,
        `stopped ${name} (removed task, container, snapshot, lease, capture dir)\n`,
      );
      const gone = await cli([...g, "service", "ls", "-q"]);
      assert.ok(!gone.stdout.split("\n").includes(name), gone.stdout);
      const twice = await cli([...g, "service", "stop", name]);
      assert.equal(twice.code, 125);
      assert.equal(twice.stderr, `error: no service ${name} in namespace ${s.namespace}\n`);
    } finally {
      await cli([...g, "service", "stop", name, "--grace-period", "0"]);
    }
  });
});

containerdTest("cli prune finds and removes the container of a killed run", async (h) => {
  await clean(h, async (s) => {
    const name = `killed-${s.token}`;
    const g = s.g;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        CLI,
        ...g,
        "run",
        ...stepFlags(h),
        "--name",
        name,
        "--",
        "sh",
        "-c",
        "echo started; exec sleep 60",
      ],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const stderr = new Response(child.stderr).text();
    let containerId = "";
    try {
      await readUntil(stdout, "started\n");
      const task = await taskOf(h, `wfe-${name}-`, s.namespace);
      assertExists(task, "no task for the run");
      containerId = task.id;
      child.kill("SIGKILL"); // the CLI dies; its container keeps running
      assert.equal((await child.status).signal, "SIGKILL");
    } finally {
      await stdout.cancel().catch(() => {});
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await child.status;
      await stderr.catch(() => {});
    }
    assert.ok(
      (await taskOf(h, containerId, s.namespace))?.status === TaskStatus.RUNNING,
      "the container died with the CLI",
    );
    assert.ok(
      (await Array.fromAsync(Deno.readDir(s.ioDir))).some((e) =>
        e.name === `wfe-io-${containerId}`
      ),
    );

    const dry = await cli([...g, "prune", "--dry-run"]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(
      dry.stdout,
      new RegExp(
        `^would remove container ${containerId} \\(step ${name}, running, \\S+ old\\)$`,
        "m",
      ),
    );
    assert.match(dry.stdout, /^dry run: would remove 1 container, .*; nothing was removed$/m);
    assert.ok(await taskOf(h, containerId, s.namespace), "a dry run removed the container");

    const real = await cli([...g, "prune", "--grace-period", "500ms", "--json"]);
    assert.equal(real.code, 0, real.stderr);
    const report: PruneReport = JSON.parse(real.stdout);
    const removed = report.containers.find((c) => c.id === containerId);
    assertExists(removed, real.stdout);
    assert.equal(removed.status, "running");
    assert.deepEqual(removed.removed, ["task", "container", "snapshot", "lease", "capture dir"]);
    assert.deepEqual(report.errors, []);
    const after = await cli([...g, "prune"]);
    assert.equal(
      after.stdout,
      `removed 0 containers, 0 leases, 0 snapshots, 0 capture dirs in namespace ${s.namespace}\n`,
    );
  }, { privateNamespace: true }); // prune must not touch what tests running in parallel create
});

containerdTest("cli images ls / rm, chain-id and manifest", async (h) => {
  await clean(h, async (s) => {
    const g = s.g;
    const copy = `wfe.test/busybox:cli-copy-${s.token}`;
    await using c = await client(h);
    const { image } = await c.images.get({ name: h.images.oneLayer.name });
    await c.images.create({ image: { name: copy, target: image!.target, labels: {} } });
    try {
      const quiet = await cli([...g, "images", "ls", "-q"]);
      assert.equal(quiet.code, 0, quiet.stderr);
      const names = quiet.stdout.trimEnd().split("\n");
      for (const n of [h.images.oneLayer.name, h.images.threeLayer.name, copy]) {
        assert.ok(names.includes(n), n);
      }
      const table = await cli([...g, "images", "ls"]);
      assert.match(table.stdout, /^NAME +DIGEST +SIZE +PLATFORM +CREATED\n/);
      const digest = h.images.oneLayer.manifestDigest.slice(
        "sha256:".length,
        "sha256:".length + 12,
      );
      assert.match(
        table.stdout,
        new RegExp(
          `\n${
            h.images.oneLayer.name.replace(/[.]/g, "\\.")
          } +${digest} +[\\d.]+ [KM]iB +${h.images.oneLayer.platform} +`,
        ),
      );

      const rm = await cli([...g, "images", "rm", copy, "nonexistent.test/nothing:1"]);
      assert.equal(rm.code, 125);
      assert.equal(rm.stdout, `removed ${copy}\n`);
      assert.match(rm.stderr, /^error: no image nonexistent\.test\/nothing:1 in namespace /);
      assert.ok(!(await cli([...g, "images", "ls", "-q"])).stdout.includes(copy));

      const chain = await cli([...g, "chain-id", h.images.threeLayer.name]);
      assert.equal(chain.code, 0, chain.stderr);
      assert.equal(chain.stdout, `${await chainId(h.images.threeLayer.diffIds)}\n`);

      const manifest = await cli([...g, "manifest", h.images.threeLayer.name]);
      assert.equal(manifest.code, 0, manifest.stderr);
      const m = JSON.parse(manifest.stdout);
      assert.deepEqual(
        m.layers.map((l: { digest: string }) => l.digest),
        h.images.threeLayer.layerDigests,
      );
      assert.equal(m.config.digest, h.images.threeLayer.configDigest);
      const config = JSON.parse(
        (await cli([...g, "manifest", "--config", h.images.threeLayer.name])).stdout,
      );
      assert.deepEqual(config.rootfs.diff_ids, h.images.threeLayer.diffIds);

      const missing = await cli([...g, "chain-id", "nonexistent.test/nothing:1"]);
      assert.equal(missing.code, 125);
      assert.match(
        missing.stderr,
        /^error: Images\.Get: image not found in namespace '[^']+' \(tried .*\) \(NOT_FOUND\)\n$/,
      );
    } finally {
      await c.images.delete({ name: copy }).catch(() => {});
    }
  });
});

containerdTest("cli info and version describe the daemon", async (h) => {
  await clean(h, async (s) => {
    const g = s.g;
    const info = await cli([...g, "info", "--json"]);
    assert.equal(info.code, 0, info.stderr);
    const data = JSON.parse(info.stdout);
    assert.equal(data.address, `unix://${h.address}`);
    assert.equal(data.addressSource, "--address");
    assert.equal(data.namespace, h.namespace);
    assert.equal(data.serverVersion, h.version);
    assert.ok(data.snapshotters.includes(h.snapshotter), data.snapshotters);
    assert.ok(data.namespaces.includes(h.namespace));
    assert.equal(data.ioDir, s.ioDir);
    const text = await cli([...g, "info"]);
    assert.match(
      text.stdout,
      new RegExp(`^Address: +unix://${h.address} \\(--address\\)\nNamespace: +${h.namespace}\n`),
    );
    assert.match(text.stdout, /\nSnapshotters: +.*\(default: \w+\)\n/);
    const version = await cli([...g, "version"]);
    assert.equal(version.code, 0, version.stderr);
    assert.match(
      version.stdout,
      /^Client:\n {2}Version: +\d+\.\d+\.\d+\n {2}Deno: +\S+\nServer:\n/,
    );
    assert.match(
      version.stdout,
      new RegExp(`\n {2}Version: +${h.version.replace(/[.~]/g, "\\$&")}\n`),
    );
    // The address also comes from the environment.
    const fromEnv = await cli(["info", "--json"], {
      WFE_CONTAINERD_ADDR: `unix://${h.address}`,
      CONTAINERD_NAMESPACE: h.namespace,
    });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    assert.equal(JSON.parse(fromEnv.stdout).addressSource, "WFE_CONTAINERD_ADDR");
    assert.equal(JSON.parse(fromEnv.stdout).namespace, h.namespace);
  });
});
