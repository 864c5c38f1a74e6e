/**
 * `version`, `info`, `prune`, `up` and `down`: the daemon, what we left on
 * it, and the local containerd of the test harness.
 *
 * @module
 */

import { type Command, Option } from "@commander-js/extra-typings";
import denoJson from "../deno.json" with { type: "json" };
import {
  type Cli,
  CliError,
  durationArg,
  err,
  examples,
  formatAge,
  out,
  PROGRAM,
} from "./common.ts";
import type { PruneReport } from "../lib/prune.ts";
import { ioBaseDir } from "../lib/runtime/capture.ts";
import { defaultSnapshotter } from "../lib/runtime/task.ts";

/** Loaded when a command runs, so that `--help` and other commands do not load it. */
const pruner = () => import("../lib/prune.ts");

/** The client's version, from deno.json. */
export const CLIENT_VERSION: string = denoJson.version;

function ago(ms: number | null): string {
  return ms === null ? "age unknown" : `${formatAge(ms)} old`;
}

/**
 * Formats a prune report as lines for people: what was (or would be) removed, what was kept
 * and why, and a summary.
 *
 * @example
 * ```ts
 * import { connect, prune } from "../mod.ts";
 * import { formatPruneReport } from "./system.ts";
 *
 * await using client = await connect();
 * console.log(formatPruneReport(await prune(client, { dryRun: true })));
 * ```
 */
export function formatPruneReport(report: PruneReport): string {
  const verb = report.dryRun ? "would remove" : "removed";
  const lines: string[] = [];
  for (const c of report.containers) {
    const what = [c.kind, c.name].filter(Boolean).join(" ");
    const parts = report.dryRun ? "" : `: ${c.removed.join(", ") || "nothing"}`;
    lines.push(
      `${verb} container ${c.id} (${what ? `${what}, ` : ""}${c.status}, ${ago(c.ageMs)})${parts}`,
    );
  }
  for (const l of report.leases) lines.push(`${verb} lease ${l.id} (${ago(l.ageMs)})`);
  for (const s of report.snapshots) {
    lines.push(`${verb} snapshot ${s.snapshotter}/${s.key} (${ago(s.ageMs)})`);
  }
  for (const d of report.captureDirs) lines.push(`${verb} capture dir ${d.path} (${ago(d.ageMs)})`);
  for (const k of report.kept) {
    const why = k.reason === "service"
      ? `a service (stop it with \`service stop ${k.id}\`, or prune with --services)`
      : k.reason;
    lines.push(`kept ${k.what} ${k.id}: ${why}`);
  }
  const n = (count: number, noun: string) => `${count} ${noun}${count === 1 ? "" : "s"}`;
  const counts = [
    n(report.containers.length, "container"),
    n(report.leases.length, "lease"),
    n(report.snapshots.length, "snapshot"),
    n(report.captureDirs.length, "capture dir"),
  ].join(", ");
  lines.push(
    report.dryRun
      ? `dry run: would remove ${counts} in namespace ${report.namespace}; nothing was removed`
      : `removed ${counts} in namespace ${report.namespace}`,
  );
  return lines.join("\n") + "\n";
}

/** The harness's command line (tests/harness_cli.ts), which only a source checkout has. */
function harnessScript(): string {
  const url = new URL("../tests/harness_cli.ts", import.meta.url);
  if (url.protocol !== "file:") {
    throw new CliError(
      "up and down need a source checkout of @wfe/containerd: they run its test harness " +
        "(tests/harness_cli.ts)",
    );
  }
  return decodeURIComponent(url.pathname);
}

/**
 * Runs `deno run -A tests/harness_cli.ts <command>` (in its own process, so
 * the published module never imports test code); stderr passes through.
 */
async function runHarness(command: "up" | "down"): Promise<string> {
  const script = harnessScript();
  try {
    Deno.statSync(script);
  } catch {
    throw new CliError(`${command} needs the test harness, and ${script} does not exist`);
  }
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, command],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const output = await child.output();
  if (!output.success) throw new CliError(`${command} failed (exit ${output.code})`);
  return new TextDecoder().decode(output.stdout);
}

