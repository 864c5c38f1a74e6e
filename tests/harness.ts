/**
 * Real-containerd test harness: starts one private containerd (never the system one) in a
 * temporary directory, imports the busybox test images with `ctr` (the independent oracle), and
 * hands the facts to test files through the `WFE_TEST_HARNESS` environment variable.
 *
 * Test files use {@link containerdTest}; `tests/run_tests.ts` starts and stops the daemon, and
 * `tests/harness_cli.ts` runs a long-lived one for development (`deno task up` / `down`).
 *
 * Process hygiene: only the PID this module spawned is signalled. At stop, leftover
 * `containerd-shim*` processes are killed only when their command line names our private
 * directory (the shim is started with `-address <dir>/containerd.sock`), so they can only be
 * ours; their direct children (the container processes) are killed with them. Nothing is ever
 * killed by name.
 *
 * @module
 */

import {
  buildTestImages,
  type BuiltImage,
  type ImageDigests,
  readStaticBusybox,
} from "./oci_archive.ts";

/** The containerd namespace the tests use. */
export const TEST_NAMESPACE = "wfe-test";

/** Environment variable that carries the JSON {@link HarnessInfo} from the runner to tests. */
export const HARNESS_ENV = "WFE_TEST_HARNESS";

/** Environment variable with the reason the runner skipped containerd-backed tests. */
export const SKIP_REASON_ENV = "WFE_TEST_SKIP_REASON";

/** When `1`, a missing containerd fails the run instead of skipping. */
export const REQUIRE_ENV = "WFE_REQUIRE_CONTAINERD";

/** Skip reason when a test file is run without the runner. */
export const RUN_VIA_RUNNER =
  "run via `deno task test` (tests/run_tests.ts) to start the private containerd";

/** What the harness knows about an imported test image. */
export interface ImageFacts extends ImageDigests {
  /** Full image name, e.g. `wfe.test/busybox:one-layer`. */
  name: string;
  /** OCI platform the image was imported for, e.g. `linux/amd64`. */
  platform: string;
}

/** Facts about the running private containerd, passed to every containerd-backed test. */
export interface HarnessInfo {
  /** Absolute path of the gRPC unix socket (prefix `unix://` for a gRPC target). */
  address: string;
  /** Namespace holding the test images (`wfe-test`). */
  namespace: string;
  /** The private directory (root, state, sockets, log) of this daemon. */
  dir: string;
  /** PID of the containerd process. */
  pid: number;
  /** Server version reported by `ctr version`, e.g. `1.6.20~ds1`. */
  version: string;
  /** Snapshotter the images were unpacked into (`overlayfs`, or `native` as a fallback). */
  snapshotter: string;
  /**
   * A directory under {@link HarnessInfo.dir} to use as runc root (runc v2 runtime option
   * `root`) so containers do not leave runc state in the system default location.
   */
  runcRoot: string;
  /** The imported test images. */
  images: { oneLayer: ImageFacts; threeLayer: ImageFacts };
}

/** A running harness. */
export interface Harness extends HarnessInfo {
  /** Stops the daemon and removes its directory (idempotent). */
  stop(): Promise<void>;
}

const PROVISION_SCRIPT = new URL("../lima/provision.sh", import.meta.url);
const SBIN_DIRS = ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin", "/bin"];
const REQUIRED_COMMANDS = ["containerd", "ctr", "runc", "socat", "busybox"];
const READY_DEADLINE_MS = 30_000;
const STOP_GRACE_MS = 10_000;

// ---------------------------------------------------------------------------------------------
// small helpers

function envGet(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env
  }
}

/** PATH with the sbin directories appended (runc lives in /usr/sbin). */
function searchPath(): string {
  const parts = (envGet("PATH") ?? "").split(":").filter((p) => p !== "");
  for (const dir of SBIN_DIRS) if (!parts.includes(dir)) parts.push(dir);
  return parts.join(":");
}

