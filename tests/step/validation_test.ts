/**
 * Bad step inputs are refused before anything is created, each error naming the field and value.
 *
 * @module
 */

import assert from "node:assert/strict";
import { connect } from "../../lib/grpc/connection.ts";
import type { StepConfig } from "../../lib/step/config.ts";
import { runStep } from "../../lib/step/run.ts";
import { parseStepFile, StepFileError } from "../../lib/step/file.ts";
import { runService, type RunServiceOptions } from "../../lib/service/start.ts";
import { cleanupService } from "../../lib/service/manage.ts";
import { assertRejects, assertThrows } from "../asserts.ts";
import { cli } from "../cli/_cli.ts";
import { containerdTest, type HarnessInfo } from "../harness.ts";

function base(h: HarnessInfo, extra: Record<string, unknown>): StepConfig {
  return {
    image: h.images.oneLayer.name,
    run: "true",
    containerdAddr: `unix://${h.address}`,
    namespace: h.namespace,
    snapshotter: h.snapshotter,
    runcOptions: { root: h.runcRoot },
    ...extra,
  } as StepConfig;
}

/** [what is wrong, the config change, the error class, text the message must contain]. */
const CASES: [string, Record<string, unknown>, ErrorConstructor, string][] = [
  [
    "env as a string",
    { env: "A=1" },
    TypeError,
    "Cannot use env: expected an object of NAME: value pairs, got string",
  ],
  [
    "env as an array",
    { env: ["A=1"] },
    TypeError,
    "Cannot use env: expected an object of NAME: value pairs, got an array",
  ],
  [
    "workflowData as null",
    { workflowData: null },
    TypeError,
    "Cannot use workflowData: expected an object of NAME: value pairs, got null",
  ],
  [
    "env key with a newline",
    { env: { "A\nB": "1" } },
    TypeError,
    "Cannot use env key 'A\nB': keys must be non-empty and contain no '=', NUL or line break",
  ],
  ["env key with a CR", { env: { "A\rB": "1" } }, TypeError, "contain no '=', NUL or line break"],
  [
    "workflowData key with a newline",
    { workflowData: { "x\ny": 1 } },
    TypeError,
    "Cannot use workflowData key 'X\nY'",
  ],
  ["env key with =", { env: { "A=B": "1" } }, TypeError, "Cannot use env key 'A=B'"],
  [
    "env value that is a number",
    { env: { A: 1 } },
    TypeError,
    "Cannot use env.A: expected a string value, got number",
  ],
  [
    "volume target /",
    { volumes: [{ source: "/tmp", target: "/" }] },
    TypeError,
    "Cannot use volumes[0].target '/': it would cover the container's root or its /proc, /sys or /dev",
  ],
  [
    "volume target /proc",
    { volumes: [{ source: "/tmp", target: "/proc" }] },
    TypeError,
    "Cannot use volumes[0].target '/proc'",
  ],
  [
    "volume target under /proc",
    { volumes: [{ source: "/tmp", target: "/proc/sys/kernel" }] },
    TypeError,
    "Cannot use volumes[0].target '/proc/sys/kernel'",
  ],
  [
    "volume target /sys/",
    { volumes: [{ source: "/tmp", target: "/sys/" }] },
    TypeError,
    "Cannot use volumes[0].target '/sys/'",
  ],
  [
    "volume target /dev/shm",
    { volumes: [{ source: "/tmp", target: "/dev/shm" }] },
    TypeError,
    "Cannot use volumes[0].target '/dev/shm'",
  ],
  [
    "relative volume target",
    { volumes: [{ source: "/tmp", target: "data" }] },
    TypeError,
    "Cannot use volumes[0].target 'data': expected an absolute path",
  ],
  [
    "volumes as an object",
    { volumes: { source: "/tmp" } },
    TypeError,
    "Cannot use volumes: expected an array, got object",
  ],
  [
    "missing volume source",
    { volumes: [{ source: "/nonexistent/wfe-src", target: "/data" }] },
    TypeError,
    "Cannot use volumes[0].source '/nonexistent/wfe-src': it does not exist on this host",
  ],
  [
    "image with upper case",
    { image: "Wfe.Test/Busybox:1" },
    TypeError,
    "Cannot use image 'Wfe.Test/Busybox:1': ",
  ],
  [
    "image with a space",
    { image: "busybox latest" },
    TypeError,
    "Cannot use image 'busybox latest': ",
  ],
  [
    "image with a bad digest",
    { image: "busybox@sha256:xyz" },
    TypeError,
    "Cannot use image 'busybox@sha256:xyz': ",
  ],
  ["image with an empty tag", { image: "busybox:" }, TypeError, "Cannot use image 'busybox:': "],
  [
    "seccomp as a number",
    { seccomp: 5 },
    TypeError,
    "Cannot use seccomp 5: expected 'default', 'unconfined' or the path of a JSON profile",
  ],
  [
    "seccomp file missing",
    { seccomp: "/nonexistent/profile.json" },
    TypeError,
    "Cannot use seccomp '/nonexistent/profile.json': ",
  ],
  ["run with NUL", { run: "a\0b" }, TypeError, "Cannot use 'run': expected a string without NUL"],
  [
    "command as a string",
    { run: undefined, command: "ls" },
    TypeError,
    "Cannot use 'command': expected an array of strings",
  ],
  [
    "command with NUL",
    { run: undefined, command: ["ok", "a\0"] },
    TypeError,
    "Cannot use 'command': argument 1 contains NUL",
  ],
  ["run and command", { command: ["ls"] }, TypeError, "Cannot use both 'run' and 'command'"],
  [
    "network bridge",
    { network: "bridge" },
    TypeError,
    "Cannot use network 'bridge': expected 'none' or 'host'",
  ],
  [
    "pull sometimes",
    { pull: "sometimes" },
    TypeError,
    "Cannot use pull 'sometimes': expected 'if-not-present', 'always' or 'never'",
  ],
  [
    "relative workingDir",
    { workingDir: "tmp" },
    TypeError,
    "Cannot use workingDir 'tmp': expected an absolute path",
  ],
  ["memory 12x", { memory: "12x" }, TypeError, "Cannot parse memory as '12x' is not a size"],
  [
    "memory below 6 MiB",
    { memory: "1k" },
    RangeError,
    "Cannot use memory '1k': 1024 bytes is below the minimum of 6 MiB",
  ],
  [
    "cpu -1",
    { cpu: "-1" },
    RangeError,
    "Cannot use cpu '-1': expected a number of cores from 0.01 to 1024",
  ],
  ["cpu abc", { cpu: "abc" }, RangeError, "Cannot use cpu 'abc'"],
  [
    "timeoutMs 0",
    { timeoutMs: 0 },
    RangeError,
    "Cannot use timeoutMs 0: expected a positive number",
  ],
  ["timeoutMs -5", { timeoutMs: -5 }, RangeError, "Cannot use timeoutMs -5"],
  [
    "maxOutputBytes 0",
    { maxOutputBytes: 0 },
    RangeError,
    "Cannot use maxOutputBytes 0: expected a positive whole number",
  ],
  ["maxOutputBytes 1.5", { maxOutputBytes: 1.5 }, RangeError, "Cannot use maxOutputBytes 1.5"],
  [
    "label over 4 KiB",
    { labels: { k: "v".repeat(5000) } },
    TypeError,
    "Cannot use label 'k': keys must be non-empty and key + value at most 4096 bytes",
  ],
  [
    "empty label key",
    { labels: { "": "x" } },
    TypeError,
    "Cannot use label '': keys must be non-empty",
  ],
  ["user a:b:c", { user: "a:b:c" }, TypeError, "a:b:c"],
  ["empty image", { image: "" }, TypeError, "Cannot run a step without an image: 'image' is empty"],
  ["platform without arch", { platform: "linux" }, TypeError, "Cannot use platform 'linux': "],
  [
    "empty runtime",
    { runtime: "" },
    TypeError,
    'Cannot use runtime "": expected a non-empty string',
  ],
  [
    "empty snapshotter",
    { snapshotter: "" },
    TypeError,
    'Cannot use snapshotter "": expected a non-empty string',
  ],
  [
    "a run command of 16 MiB",
    { run: "x".repeat(16 * 1024 * 1024) },
    RangeError,
    "the runtime spec would be 16",
  ],
  [
    "unknown snapshotter",
    { snapshotter: "zfs-nope" },
    TypeError,
    "Cannot use snapshotter 'zfs-nope': the daemon has ",
  ],
  [
    "step name with a newline",
    { stepName: "a\nb" },
    TypeError,
    'Cannot use stepName "a\\nb": expected a non-empty string without NUL or line breaks',
  ],
  [
    "step name over 1024 characters",
    { stepName: "x".repeat(2000) },
    RangeError,
    "2000 characters, at most 1024 (it becomes a container label)",
  ],
];

