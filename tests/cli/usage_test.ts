/**
 * The command line without a daemon: help snapshots (tests/cli/help/*.txt), usage errors,
 * completions and flag parsing.
 *
 * @module
 */

import assert from "node:assert/strict";
import { chooseAddress, keyValue } from "../../cli/common.ts";
import { parseReady, splitWords } from "../../cli/service.ts";
import { cli, HELP_DIR, UPDATE } from "./_cli.ts";

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
  [["service", "exec"], "service-exec"],
  [["service", "cp"], "service-cp"],
  [["images"], "images"],
  [["images", "ls"], "images-ls"],
  [["images", "rm"], "images-rm"],
  [["images", "pull"], "images-pull"],
  [["images", "import"], "images-import"],
  [["chain-id"], "chain-id"],
  [["manifest"], "manifest"],
  [["version"], "version"],
  [["info"], "info"],
  [["prune"], "prune"],
  [["up"], "up"],
  [["down"], "down"],
  [["completions"], "completions"],
];

Deno.test("cli: every command's --help matches tests/cli/help/ and shows an example", async () => {
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
    "help texts changed; review and regenerate with UPDATE_SNAPSHOTS=1 deno task test tests/cli/usage_test.ts",
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
  assert.match(bash.stdout, /"service"\) echo "start stop ls logs exec cp" ;;/);
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
