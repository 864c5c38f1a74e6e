// Ports of wfe-containerd's build_oci_spec_* unit tests (shared/seeds/wfe-containerd-step-rs-early.txt),
// adapted to what we build instead: containerd's full default spec (7 default mounts, not 3), a
// network namespace, the image config applied first, and `command` keeping the image Entrypoint.
import { kernelAtLeast } from "../../lib/oci/seccomp.ts";
import assert from "node:assert/strict";
import { assertThrows } from "../asserts.ts";
import {
  buildSpec,
  DEFAULT_CAPABILITIES,
  DEFAULT_PATH,
  type ImageProcessConfig,
  type OciSpec,
  SPEC_TYPE_URL,
  specToAny,
  withEnv,
} from "../../lib/oci/spec.ts";
import {
  MIN_MEMORY_BYTES,
  parseCpu,
  parseMemory,
  type StepConfig,
  validateStepConfig,
} from "../../lib/step/config.ts";
import { buildStepSpec } from "../../lib/step/run.ts";

const NOBODY = { uid: 65534, gid: 65534 };

function minimal(extra: Partial<StepConfig> = {}): StepConfig {
  return { image: "alpine:3.18", run: "echo hello", ...extra };
}

function spec(
  extra: Partial<StepConfig> = {},
  image?: ImageProcessConfig,
  user: { uid: number; gid: number } = NOBODY,
): OciSpec {
  return buildStepSpec(validateStepConfig(minimal(extra)), image, user, "default", "wfe-test-1");
}

Deno.test("buildStepSpec() ports build_oci_spec_minimal", () => {
  const any = specToAny(spec());
  assert.equal(any.typeUrl, SPEC_TYPE_URL);
  const parsed = JSON.parse(new TextDecoder().decode(any.value));
  assert.equal(parsed.ociVersion, "1.0.2-dev"); // wfe wrote "1.0.2"; containerd 1.6 writes -dev
  assert.deepEqual(parsed.process.args, ["/bin/sh", "-c", "echo hello"]);
  assert.equal(parsed.process.user.uid, 65534);
  assert.equal(parsed.process.user.gid, 65534);
  assert.equal(parsed.process.cwd, "/");
});

Deno.test("buildStepSpec() ports build_oci_spec_with_command (command keeps the Entrypoint)", () => {
  const s = spec({ run: undefined, command: ["echo", "hello", "world"] });
  assert.deepEqual(s.process.args, ["echo", "hello", "world"]);
  const withEntrypoint = spec(
    { run: undefined, command: ["hello"] },
    { Entrypoint: ["/bin/echo"], Cmd: ["default"] },
  );
  assert.deepEqual(withEntrypoint.process.args, ["/bin/echo", "hello"]);
});

Deno.test("buildStepSpec() ports build_oci_spec_with_env (and the merge order)", () => {
  const s = spec(
    { env: { FOO: "bar", BAZ: "qux", SHARED: "env" }, workflowData: { shared: "data", n: 1 } },
    { Env: ["PATH=/bin", "SHARED=image", "KEEP=image"] },
  );
  assert.deepEqual(s.process.env, [
    "PATH=/bin",
    "SHARED=env",
    "KEEP=image",
    "N=1",
    "FOO=bar",
    "BAZ=qux",
  ]);
  // No Env in the image: the default PATH comes first.
  assert.deepEqual(spec().process.env, [DEFAULT_PATH]);
});

Deno.test("buildStepSpec() ports build_oci_spec_with_working_dir", () => {
  assert.equal(spec({ workingDir: "/app" }).process.cwd, "/app");
  assert.equal(spec({}, { WorkingDir: "/srv" }).process.cwd, "/srv");
  assert.equal(spec({ workingDir: "/app" }, { WorkingDir: "/srv" }).process.cwd, "/app");
});

Deno.test("buildStepSpec() ports build_oci_spec_with_user (capabilities only for uid 0)", () => {
  const s = spec({}, undefined, { uid: 1000, gid: 2000 });
  assert.deepEqual(s.process.user, { uid: 1000, gid: 2000 });
  assert.deepEqual(s.process.capabilities.bounding, []);
  assert.deepEqual(s.process.capabilities.effective, []);
  const root = spec({}, undefined, { uid: 0, gid: 0 });
  assert.deepEqual(root.process.capabilities.bounding, [...DEFAULT_CAPABILITIES]);
  assert.deepEqual(root.process.capabilities.permitted, [...DEFAULT_CAPABILITIES]);
});

Deno.test("buildStepSpec() ports build_oci_spec_with_volumes (7 default mounts + 2)", () => {
  const s = spec({
    volumes: [
      { source: "/host/data", target: "/container/data", readonly: false },
      { source: "/host/config", target: "/etc/config", readonly: true },
    ],
  });
  assert.equal(s.mounts.length, 9);
  const binds = s.mounts.filter((m) => m.type === "bind");
  assert.deepEqual(binds, [
    {
      destination: "/container/data",
      type: "bind",
      source: "/host/data",
      options: ["rbind", "rw"],
    },
    {
      destination: "/etc/config",
      type: "bind",
      source: "/host/config",
      // Recursively read-only (runc's rro) where the kernel has mount_setattr (5.12+).
      options: kernelAtLeast(5, 12) ? ["rbind", "ro", "rro"] : ["rbind", "ro"],
    },
  ]);
});