containerdTest(
  `runStep() refuses ${CASES.length} bad inputs before creating anything, naming field and value`,
  async (h) => {
    await using c = await connect(`unix://${h.address}`, { namespace: h.namespace });
    const before = (await c.containers.list({})).containers.length;
    const leasesBefore = (await c.leases.list({})).leases.length;
    for (const [what, change, Class, text] of CASES) {
      try {
        await assertRejects(() => runStep(base(h, change)), Class, text);
      } catch (err) {
        throw new Error(`${what}: ${(err as Error).message}`, { cause: err });
      }
    }
    assert.equal((await c.containers.list({})).containers.length, before, "no container created");
    assert.equal((await c.leases.list({})).leases.length, leasesBefore, "no lease created");
  },
);

/** runService inputs: [what, container id, image, options, class, text]. */
const SERVICE_CASES: [string, string, string, Record<string, unknown>, ErrorConstructor, string][] =
  [
    [
      "port 0",
      "svc-v",
      "IMAGE",
      { ports: [0] },
      RangeError,
      "Cannot use ports[0] 0: expected a port from 1 to 65535",
    ],
    ["port 70000", "svc-v", "IMAGE", { ports: [70000] }, RangeError, "Cannot use ports[0] 70000"],
    ["port as a string", "svc-v", "IMAGE", { ports: ["80"] }, RangeError, "Cannot use ports[0] 80"],
    [
      "readiness exec []",
      "svc-v",
      "IMAGE",
      { readiness: { check: { exec: [] } } },
      TypeError,
      "Cannot use readiness exec: expected a non-empty argv array",
    ],
    [
      "readiness tcp 0",
      "svc-v",
      "IMAGE",
      { readiness: { check: { tcp: 0 } } },
      RangeError,
      "Cannot use readiness tcp port 0",
    ],
    [
      "readiness log ''",
      "svc-v",
      "IMAGE",
      { readiness: { check: { log: "" } } },
      TypeError,
      "Cannot use readiness log '': the text is empty",
    ],
    [
      "readiness timeout -1",
      "svc-v",
      "IMAGE",
      { ports: [8080], readiness: { timeoutMs: -1 } },
      RangeError,
      "Cannot use readiness timeoutMs -1: expected a positive number",
    ],
    [
      "container id with a space",
      "bad id!",
      "IMAGE",
      {},
      TypeError,
      "Cannot use container id 'bad id!': expected letters and digits",
    ],
    ["empty container id", "", "IMAGE", {}, TypeError, "Cannot use container id ''"],
    ["empty image", "svc-v", "", {}, TypeError, "Cannot run a step without an image"],
    ["image with white space", "svc-v", "Busy Box", {}, TypeError, "Cannot use image 'Busy Box': "],
    [
      "memory 1x",
      "svc-v",
      "IMAGE",
      { memory: "1x" },
      TypeError,
      "Cannot parse memory as '1x' is not a size",
    ],
    ["cpu 0", "svc-v", "IMAGE", { cpu: "0" }, RangeError, "Cannot use cpu '0'"],
    ["seccomp 3", "svc-v", "IMAGE", { seccomp: 3 }, TypeError, "Cannot use seccomp 3"],
    [
      "command as a string",
      "svc-v",
      "IMAGE",
      { command: "sh" },
      TypeError,
      "Cannot use 'command': expected an array of strings",
    ],
    [
      "entrypoint and its old name command",
      "svc-v",
      "IMAGE",
      { entrypoint: ["sh"], command: ["sh"] },
      TypeError,
      "Cannot use both 'entrypoint' and 'command'",
    ],
    [
      "args with a number",
      "svc-v",
      "IMAGE",
      { args: ["-c", 1] },
      TypeError,
      "Cannot use 'args': expected an array of strings",
    ],
    [
      "empty host",
      "svc-v",
      "IMAGE",
      { host: "" },
      TypeError,
      'Cannot use host "": expected a host name or address',
    ],
    [
      "empty name",
      "svc-v",
      "IMAGE",
      { name: " " },
      TypeError,
      'Cannot use name " ": expected a non-empty string',
    ],
  ];