/** Registers `version`, `info`, `prune`, `up` and `down` on the program. */
export function registerSystem(program: Command<[], Record<string, unknown>>, cli: Cli): void {
  program
    .command("version")
    .summary("print the client and server versions")
    .description("Print the versions of this client (and Deno) and of the containerd it talks to.")
    .addHelpText(
      "after",
      examples(`${PROGRAM} version`, `${PROGRAM} --address tcp://127.0.0.1:2500 version`),
    )
    .action(async () => {
      out(`Client:\n  Version:  ${CLIENT_VERSION}\n  Deno:     ${Deno.version.deno}\n`);
      await using client = await cli.connect();
      const { version, revision } = client.serverVersion;
      out(
        `Server:\n  Address:  ${cli.address().address}\n  Version:  ${version}\n` +
          `  Revision: ${revision}\n`,
      );
    });

  program
    .command("info")
    .summary("print the address, namespace, server and usable snapshotters")
    .description(
      "Print what this client uses and what the daemon offers: address, namespace, server version, " +
        "the snapshotters that loaded (and the namespace's default), the namespaces and the IO dir.",
    )
    .option("--json", "print JSON")
    .addHelpText("after", examples(`${PROGRAM} info`, `${PROGRAM} -n wfe-test info --json`))
    .action(async (opts) => {
      const choice = cli.address();
      await using client = await cli.connect();
      const [{ plugins }, { uuid }, { namespaces }, snapshotter] = await Promise.all([
        client.introspection.plugins({ filters: ["type==io.containerd.snapshotter.v1"] }),
        client.introspection.server({}),
        client.namespaces.list({}),
        defaultSnapshotter(client),
      ]);
      const info = {
        address: choice.address,
        addressSource: choice.source,
        namespace: client.namespace,
        serverVersion: client.serverVersion.version,
        serverRevision: client.serverVersion.revision,
        serverUuid: uuid,
        snapshotters: plugins.filter((p) => !p.initErr).map((p) => p.id).sort(),
        unusableSnapshotters: plugins.filter((p) => p.initErr).map((p) => p.id).sort(),
        defaultSnapshotter: snapshotter,
        namespaces: namespaces.map((n) => n.name).sort(),
        ioDir: ioBaseDir(),
        clientVersion: CLIENT_VERSION,
      };
      if (opts.json) {
        out(JSON.stringify(info, null, 2) + "\n");
        return;
      }
      out(
        [
          `Address:       ${info.address} (${info.addressSource})`,
          `Namespace:     ${info.namespace}`,
          `Server:        containerd ${info.serverVersion} (revision ${
            info.serverRevision || "-"
          })`,
          `Server UUID:   ${info.serverUuid || "-"}`,
          `Snapshotters:  ${
            info.snapshotters.join(", ") || "-"
          } (default: ${info.defaultSnapshotter})`,
          ...(info.unusableSnapshotters.length > 0
            ? [`Not loaded:    ${info.unusableSnapshotters.join(", ")}`]
            : []),
          `Namespaces:    ${info.namespaces.join(", ") || "-"}`,
          `IO dir:        ${info.ioDir}`,
          `Client:        ${CLIENT_VERSION} (Deno ${Deno.version.deno})`,
        ].join("\n") + "\n",
      );
    });

  program
    .command("prune")
    .summary("remove leftovers of killed runs: containers, tasks, snapshots, leases, capture dirs")
    .description(
      "Remove what " + PROGRAM + " created and a killed process left behind, found by the label " +
        "wfe.containerd/managed-by: containers with their tasks (stopped first), snapshots and " +
        "leases whose container is gone, and wfe-io-* capture dirs in the IO dir whose container and " +
        "lease are gone. Services are kept unless --services. Use --older-than to spare runs that " +
        "are in progress, and --dry-run to see what would go.",
    )
    .option(
      "--older-than <duration>",
      "only what was created at least this long ago, e.g. 1h",
      durationArg,
    )
    .option("--dry-run", "list what would be removed; remove nothing")
    .option("--services", "also remove services")
    .addOption(
      new Option("--grace-period <duration>", "time between SIGTERM and SIGKILL for running tasks")
        .argParser(durationArg).default(10_000, "10s"),
    )
    .option("--json", "print the report as JSON")
    .addHelpText(
      "after",
      examples(
        `${PROGRAM} prune --dry-run`,
        `${PROGRAM} prune --older-than 1h`,
        `${PROGRAM} -n ci prune --services --grace-period 2s`,
      ),
    )
    .action(async (opts) => {
      await using client = await cli.connect();
      const report = await (await pruner()).prune(client, {
        olderThanMs: opts.olderThan,
        dryRun: opts.dryRun ?? false,
        includeServices: opts.services ?? false,
        gracePeriodMs: opts.gracePeriod,
      });
      out(opts.json ? JSON.stringify(report, null, 2) + "\n" : formatPruneReport(report));
      for (const problem of report.errors) err(`error: ${problem}\n`);
      if (report.errors.length > 0) cli.exitCode = 125;
    });

  program
    .command("up")
    .summary("start the local containerd of the test harness; print the address to use")
    .description(
      "Start (or reuse) a private containerd for development, as `deno task up` does: its own " +
        "config, root, state and socket under $WFE_DEV_DIR (default /tmp/wfe-containerd-dev), with " +
        "the test images in namespace wfe-test. Needs root on Linux, and installs containerd, runc " +
        "and busybox with apt when missing. Prints shell exports for the address and namespace.",
    )
    .addHelpText(
      "after",
      examples(`eval "$(${PROGRAM} up)"    # then: ${PROGRAM} images ls`, `${PROGRAM} down`),
    )
    .action(async () => {
      const exports = await runHarness("up");
      const address = /^export WFE_CONTAINERD_ADDR=(.*)$/m.exec(exports)?.[1];
      const namespace = /^export CONTAINERD_NAMESPACE=(.*)$/m.exec(exports)?.[1];
      if (!address || !namespace) throw new CliError(`up printed no address: ${exports.trim()}`);
      out(`export WFE_CONTAINERD_ADDR=${address}\nexport CONTAINERD_NAMESPACE=${namespace}\n`);
      err(
        `${PROGRAM}: containerd at ${address}, namespace ${namespace}; use it with: ` +
          `eval "$(${PROGRAM} up)"; stop it with \`${PROGRAM} down\`\n`,
      );
    });

  program
    .command("down")
    .summary("stop the local containerd that up started")
    .description(
      "Stop the development containerd that `up` started (by the PID in its state file, after " +
        "removing its tasks), unmount and remove its directory. Other daemons are never touched.",
    )
    .addHelpText("after", examples(`${PROGRAM} down`))
    .action(async () => {
      out(await runHarness("down"));
    });
}