Deno.test("buildStepSpec() ports build_oci_spec_no_command_no_run (now an error, or the image's)", () => {
  assertThrows(
    () => spec({ run: undefined }),
    TypeError,
    "no Entrypoint or Cmd and the step gives no 'run' or 'command'",
  );
  const fromImage = spec({ run: undefined }, { Entrypoint: ["/bin/sh", "-c"], Cmd: ["true"] });
  assert.deepEqual(fromImage.process.args, ["/bin/sh", "-c", "true"]);
});

Deno.test("buildSpec() starts from containerd's default Linux spec", () => {
  const s = buildSpec("ns", "c1", []);
  assert.deepEqual(s.mounts.map((m) => m.destination), [
    "/proc",
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/dev/mqueue",
    "/sys",
    "/run",
  ]);
  assert.deepEqual(s.linux.namespaces.map((n) => n.type), [
    "pid",
    "ipc",
    "uts",
    "mount",
    "network",
  ]);
  assert.equal(s.linux.cgroupsPath, "/ns/c1");
  assert.equal(s.process.noNewPrivileges, true);
  assert.deepEqual(s.process.rlimits, [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }]);
  assert.ok(s.linux.maskedPaths.includes("/proc/kcore"));
  assert.ok(s.linux.readonlyPaths.includes("/proc/sysrq-trigger"));
  assert.deepEqual(s.linux.resources.devices[0], { allow: false, access: "rwm" });
  assert.ok(s.linux.resources.devices.some((d) => d.allow && d.major === 1 && d.minor === 3));
});

Deno.test("buildStepSpec() network host drops the namespace and binds hosts and resolv.conf", () => {
  const none = spec({ network: "none" });
  assert.ok(none.linux.namespaces.some((n) => n.type === "network"));
  assert.ok(!none.mounts.some((m) => m.destination === "/etc/hosts"));
  const host = spec({ network: "host" });
  assert.ok(!host.linux.namespaces.some((n) => n.type === "network"));
  for (const path of ["/etc/hosts", "/etc/resolv.conf"]) {
    assert.deepEqual(host.mounts.find((m) => m.destination === path), {
      destination: path,
      type: "bind",
      source: path,
      options: ["rbind", "ro"],
    });
  }
});

Deno.test("buildStepSpec() turns memory and cpu into cgroup limits", () => {
  const s = spec({ memory: "512m", cpu: "1.5" });
  assert.deepEqual(s.linux.resources.memory, { limit: 512 * 1024 * 1024, swap: 512 * 1024 * 1024 });
  assert.deepEqual(s.linux.resources.cpu, { period: 100000, quota: 150000 });
});

Deno.test("withEnv() replaces a key in place and appends new keys", () => {
  const s = buildSpec("ns", "c", [withEnv(["A=1", "B=2"]), withEnv(["B=3", "C=4", "A=5"])]);
  assert.deepEqual(s.process.env, ["A=5", "B=3", "C=4"]);
});

Deno.test("parseMemory() reads bytes and units and refuses junk", () => {
  assert.equal(parseMemory("512m"), 536870912);
  assert.equal(parseMemory("1g"), 1073741824);
  assert.equal(parseMemory("1.5G"), 1610612736);
  assert.equal(parseMemory("64Mi"), 67108864);
  assert.equal(parseMemory(8388608), 8388608);
  assert.equal(parseMemory("8388608"), 8388608);
  assertThrows(() => parseMemory("lots"), TypeError, "Cannot parse memory as 'lots'");
  assertThrows(() => parseMemory("5x"), TypeError, "'5x'");
  assertThrows(() => parseMemory("1k"), RangeError, "minimum of 6 MiB");
  assert.equal(MIN_MEMORY_BYTES, 6 * 1024 * 1024);
});

Deno.test("parseCpu() reads cores and refuses negative, zero and junk", () => {
  assert.equal(parseCpu("1.5"), 1.5);
  assert.equal(parseCpu(2), 2);
  for (const bad of ["-1", "0", "abc", "", "1e3", "2000"]) {
    assertThrows(() => parseCpu(bad), RangeError, `cpu '${bad}'`);
  }
});

Deno.test("validateStepConfig() names the field and value of every bad input", () => {
  const cases: [Partial<StepConfig>, RegExp][] = [
    [{ image: "" }, /'image' is empty/],
    [{ command: ["x"] }, /both 'run' and 'command'/],
    [{ network: "bridge" as "none" }, /network 'bridge'/],
    [{ pull: "sometimes" as "never" }, /pull 'sometimes'/],
    [{ workingDir: "rel" }, /workingDir 'rel'/],
    [{ volumes: [{ source: "/a", target: "b" }] }, /volumes\[0\]\.target 'b'/],
    [{ env: { "": "x" } }, /env key ''/],
    [{ env: { "A=B": "x" } }, /env key 'A=B'/],
    [{ env: { A: "x\0y" } }, /env\.A: the value contains NUL/],
    [{ workflowData: { "a=b": 1 } }, /workflowData key 'A=B'/],
    [{ timeoutMs: 0 }, /timeoutMs 0/],
    [{ maxOutputBytes: 1.5 }, /maxOutputBytes 1\.5/],
    [{ memory: "lots" }, /memory as 'lots'/],
    [{ cpu: "-1" }, /cpu '-1'/],
  ];
  for (const [extra, pattern] of cases) {
    assert.throws(() => validateStepConfig(minimal(extra)), pattern);
  }
  const ok = validateStepConfig(minimal({ workflowData: { name: "x", obj: { a: 1 } } }));
  assert.deepEqual(ok.envEntries, ["NAME=x", 'OBJ={"a":1}']);
  assert.equal(ok.network, "none");
  assert.equal(ok.pull, "if-not-present");
  assert.equal(ok.runtime, "io.containerd.runc.v2");
});