containerdTest(
  `runService() refuses ${SERVICE_CASES.length} bad inputs and cleanupService() bad ids, before creating anything`,
  async (h) => {
    await using c = await connect(`unix://${h.address}`, { namespace: h.namespace });
    const before = (await c.containers.list({})).containers.length;
    for (const [what, id, image, options, Class, text] of SERVICE_CASES) {
      try {
        await assertRejects(
          () =>
            runService(
              `unix://${h.address}`,
              id,
              image === "IMAGE" ? h.images.oneLayer.name : image,
              {},
              {
                namespace: h.namespace,
                snapshotter: h.snapshotter,
                runcOptions: { root: h.runcRoot },
                ...options,
              } as RunServiceOptions,
            ),
          Class,
          text,
        );
      } catch (err) {
        throw new Error(`${what}: ${(err as Error).message}`, { cause: err });
      }
    }
    for (const id of ["bad id!", "", "a".repeat(80), "-x"]) {
      await assertRejects(
        () => cleanupService(`unix://${h.address}`, id, { namespace: h.namespace }),
        TypeError,
        `Cannot clean up container id '${id}': not a valid id`,
      );
    }
    assert.equal((await c.containers.list({})).containers.length, before, "no container created");
  },
);

/** Step files: [what, YAML, text of the StepFileError message]. */
const YAML_CASES: [string, string, string][] = [
  [
    "an unresolved alias",
    "image: a\nrun: *x\n",
    "step file:2:6: invalid YAML: Unresolved alias (the anchor must be set before the alias): x",
  ],
  [
    "an alias inside env",
    "image: a\nenv: {A: *y}\n",
    "step file:2:6: invalid YAML: Unresolved alias",
  ],
  [
    "a misspelt key",
    "imag: busybox\n",
    "step file:1:1: unknown key 'imag' (did you mean 'image'?)",
  ],
  [
    "a duplicate key",
    "image: a\nimage: b\n",
    "step file:2:1: duplicate key 'image' (first set on line 1)",
  ],
  [
    "image as a list",
    "image: [a]\n",
    "step file:1:8: 'image' must be a non-empty string, got a list",
  ],
  [
    "env as a string",
    "image: a\nenv: A=1\n",
    "step file:2:6: 'env' must be a mapping of names to values, got string",
  ],
  [
    "a volume that is a number",
    "image: a\nvolumes: [42]\n",
    "step file:2:11: 'volumes[0]' must be a SRC:DST[:ro] string or a {source, target} mapping",
  ],
  [
    "a volume without a target",
    "image: a\nvolumes: ['/a']\n",
    "step file:2:11: Cannot parse volumes[0] '/a': expected SRC:DST or SRC:DST:ro",
  ],
  ["timeout soon", "image: a\ntimeout: soon\n", "step file:2:10: Cannot parse timeout 'soon'"],
  [
    "memory as a list",
    "image: a\nmemory: [1]\n",
    "step file:2:9: 'memory' must be a string or number, got a list",
  ],
  [
    "an empty file",
    "",
    "step file: the step file is empty: expected a mapping with at least 'image'",
  ],
  [
    "a list at the top",
    "- a\n",
    "step file:1:1: expected a mapping of step keys (image, run, env, ...)",
  ],
  [
    "run as a number",
    "image: a\nrun: 1\n",
    "step file:2:6: 'run' must be a non-empty string, got number",
  ],
  [
    "labels as a list",
    "image: a\nlabels: [a]\n",
    "step file:2:9: 'labels' must be a mapping of names to values, got a list",
  ],
  [
    "network as a mapping",
    "image: a\nnetwork: {}\n",
    "step file:2:10: 'network' must be 'none' or 'host', got object",
  ],
  [
    "max_output_bytes -1",
    "image: a\nmax_output_bytes: -1\n",
    "step file:2:19: 'max_output_bytes' must be a positive whole number of bytes, got number",
  ],
  [
    "name and step_name",
    "image: a\nname: x\nstep_name: y\n",
    "step file:3:1: 'step_name' and 'name' both set the step name",
  ],
  [
    "command as a string",
    "image: a\ncommand: ls\n",
    "step file:2:10: 'command' must be a list of arguments",
  ],
  [
    "env value as a list",
    "image: a\nenv: {A: [1]}\n",
    "step file:2:10: 'env.A' must be a string, number or boolean",
  ],
  [
    "a file over 1 MiB",
    `image: a\nrun: ${"x".repeat(1_100_000)}\n`,
    "step file: the step file has 1100015 characters, more than the 1048576 allowed",
  ],
];

