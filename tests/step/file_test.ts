import assert from "node:assert/strict";
import { validateStepConfig } from "../../lib/step/config.ts";
import {
  parseStepFile,
  parseVolume,
  readStepFile,
  STEP_FILE_KEYS,
  StepFileError,
} from "../../lib/step/file.ts";
import { assertInstanceOf } from "../asserts.ts";

function fails(text: string): StepFileError {
  try {
    parseStepFile(text, { source: "step.yaml" });
  } catch (e) {
    assertInstanceOf(e, StepFileError);
    return e;
  }
  throw new Error(`parsed: ${text}`);
}

Deno.test("parseStepFile() maps every wfe key to the StepConfig field", () => {
  const step = parseStepFile(
    `
image: alpine:3.18
step_name: build
run: make test
env:
  MODE: release
  PORT: 8080
  DEBUG: false
volumes:
  - /srv/cache:/cache:ro
  - /srv/src:/src
  - /srv/rw:/rw:rw
  - { source: /srv/out, target: /out }
  - source: /srv/ro
    target: /ro
    readonly: true
working_dir: /src
user: "1000:1000"
network: host
memory: 512m
cpu: 1.5
pull: never
containerd_addr: unix:///run/containerd/containerd.sock
namespace: ci
timeout: 5m
max_output_bytes: 1048576
platform: linux/arm64
runtime: io.containerd.runc.v2
snapshotter: native
seccomp: unconfined
labels:
  team: infra
  tier: 1
`,
    { source: "step.yaml" },
  );
  assert.deepEqual(step, {
    image: "alpine:3.18",
    stepName: "build",
    run: "make test",
    env: { MODE: "release", PORT: "8080", DEBUG: "false" },
    volumes: [
      { source: "/srv/cache", target: "/cache", readonly: true },
      { source: "/srv/src", target: "/src", readonly: false },
      { source: "/srv/rw", target: "/rw", readonly: false },
      { source: "/srv/out", target: "/out", readonly: false },
      { source: "/srv/ro", target: "/ro", readonly: true },
    ],
    workingDir: "/src",
    user: "1000:1000",
    network: "host",
    memory: "512m",
    cpu: 1.5,
    pull: "never",
    containerdAddr: "unix:///run/containerd/containerd.sock",
    namespace: "ci",
    timeoutMs: 300_000,
    maxOutputBytes: 1048576,
    platform: "linux/arm64",
    runtime: "io.containerd.runc.v2",
    snapshotter: "native",
    seccomp: "unconfined",
    labels: { team: "infra", tier: "1" },
  });
  validateStepConfig(step);
  // entrypoint, inputs and collect: the tests below.
  assert.equal(Object.keys(STEP_FILE_KEYS).length, 25);
});

Deno.test("parseStepFile() takes command lists, name, numeric users and ms timeouts", () => {
  const step = parseStepFile(
    "image: busybox\nname: sleep\ncommand: [sleep, 5]\nuser: 1000\ntimeout: 1500\n",
  );
  assert.deepEqual(step, {
    image: "busybox",
    stepName: "sleep",
    command: ["sleep", "5"],
    user: "1000",
    timeoutMs: 1500,
  });
});

Deno.test("parseStepFile() names an unknown key, its line and column, and suggests one", () => {
  const e = fails("image: busybox\nrun: echo hi\n\nimagee: other\n");
  assert.equal(e.line, 4);
  assert.equal(e.column, 1);
  assert.equal(e.key, "imagee");
  assert.match(
    e.message,
    /^step\.yaml:4:1: unknown key 'imagee' \(did you mean 'image'\?\)$/,
  );
  assert.ok(!e.message.includes("\n"), "one line");
  const far = fails("image: busybox\nservices: []\n");
  assert.match(far.message, /^step\.yaml:2:1: unknown key 'services'; known keys: /);
});

