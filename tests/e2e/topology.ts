/**
 * The remote-daemon topology of the e2e suite: containerd on "another host"
 * reached only over TCP through socat, with stdout/stderr capture files in a
 * directory both sides share (WFE_IO_DIR).
 *
 * - Lima (macOS, or anywhere `limactl` exists): the VM from lima/wfe-test.yaml,
 *   socat on guest port 2500 forwarded to 127.0.0.1:2500, /tmp/wfe-io mounted
 *   at the same path in the guest.
 * - Linux without Lima (and CI): a network namespace made here stands in for
 *   the VM: a veth pair with addresses of our own, a private containerd and
 *   socat inside the namespace, and a host directory as the shared IO dir.
 *
 * Every process is tracked and stopped by PID; the namespace and veth pair
 * are deleted by name (they are ours: random names made here).
 *
 * @module
 */

import {
  containerdSkipReason,
  daemonPaths,
  facts,
  type HarnessInfo,
  launch,
  lookPath,
  pidAlive,
  provisionIfNeeded,
  stopDaemon,
} from "../harness.ts";
import { buildTestImages } from "../oci_archive.ts";

/** The socat port, in the VM and in the namespace (lima/wfe-test.yaml forwards it). */
export const SOCAT_PORT = 2500;
/** The shared IO dir of the Lima template (mounted at the same path in the guest). */
export const LIMA_IO_DIR = "/tmp/wfe-io";
/** The Lima instance name. */
export const LIMA_INSTANCE = "wfe-test";

/** What the e2e tests get (JSON in `WFE_E2E`). */
export interface E2eInfo {
  /** `netns` or `lima`. */
  kind: "netns" | "lima";
  /** `tcp://host:port`: the only way the client reaches containerd. */
  address: string;
  /** The remote host's address (services with host network listen there). */
  host: string;
  /** The shared IO dir (same path on both sides). */
  ioDir: string;
  /** Namespace with the test images. */
  namespace: string;
  /** Snapshotter holding the unpacked test images. */
  snapshotter: string;
  /** runc root for containers, when the daemon is private. */
  runcRoot?: string;
  /** The test images. */
  images: HarnessInfo["images"];
  /** containerd's version. */
  version: string;
}

/** A running topology. */
export interface Topology extends E2eInfo {
  /** Stops everything this module started (by PID) and removes what it made. */
  stop(): Promise<void>;
}