Deno.test(`parseStepFile() refuses ${YAML_CASES.length} bad step files with a StepFileError naming line and key`, () => {
  for (const [what, yaml, text] of YAML_CASES) {
    try {
      assertThrows(() => parseStepFile(yaml), StepFileError, text);
    } catch (err) {
      throw new Error(`${what}: ${(err as Error).message}`, { cause: err });
    }
  }
});

/** CLI flags: [what, arguments after the global flags, text on stderr]. */
const CLI_CASES: [string, string[], string][] = [
  [
    "--timeout 0",
    ["run", "--image", "busybox", "--timeout", "0", "--", "true"],
    "--timeout must be longer than 0",
  ],
  ["--timeout soon", ["run", "--image", "busybox", "--timeout", "soon", "--", "true"], "soon"],
  ["--memory 12x", ["run", "--image", "busybox", "--memory", "12x", "--", "true"], "12x"],
  ["--cpu abc", ["run", "--image", "busybox", "--cpu", "abc", "--", "true"], "abc"],
  [
    "--volume without a target",
    ["run", "--image", "busybox", "--volume", "/a", "--", "true"],
    "/a",
  ],
  ["--env without =", ["run", "--image", "busybox", "--env", "NOEQUALS", "--", "true"], "NOEQUALS"],
  [
    "--network bridge",
    ["run", "--image", "busybox", "--network", "bridge", "--", "true"],
    "bridge",
  ],
  [
    "--pull sometimes",
    ["run", "--image", "busybox", "--pull", "sometimes", "--", "true"],
    "sometimes",
  ],
  [
    "--label without =",
    ["run", "--image", "busybox", "--label", "nolabel", "--", "true"],
    "nolabel",
  ],
  [
    "--image with white space",
    ["run", "--image", "Busy Box", "--", "true"],
    "Cannot use image 'Busy Box'",
  ],
  [
    "--volume onto /proc",
    ["run", "--image", "busybox", "--volume", "/tmp:/proc", "--", "true"],
    "Cannot use volumes[0].target '/proc'",
  ],
  ["service --port 0", ["service", "start", "svc-v", "--image", "busybox", "--port", "0"], "0"],
  ["service --ready nonsense", [
    "service",
    "start",
    "svc-v",
    "--image",
    "busybox",
    "--ready",
    "nonsense",
  ], "nonsense"],
  ["images pull of a bad reference", ["images", "pull", "Not A Ref"], "Not A Ref"],
];