Deno.test("parseStepFile() reports wrong types where they are", () => {
  const cases: [string, RegExp][] = [
    ["image: [a]\n", /^step\.yaml:1:8: 'image' must be a non-empty string, got a list$/],
    [
      "image: a\ncommand: echo hi\n",
      /^step\.yaml:2:10: 'command' must be a list of arguments.*got string$/,
    ],
    ["image: a\ncommand: [echo, {a: 1}]\n", /^step\.yaml:2:17: 'command\[1\]' must be a string$/],
    [
      "image: a\nenv:\n  A: [1]\n",
      /^step\.yaml:3:6: 'env\.A' must be a string, number or boolean$/,
    ],
    [
      "image: a\nenv: [A=1]\n",
      /^step\.yaml:2:6: 'env' must be a mapping of names to values, got a list$/,
    ],
    [
      "image: a\nnetwork: bridge\n",
      /^step\.yaml:2:10: 'network' must be 'none' or 'host', got string$/,
    ],
    [
      "image: a\npull: sometimes\n",
      /^step\.yaml:2:7: 'pull' must be 'if-not-present', 'always' or 'never'/,
    ],
    [
      "image: a\ntimeout: 5x\n",
      /^step\.yaml:2:10: Cannot parse timeout '5x': expected milliseconds/,
    ],
    ["image: a\ntimeout: 0s\n", /^step\.yaml:2:10: 'timeout' must be longer than 0$/],
    [
      "image: a\nmax_output_bytes: 1.5\n",
      /^step\.yaml:2:19: 'max_output_bytes' must be a positive whole number/,
    ],
    ["image: a\nvolumes: /a:/b\n", /^step\.yaml:2:10: 'volumes' must be a list/],
    [
      "image: a\nvolumes: [/a]\n",
      /^step\.yaml:2:11: Cannot parse volumes\[0\] '\/a': expected SRC:DST/,
    ],
    ["image: a\nvolumes: [/a:/b:rx]\n", /^step\.yaml:2:11: .*mode 'rx' is not 'ro' or 'rw'$/],
    [
      "image: a\nvolumes:\n  - {source: /a}\n",
      /^step\.yaml:3:5: 'volumes\[0\]' needs both 'source' and 'target'$/,
    ],
    [
      "image: a\nvolumes:\n  - {source: /a, target: /b, mode: ro}\n",
      /^step\.yaml:3:30: unknown key 'mode' in 'volumes\[0\]'/,
    ],
    [
      "image: a\nvolumes:\n  - {source: /a, target: /b, readonly: yes}\n",
      /'volumes\[0\]\.readonly' must be true or false/,
    ],
    [
      "image: a\nlabels:\n  x: null\n",
      /^step\.yaml:3:6: 'labels\.x' must be a string, number or boolean$/,
    ],
    [
      "image: a\nname: x\nstep_name: y\n",
      /^step\.yaml:3:1: 'step_name' and 'name' both set the step name/,
    ],
    ["image: a\nimage: b\n", /^step\.yaml:2:1: duplicate key 'image' \(first set on line 1\)$/],
    ["run: echo\n", /^step\.yaml:1:1: missing 'image': every step needs an image$/],
    ["", /^step\.yaml: the step file is empty/],
    ["# nothing\n", /^step\.yaml: the step file is empty/],
    ["- image: a\n", /^step\.yaml:1:1: expected a mapping of step keys/],
    ["image: a\n  bad: : :\n", /^step\.yaml:1:8: invalid YAML: /],
    ["[1: 2\n", /^step\.yaml:\d+:\d+: invalid YAML: /],
    ["1: x\nimage: a\n", /^step\.yaml:1:1: expected a string key$/],
  ];
  for (const [text, re] of cases) {
    const e = fails(text);
    assert.match(e.message, re, JSON.stringify(text));
    assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
  }
});

Deno.test("parseVolume() reads SRC:DST[:ro|rw] and rejects anything else", () => {
  assert.deepEqual(parseVolume("/a:/b"), { source: "/a", target: "/b", readonly: false });
  assert.deepEqual(parseVolume("/a:/b:ro"), { source: "/a", target: "/b", readonly: true });
  assert.deepEqual(parseVolume("/a:/b:rw"), { source: "/a", target: "/b", readonly: false });
  for (const bad of ["/a", "/a:", ":/b", "/a:/b:ro:x", "/a:/b:x"]) {
    assert.throws(() => parseVolume(bad, "--volume"), /Cannot parse --volume/, bad);
  }
});