async function sh(cmd: string, args: string[], allowFail = false): Promise<string> {
  const out = await new Deno.Command(lookPath(cmd) ?? cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success && !allowFail) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (exit ${out.code}): ` +
        new TextDecoder().decode(out.stderr).trim(),
    );
  }
  return text;
}

async function waitForTcp(hostname: string, port: number, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (true) {
    try {
      (await Deno.connect({ hostname, port })).close();
      return;
    } catch (err) {
      if (Date.now() > until) {
        throw new Error(`nothing answers on ${hostname}:${port} after ${deadlineMs} ms: ${err}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Why the netns topology cannot run here, if it cannot. */
export function netnsSkipReason(): string | undefined {
  return containerdSkipReason();
}

/** Starts the network-namespace topology (Linux, root). */
export async function startNetnsTopology(): Promise<Topology> {
  const reason = netnsSkipReason();
  if (reason) throw new Error(`the e2e topology cannot run here: ${reason}`);
  await provisionIfNeeded();
  if (!lookPath("ip")) throw new Error("ip (iproute2) is not installed");
  const tag = crypto.randomUUID().replaceAll("-", "").slice(0, 6);
  const ns = `wfe-e2e-${tag}`;
  const vethHost = `wfeh${tag}`;
  const vethNs = `wfen${tag}`;
  const octet = 1 + (parseInt(tag.slice(0, 2), 16) % 250);
  const hostIp = `10.231.${octet}.1`;
  const remoteIp = `10.231.${octet}.2`;

  const undo: (() => Promise<unknown>)[] = [];
  const stopAll = async (): Promise<void> => {
    for (const fn of undo.reverse()) await fn().catch((e) => console.error(`e2e: teardown: ${e}`));
    undo.length = 0;
  };
  try {
    await sh("ip", ["netns", "add", ns]);
    undo.push(() => sh("ip", ["netns", "del", ns], true));
    await sh("ip", ["link", "add", vethHost, "type", "veth", "peer", "name", vethNs]);
    undo.push(() => sh("ip", ["link", "del", vethHost], true));
    await sh("ip", ["link", "set", vethNs, "netns", ns]);
    await sh("ip", ["addr", "add", `${hostIp}/30`, "dev", vethHost]);
    await sh("ip", ["link", "set", vethHost, "up"]);
    await sh("ip", ["netns", "exec", ns, "ip", "addr", "add", `${remoteIp}/30`, "dev", vethNs]);
    await sh("ip", ["netns", "exec", ns, "ip", "link", "set", vethNs, "up"]);
    await sh("ip", ["netns", "exec", ns, "ip", "link", "set", "lo", "up"]);

    const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "wfe-e2e-containerd-" }));
    const { handle, info } = await launch(dir, false, { netns: ns });
    undo.push(() => stopDaemon(handle));

    const socat = new Deno.Command(lookPath("nsenter") ?? "nsenter", {
      args: [
        `--net=/run/netns/${ns}`,
        lookPath("socat") ?? "socat",
        `TCP4-LISTEN:${SOCAT_PORT},bind=${remoteIp},fork,reuseaddr`,
        `UNIX-CONNECT:${daemonPaths(dir).address}`,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    undo.push(async () => {
      if (pidAlive(socat.pid)) socat.kill("SIGTERM");
      await socat.status;
    });
    await waitForTcp(remoteIp, SOCAT_PORT, 10_000);

    const ioDir = await Deno.makeTempDir({ prefix: "wfe-e2e-io-" });
    await Deno.chmod(ioDir, 0o1777); // shared like /tmp: sticky, or capture dirs are refused
    undo.push(() => Deno.remove(ioDir, { recursive: true }));

    return {
      kind: "netns",
      address: `tcp://${remoteIp}:${SOCAT_PORT}`,
      host: remoteIp,
      ioDir,
      namespace: info.namespace,
      snapshotter: info.snapshotter,
      runcRoot: info.runcRoot,
      images: info.images,
      version: info.version,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** Starts (or reuses) the Lima VM of lima/wfe-test.yaml and imports the test images into it. */
export async function startLimaTopology(): Promise<Topology> {
  const limactl = lookPath("limactl")!;
  const template = new URL("../../lima/wfe-test.yaml", import.meta.url).pathname;
  const list = await sh(limactl, ["list", "--format", "{{.Name}} {{.Status}}"], true);
  const line = list.split("\n").find((l) => l.startsWith(`${LIMA_INSTANCE} `));
  await Deno.mkdir(LIMA_IO_DIR, { recursive: true });
  await Deno.chmod(LIMA_IO_DIR, 0o1777); // sticky, or capture dirs are refused
  if (!line) {
    await sh(limactl, ["start", `--name=${LIMA_INSTANCE}`, "--tty=false", template]);
  } else if (!line.endsWith("Running")) {
    await sh(limactl, ["start", "--tty=false", LIMA_INSTANCE]);
  }
  await waitForTcp("127.0.0.1", SOCAT_PORT, 60_000);
  const namespace = "wfe-test";
  const built = await buildTestImages();
  const images = {} as HarnessInfo["images"];
  for (
    const [key, image] of Object.entries(built) as [
      keyof HarnessInfo["images"],
      typeof built.oneLayer,
    ][]
  ) {
    const file = `${LIMA_IO_DIR}/${key}.tar`;
    await Deno.writeFile(file, image.archive);
    await sh(limactl, [
      "shell",
      LIMA_INSTANCE,
      "sudo",
      "ctr",
      "-n",
      namespace,
      "images",
      "import",
      "--platform",
      image.platform,
      file,
    ]);
    await Deno.remove(file);
    images[key] = facts(image);
  }
  const version = (await sh(limactl, ["shell", LIMA_INSTANCE, "containerd", "--version"])).trim();
  return {
    kind: "lima",
    address: `tcp://127.0.0.1:${SOCAT_PORT}`,
    host: "127.0.0.1",
    ioDir: LIMA_IO_DIR,
    namespace,
    snapshotter: "overlayfs",
    images,
    version,
    // The VM is the user's; it stays up for the next run (`limactl stop wfe-test` stops it).
    stop: () => Promise.resolve(),
  };
}

/** Lima when `limactl` exists, else the network namespace. */
export function startTopology(): Promise<Topology> {
  return lookPath("limactl") ? startLimaTopology() : startNetnsTopology();
}