containerdTest(
  `the CLI refuses ${CLI_CASES.length} bad flags with one error line and exit 125, creating nothing`,
  async (h) => {
    await using c = await connect(`unix://${h.address}`, { namespace: h.namespace });
    const before = (await c.containers.list({})).containers.length;
    const g = ["--address", `unix://${h.address}`, "--namespace", h.namespace];
    const results = await Promise.all(CLI_CASES.map(([, args]) => cli([...g, ...args])));
    for (const [i, [what, , text]] of CLI_CASES.entries()) {
      const { code, stderr } = results[i];
      assert.equal(code, 125, `${what}: exit ${code}: ${stderr}`);
      assert.ok(
        stderr.includes(text),
        `${what}: stderr does not name ${JSON.stringify(text)}: ${stderr}`,
      );
      assert.equal(stderr.trim().split("\n").length, 1, `${what}: one line: ${stderr}`);
    }
    assert.equal((await c.containers.list({})).containers.length, before, "no container created");
  },
);

containerdTest(
  "a runtime without a shim binary, or a missing runc binary, fails naming it and leaves nothing",
  async (h) => {
    await using c = await connect(`unix://${h.address}`, { namespace: h.namespace });
    const before = (await c.containers.list({})).containers.length;
    const leasesBefore = (await c.leases.list({})).leases.length;
    await assertRejects(
      () => runStep(base(h, { runtime: "io.containerd.nope.v1" })),
      Error,
      'runtime "io.containerd.nope.v1" binary not installed "containerd-shim-nope-v1"',
    );
    await assertRejects(
      () =>
        runStep(base(h, { runcOptions: { root: h.runcRoot, binaryName: "/nonexistent/runc" } })),
      Error,
      "fork/exec /nonexistent/runc: no such file or directory",
    );
    assert.equal((await c.containers.list({})).containers.length, before, "no container left");
    assert.equal((await c.leases.list({})).leases.length, leasesBefore, "no lease left");
  },
);