Deno.test("readStepFile() reads a file and names it in errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/step.yaml`;
    await Deno.writeTextFile(path, "image: busybox\nrun: echo hi\n");
    assert.deepEqual(await readStepFile(path), { image: "busybox", run: "echo hi" });
    await Deno.writeTextFile(path, "image: busybox\nrn: echo hi\n");
    await assert.rejects(() => readStepFile(path), (e: unknown) => {
      assertInstanceOf(e, StepFileError);
      return e.message.startsWith(`${path}:2:1: unknown key 'rn' (did you mean 'run'?)`);
    });
    await assert.rejects(
      () => readStepFile(`${dir}/missing.yaml`),
      new RegExp(`^StepFileError: ${dir}/missing\\.yaml: cannot read the step file: no such file$`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseStepFile() reads inputs (strings and mappings, octal modes) and entrypoint", () => {
  const step = parseStepFile(
    `
image: alpine:3.18
entrypoint: [/bin/sh, -c]
command: [echo hi]
inputs:
  - ./src:/work/src
  - /etc/hosts:/etc/hosts.copy:0640
  - { source: app.conf, target: /etc/app.conf, mode: "0600", uid: 0, gid: 10 }
  - { source: /x, target: /y, mode: 0o755 }
`,
    { source: "step.yaml", baseDir: "/home/u/flow" },
  );
  assert.deepEqual(step.entrypoint, ["/bin/sh", "-c"]);
  assert.deepEqual(step.inputs, [
    { source: "/home/u/flow/src", target: "/work/src" },
    { source: "/etc/hosts", target: "/etc/hosts.copy", mode: 0o640 },
    { source: "/home/u/flow/app.conf", target: "/etc/app.conf", mode: 0o600, uid: 0, gid: 10 },
    { source: "/x", target: "/y", mode: 0o755 },
  ]);
  assert.deepEqual(validateStepConfig(step).inputs.map((i) => i.target), [
    "/work/src",
    "/etc/hosts.copy",
    "/etc/app.conf",
    "/y",
  ]);
});

Deno.test("parseStepFile() refuses a decimal mode, an unknown input key and a bad input string", () => {
  assert.match(
    fails("image: a\ninputs:\n  - { source: /a, target: /b, mode: 0640 }\n").message,
    /^step\.yaml:3:\d+: 'inputs\[0\]\.mode' must be octal, quoted: e\.g\. "0640"$/,
  );
  assert.match(
    fails("image: a\ninputs:\n  - { source: /a, target: /b, owner: 1 }\n").message,
    /^step\.yaml:3:\d+: unknown key 'owner' in 'inputs\[0\]'; known keys: source, target, uid, gid, mode$/,
  );
  assert.match(
    fails("image: a\ninputs:\n  - /a:/b:rwx\n").message,
    /^step\.yaml:3:\d+: Cannot parse inputs\[0\] mode 'rwx': expected octal permission bits/,
  );
  assert.match(
    fails("image: a\ninputs:\n  - { source: /a }\n").message,
    /'inputs\[0\]' needs both 'source' and 'target'/,
  );
});

Deno.test("parseStepFile() reads collect as PATH:DEST strings and {path, to} mappings", () => {
  const step = parseStepFile(
    "image: a\ncollect:\n  - /work/dist:./dist\n  - { path: /r.txt, to: /abs/r.txt }\n",
    { source: "step.yaml", baseDir: "/home/u/flow" },
  );
  assert.deepEqual(step.collect, [
    { path: "/work/dist", to: "/home/u/flow/dist" },
    { path: "/r.txt", to: "/abs/r.txt" },
  ]);
  assert.match(
    fails("image: a\ncollect:\n  - { path: /a, dest: /b }\n").message,
    /^step\.yaml:3:\d+: unknown key 'dest' in 'collect\[0\]'; known keys: path, to$/,
  );
  assert.match(fails("image: a\ncollect:\n  - /only\n").message, /expected PATH:DEST/);
});