/** Finds an executable in PATH (plus the sbin directories); undefined when missing. */
export function lookPath(command: string): string | undefined {
  for (const dir of searchPath().split(":")) {
    const candidate = `${dir}/${command}`;
    try {
      const info = Deno.statSync(candidate);
      if (info.isFile && info.mode !== null && (info.mode & 0o111) !== 0) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function currentUid(): number | undefined {
  try {
    return Deno.uid() ?? undefined;
  } catch {
    return undefined;
  }
}

/** Result of a finished command. */
interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<RunResult> {
  const out = await new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { PATH: searchPath() },
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs `ctr --address <address> [--namespace <ns>] <args>`; throws with its stderr on failure. */
export async function ctr(
  address: string,
  args: string[],
  options: { namespace?: string; timeoutMs?: number } = {},
): Promise<string> {
  const full = ["--address", address];
  if (options.namespace) full.push("--namespace", options.namespace);
  full.push(...args);
  const res = await run(lookPath("ctr") ?? "ctr", full, options.timeoutMs ?? 60_000);
  if (res.code !== 0) {
    throw new Error(`ctr ${full.join(" ")} failed (exit ${res.code}): ${res.stderr.trim()}`);
  }
  return res.stdout;
}

// ---------------------------------------------------------------------------------------------
// skip logic

/** Why containerd-backed tests cannot run here, or undefined when they can. */
export function containerdSkipReason(): string | undefined {
  if (Deno.build.os !== "linux") return `not Linux (${Deno.build.os})`;
  const uid = currentUid();
  if (uid === undefined) return "cannot tell the user id (run with --allow-sys or -A)";
  if (uid !== 0) return `not root (uid ${uid})`;
  const missing = REQUIRED_COMMANDS.filter((c) => lookPath(c) === undefined);
  if (missing.length > 0 && lookPath("apt-get") === undefined) {
    return `apt-get missing and containerd not installed (missing: ${missing.join(", ")})`;
  }
  return undefined;
}

function isImageFacts(v: unknown): v is ImageFacts {
  const o = v as Record<string, unknown> | null;
  return typeof o === "object" && o !== null && typeof o.name === "string" &&
    typeof o.manifestDigest === "string" && Array.isArray(o.layerDigests);
}

/** Reads the {@link HarnessInfo} the runner passed in `WFE_TEST_HARNESS`, if any. */
export function harnessFromEnv(): HarnessInfo | undefined {
  const raw = envGet(HARNESS_ENV);
  if (!raw) return undefined;
  let info: HarnessInfo;
  try {
    info = JSON.parse(raw) as HarnessInfo;
  } catch (e) {
    throw new Error(`${HARNESS_ENV} is not valid JSON: ${e}`);
  }
  if (
    typeof info?.address !== "string" || typeof info.namespace !== "string" ||
    typeof info.pid !== "number" || !isImageFacts(info.images?.oneLayer) ||
    !isImageFacts(info.images?.threeLayer)
  ) {
    throw new Error(`${HARNESS_ENV} does not describe a harness: ${raw.slice(0, 200)}`);
  }
  return info;
}

const announcedSkips = new Set<string>();

/** Options passed through to `Deno.test` by {@link containerdTest}. */
export type ContainerdTestOptions = Omit<Deno.TestDefinition, "name" | "fn" | "ignore">;

/**
 * Registers a Deno test that needs the private containerd. Without a harness the test is ignored
 * (and `skipped: <name>: <reason>` is printed to stderr), unless `WFE_REQUIRE_CONTAINERD=1`, in
 * which case it is registered as a failing test.
 */
export function containerdTest(
  name: string,
  fn: (h: HarnessInfo) => Promise<void>,
  options: ContainerdTestOptions = {},
): void {
  const harness = harnessFromEnv();
  if (harness) {
    Deno.test({ ...options, name, fn: () => fn(harness) });
    return;
  }
  const reason = envGet(SKIP_REASON_ENV) || RUN_VIA_RUNNER;
  if (envGet(REQUIRE_ENV) === "1") {
    Deno.test({
      ...options,
      name,
      fn: () => {
        throw new Error(`containerd tests cannot run: ${reason} (${REQUIRE_ENV}=1)`);
      },
    });
    return;
  }
  if (!announcedSkips.has(name)) {
    announcedSkips.add(name);
    console.error(`skipped: ${name}: ${reason}`);
  }
  Deno.test({ ...options, name, ignore: true, fn: () => {} });
}

// ---------------------------------------------------------------------------------------------
// provisioning and daemon lifecycle (shared with tests/harness_cli.ts)

/** Runs lima/provision.sh when a required command or the static busybox is missing. */
export async function provisionIfNeeded(): Promise<void> {
  const missing = REQUIRED_COMMANDS.filter((c) => lookPath(c) === undefined);
  let busyboxStatic = true;
  try {
    await readStaticBusybox();
  } catch {
    busyboxStatic = false;
  }
  if (missing.length === 0 && busyboxStatic) return;
  console.error(
    `harness: provisioning (missing: ${
      [...missing, ...(busyboxStatic ? [] : ["busybox-static"])]
        .join(", ")
    })`,
  );
  const script = decodeURIComponent(PROVISION_SCRIPT.pathname);
  const status = await new Deno.Command("bash", {
    args: [script],
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (!status.success) throw new Error(`${script} failed (exit ${status.code})`);
}

/** Paths inside a daemon directory. */
export interface DaemonPaths {
  /** The daemon directory itself. */
  dir: string;
  /** `config.toml` passed to `containerd --config`. */
  config: string;
  /** gRPC unix socket. */
  address: string;
  /** containerd's stdout and stderr. */
  log: string;
  /** Suggested runc root for containers (runc runtime option `root`). */
  runcRoot: string;
  /** Where the test image archives are written before `ctr images import`. */
  images: string;
}

/** The layout of a private daemon directory. */
export function daemonPaths(dir: string): DaemonPaths {
  return {
    dir,
    config: `${dir}/config.toml`,
    address: `${dir}/containerd.sock`,
    log: `${dir}/containerd.log`,
    runcRoot: `${dir}/runc`,
    images: `${dir}/images`,
  };
}

function tomlString(s: string): string {
  return JSON.stringify(s); // TOML basic strings accept JSON escapes for plain paths
}

/** The containerd config.toml for a private daemon in `dir`: everything under `dir`. */
export function daemonConfig(dir: string): string {
  const p = daemonPaths(dir);
  const q = (sub: string) => tomlString(`${dir}/${sub}`);
  return [
    "# wfe private containerd for tests; everything lives under this directory",
    "version = 2",
    `root = ${q("root")}`,
    `state = ${q("state")}`,
    `temp = ${q("tmp")}`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", ' +
    '"io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", ' +
    '"io.containerd.snapshotter.v1.devmapper"]',
    "",
    "[grpc]",
    `  address = ${tomlString(p.address)}`,
    "",
    "[ttrpc]",
    `  address = ${tomlString(p.address + ".ttrpc")}`,
    "",
    "[debug]",
    `  address = ${q("debug.sock")}`,
    '  level = "info"',
    "",
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${q("opt")}`,
    "",
    '[plugins."io.containerd.runtime.v1.linux"]',
    `  runtime_root = ${q("runc-v1")}`,
    "",
  ].join("\n");
}

/** A spawned daemon. */
export interface DaemonHandle {
  /** The daemon directory. */
  dir: string;
  /** containerd's PID. */
  pid: number;
  /** gRPC unix socket path. */
  address: string;
  /** Set when this process spawned the daemon (so it can be awaited). */
  child?: Deno.ChildProcess;
}

/**
 * Writes the config and spawns `containerd --config <dir>/config.toml` with its output appended
 * to `<dir>/containerd.log`. `detached` starts it in its own session so it outlives this process.
 */
export async function spawnDaemon(
  dir: string,
  detached: boolean,
  options: { netns?: string } = {},
): Promise<DaemonHandle> {
  const p = daemonPaths(dir);
  await Deno.mkdir(p.runcRoot, { recursive: true });
  await Deno.mkdir(`${dir}/tmp`, { recursive: true });
  // Others may pass through (not list): gVisor's sandbox, as nobody, opens its TMPDIR (<dir>/tmp).
  await Deno.chmod(dir, 0o711);
  await Deno.writeTextFile(p.config, daemonConfig(dir));
  const containerd = lookPath("containerd");
  if (!containerd) throw new Error("containerd not found (run lima/provision.sh as root)");
  // sh execs containerd (and nsenter execs sh), so the PID we get is containerd's.
  const shell = [
    "/bin/sh",
    "-c",
    'exec "$0" --config "$1" >>"$2" 2>&1',
    containerd,
    p.config,
    p.log,
  ];
  // nsenter joins only the network namespace; `ip netns exec` would also remount /sys in a
  // private mount namespace, hiding the cgroup mounts runc needs.
  const argv = options.netns
    ? [lookPath("nsenter") ?? "nsenter", `--net=/run/netns/${options.netns}`, ...shell]
    : shell;
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "null",
    stdout: "null",
    stderr: "null",
    env: { PATH: searchPath() },
    clearEnv: false,
    detached,
  }).spawn();
  if (detached) child.unref();
  return { dir, pid: child.pid, address: p.address, child };
}

async function logTail(dir: string, lines = 30): Promise<string> {
  try {
    const text = await Deno.readTextFile(daemonPaths(dir).log);
    return text.trimEnd().split("\n").slice(-lines).join("\n");
  } catch (e) {
    return `(no log: ${e})`;
  }
}

/** The server version from `ctr version`, or throws. */
export async function serverVersion(address: string, timeoutMs = 5_000): Promise<string> {
  const out = await ctr(address, ["--connect-timeout", "2s", "version"], { timeoutMs });
  const server = out.split(/^Server:/m)[1] ?? "";
  const m = server.match(/Version:\s*(\S+)/);
  if (!m) throw new Error(`unexpected ctr version output: ${out}`);
  return m[1];
}

/** True while `pid` exists and is not a zombie. */
export function pidAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

function cmdline(pid: number): string[] {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter((s) => s !== "");
  } catch {
    return [];
  }
}

/** True when `pid` is a containerd started with the config of `dir` (guards against PID reuse). */
export function isOurDaemon(pid: number, dir: string): boolean {
  const args = cmdline(pid);
  return args.length > 0 && args[0].endsWith("containerd") &&
    args.includes(daemonPaths(dir).config);
}

/** Waits until `ctr version` answers on the daemon's socket (30 s), returning the version. */
export async function waitReady(handle: DaemonHandle): Promise<string> {
  const deadline = Date.now() + READY_DEADLINE_MS;
  let exited = false;
  handle.child?.status.then(() => exited = true, () => exited = true);
  let lastError = "";
  while (Date.now() < deadline) {
    if (exited || (!handle.child && !pidAlive(handle.pid))) {
      throw new Error(
        `containerd (pid ${handle.pid}) exited during startup; log tail:\n` +
          (await logTail(handle.dir)),
      );
    }
    try {
      await Deno.stat(handle.address);
      return await serverVersion(handle.address);
    } catch (e) {
      lastError = e instanceof Error ? e.message : String(e);
    }
    await sleep(100);
  }
  throw new Error(
    `containerd (pid ${handle.pid}) not ready after ${READY_DEADLINE_MS / 1000} s ` +
      `(${lastError}); log tail:\n${await logTail(handle.dir)}`,
  );
}

/** Picks `overlayfs` when its plugin loaded, else `native`. */
export async function pickSnapshotter(address: string): Promise<string> {
  const out = await ctr(address, ["plugins", "ls"]);
  const overlay = out.split("\n").find((l) =>
    /\bio\.containerd\.snapshotter\.v1\s+overlayfs\b/.test(l)
  );
  return overlay && /\bok\s*$/.test(overlay) ? "overlayfs" : "native";
}

/** The facts tests need about a built image. */
export function facts(image: BuiltImage): ImageFacts {
  return {
    name: image.name,
    platform: image.platform,
    manifestDigest: image.manifestDigest,
    manifestSize: image.manifestSize,
    configDigest: image.configDigest,
    configSize: image.configSize,
    layerDigests: image.layerDigests,
    layerSizes: image.layerSizes,
    diffIds: image.diffIds,
  };
}

/** Builds the test images, writes them under `<dir>/images` and imports them with ctr. */
export async function importTestImages(
  address: string,
  dir: string,
  namespace: string,
  snapshotter: string,
): Promise<HarnessInfo["images"]> {
  const built = await buildTestImages();
  const imagesDir = daemonPaths(dir).images;
  await Deno.mkdir(imagesDir, { recursive: true });
  for (
    const [file, image] of [["one-layer", built.oneLayer], [
      "three-layer",
      built.threeLayer,
    ]] as const
  ) {
    const path = `${imagesDir}/${file}.tar`;
    await Deno.writeFile(path, image.archive);
    await ctr(address, [
      "images",
      "import",
      "--platform",
      image.platform,
      "--snapshotter",
      snapshotter,
      path,
    ], { namespace, timeoutMs: 120_000 });
  }
  return { oneLayer: facts(built.oneLayer), threeLayer: facts(built.threeLayer) };
}

/** Parses /proc/self/mountinfo mount points (octal escapes decoded), in mount order. */
export function mountPoints(): string[] {
  const text = Deno.readTextFileSync("/proc/self/mountinfo");
  return text.split("\n").filter((l) => l !== "").map((l) =>
    l.split(" ")[4].replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)))
  );
}

/** Mount points at or under `dir`, deepest (and latest) first. */
export function mountsUnder(dir: string): string[] {
  const all = mountPoints();
  const hits = all.map((m, i) => ({ m, i })).filter(({ m }) =>
    m === dir || m.startsWith(dir + "/")
  );
  hits.sort((a, b) => (b.m.split("/").length - a.m.split("/").length) || (b.i - a.i));
  return hits.map(({ m }) => m);
}

/** Unmounts everything under `dir` (a few passes; lazy unmount as the last resort). */
export async function unmountUnder(dir: string): Promise<void> {
  for (let pass = 0; pass < 5; pass++) {
    const mounts = mountsUnder(dir);
    if (mounts.length === 0) return;
    for (const m of mounts) {
      const res = await run("umount", pass < 3 ? [m] : ["-l", m], 30_000);
      if (res.code !== 0 && pass >= 3) console.error(`harness: umount ${m}: ${res.stderr.trim()}`);
    }
  }
  const left = mountsUnder(dir);
  if (left.length > 0) throw new Error(`still mounted under ${dir}: ${left.join(", ")}`);
}

function procPids(): number[] {
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) if (/^\d+$/.test(e.name)) pids.push(Number(e.name));
  return pids;
}

function parentPid(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

/** PIDs of containerd shims whose command line names `dir` (so they belong to our daemon). */
export function ourShims(dir: string): number[] {
  return procPids().filter((pid) => {
    const args = cmdline(pid);
    return args.length > 0 && /containerd-shim/.test(args[0]) &&
      args.some((a) => a === dir || a.startsWith(dir + "/"));
  });
}

/** Kills leftover shims of our daemon and their direct children (container processes). */
async function killOurShims(dir: string): Promise<number[]> {
  const shims = ourShims(dir);
  if (shims.length === 0) return [];
  const all = procPids();
  for (const shim of shims) {
    for (const pid of all) {
      if (parentPid(pid) === shim) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
    }
    try {
      Deno.kill(shim, "SIGKILL");
    } catch { /* gone */ }
  }
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && shims.some(pidAlive)) await sleep(50);
  return shims;
}

/** Best effort: kill and delete every task and container through ctr before shutdown. */
async function deleteTasks(address: string): Promise<void> {
  let namespaces: string[];
  try {
    namespaces = (await ctr(address, ["namespaces", "ls", "-q"], { timeoutMs: 5_000 }))
      .split("\n").map((s) => s.trim()).filter((s) => s !== "");
  } catch {
    return;
  }
  for (const namespace of namespaces) {
    const o = { namespace, timeoutMs: 10_000 };
    const list = async (what: string) =>
      (await ctr(address, [what, "ls", "-q"], o).catch(() => "")).split("\n").map((s) => s.trim())
        .filter((s) => s !== "");
    for (const id of await list("tasks")) {
      await ctr(address, ["tasks", "delete", "--force", id], o).catch(() => {});
    }
    for (const id of await list("containers")) {
      await ctr(address, ["containers", "delete", id], o).catch(() => {});
    }
  }
}

/**
 * Stops a daemon: deletes remaining tasks via ctr, SIGTERM to its PID, waits up to 10 s, SIGKILL,
 * kills leftover shims that reference its directory, unmounts everything under the directory and
 * removes it. Only the recorded PID (after checking its command line) and those shims are
 * signalled.
 */
export async function stopDaemon(
  handle: DaemonHandle,
  options: { keepDir?: boolean } = {},
): Promise<void> {
  const { dir, pid } = handle;
  let exited = false;
  handle.child?.status.then(() => exited = true, () => exited = true);
  // The command-line check guards against signalling a reused PID.
  const alive = () => !exited && pidAlive(pid) && isOurDaemon(pid, dir);
  if (alive()) {
    await deleteTasks(handle.address);
    try {
      Deno.kill(pid, "SIGTERM");
    } catch { /* already gone */ }
    const deadline = Date.now() + STOP_GRACE_MS;
    while (Date.now() < deadline && alive()) await sleep(50);
    if (alive()) {
      console.error(`harness: containerd pid ${pid} ignored SIGTERM for 10 s; sending SIGKILL`);
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
      await (handle.child?.status ?? sleep(200));
    }
  }
  if (handle.child) await handle.child.status.catch(() => {});
  const killed = await killOurShims(dir);
  if (killed.length > 0) console.error(`harness: killed leftover shims ${killed.join(", ")}`);
  await unmountUnder(dir);
  if (!options.keepDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
}

/** Starts a daemon in `dir` (already created), waits for it and imports the test images. */
export async function launch(
  dir: string,
  detached: boolean,
  options: { netns?: string } = {},
): Promise<{
  handle: DaemonHandle;
  info: HarnessInfo;
}> {
  const handle = await spawnDaemon(dir, detached, options);
  try {
    const version = await waitReady(handle);
    const snapshotter = await pickSnapshotter(handle.address);
    const images = await importTestImages(handle.address, dir, TEST_NAMESPACE, snapshotter);
    const info: HarnessInfo = {
      address: handle.address,
      namespace: TEST_NAMESPACE,
      dir,
      pid: handle.pid,
      version,
      snapshotter,
      runcRoot: daemonPaths(dir).runcRoot,
      images,
    };
    return { handle, info };
  } catch (e) {
    await stopDaemon(handle, { keepDir: true }).catch(() => {});
    throw e;
  }
}

/**
 * Starts one private containerd for a test run (provisioning it first when needed) and imports
 * the test images. Call `stop()` when done.
 */
export async function startHarness(): Promise<Harness> {
  const reason = containerdSkipReason();
  if (reason) throw new Error(`containerd tests cannot run: ${reason}`);
  await provisionIfNeeded();
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "wfe-containerd-" }));
  let launched;
  try {
    launched = await launch(dir, false);
  } catch (e) {
    const tail = await logTail(dir);
    await unmountUnder(dir).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    if (e instanceof Error && !e.message.includes("log tail")) {
      e.message += `\ncontainerd log tail:\n${tail}`;
    }
    throw e;
  }
  const { handle, info } = launched;
  let stopping: Promise<void> | undefined;
  return {
    ...info,
    stop(): Promise<void> {
      stopping ??= stopDaemon(handle);
      return stopping;
    },
  };
}
