/**
 * `service logs` (with `--follow`) and `service exec`: a running service's
 * output and commands run inside it.
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import {
  type Cli,
  CliError,
  collect,
  durationArg,
  err,
  examples,
  EXIT_TIMEOUT,
  interruptible,
  keyValues,
  lineWriter,
  out,
  positiveInt,
  PROGRAM,
} from "./common.ts";

/** Registers `service logs` and `service exec` on the `service` command. */
export function registerServiceIo(
  service: Command<[], Record<string, unknown>>,
  cli: Cli,
): void {
  service
    .command("logs")
    .summary("print a service's output (--follow: as it comes)")
    .description(
      "Print what a service wrote: its stdout to stdout, its stderr to stderr. With --follow, " +
        "keep printing new lines until the service stops or Ctrl-C. The capture files must be " +
        "reachable here (the same machine, or WFE_IO_DIR on a shared directory).",
    )
    .argument("<name>", "service name")
    .option("--tail <lines>", "only the last N lines of each stream", positiveInt)
    .option("-f, --follow", "keep printing new lines until the service stops or Ctrl-C")
    .addHelpText(
      "after",
      examples(
        `${PROGRAM} service logs web`,
        `${PROGRAM} service logs db --tail 20`,
        `${PROGRAM} service logs web --follow --tail 0`,
      ),
    )
    .action(async (name, opts) => {
      await using client = await cli.connect();
      if (opts.follow) {
        const interrupt = interruptible("stopped following");
        try {
          await (await import("../lib/service/logs.ts")).followServiceLogs(undefined, name, {
            client,
            tail: opts.tail,
            onStdout: lineWriter("stdout"),
            onStderr: lineWriter("stderr"),
            signal: interrupt.signal,
          });
          // Ctrl-C ends following as a shell's `tail -f` ends: 130 (143 for SIGTERM).
          const sig = interrupt.received();
          if (sig) cli.exitCode = sig === "SIGINT" ? 130 : 143;
        } finally {
          interrupt.done();
        }
        return;
      }
      const manager = await import("../lib/service/manage.ts");
      const logs = await manager.serviceLogs(undefined, name, { client });
      const tail = (text: string): string => {
        if (opts.tail === undefined || text === "") return text;
        const lines = text.endsWith("\n") ? text.slice(0, -1).split("\n") : text.split("\n");
        return opts.tail === 0 ? "" : lines.slice(-opts.tail).join("\n") + "\n";
      };
      out(tail(logs.stdout));
      err(tail(logs.stderr));
    });

  service
    .command("exec")
    .summary("run a command inside a running service")
    .description(
      "Run a command inside a running service's container (another process of its task), with " +
        "the service's environment, user and working directory unless told otherwise. Its stdout " +
        "and stderr stream here; exits with its exit code (127: not found, 126: not executable).",
    )
    .argument("<name>", "service name")
    .argument("<command...>", "command and arguments, after --")
    .option("-e, --env <KEY=VALUE>", "environment variable (repeatable)", collect)
    .option("-u, --user <user>", "uid[:gid] or name[:group] (default: the service's user)")
    .option("-w, --workdir <dir>", "working directory (default: the service's)")
    .option("--timeout <duration>", "kill the command after 30s, 5m, ... (exit 124)", durationArg)
    .addHelpText(
      "after",
      examples(
        `${PROGRAM} service exec db -- pg_isready -U postgres`,
        `${PROGRAM} service exec web --user 1000 -- sh -c 'ls -l /www'`,
      ),
    )
    .action(async (name, command, opts) => {
      await using client = await cli.connect();
      const interrupt = interruptible("stopping the command");
      try {
        const result = await (await import("../lib/service/exec.ts")).execInService(
          undefined,
          name,
          command,
          {
            client,
            env: keyValues(opts.env, "--env", true),
            user: opts.user,
            cwd: opts.workdir,
            timeoutMs: opts.timeout,
            signal: interrupt.signal,
            onStdout: lineWriter("stdout"),
            onStderr: lineWriter("stderr"),
            maxOutputBytes: 64 * 1024,
          },
        );
        if (result.timedOut) err(`error: the command timed out after ${opts.timeout} ms\n`);
        cli.exitCode = result.timedOut ? EXIT_TIMEOUT : result.exitCode;
      } finally {
        interrupt.done();
      }
    });

  service
    .command("cp")
    .summary("copy what a running service wrote out of its container")
    .description(
      "Copy a file or directory out of a service's container to DEST here (which must not " +
        "exist): what the service created or changed at PATH since it started, read through " +
        "containerd's differ and content store (works with a remote daemon). Files of the image " +
        "the service left alone are not copied.",
    )
    .argument("<name:path>", "service name and absolute path in its container")
    .argument("<dest>", "where the copy goes (must not exist)")
    .addHelpText("after", examples(`${PROGRAM} service cp db:/var/log/db ./db-logs`))
    .action(async (source, dest) => {
      const i = source.indexOf(":");
      if (i <= 0) throw new CliError(`expected NAME:PATH, got '${source}'`);
      await using client = await cli.connect();
      const copied = await (await import("../lib/service/copy.ts")).copyFromService(
        undefined,
        source.slice(0, i),
        source.slice(i + 1),
        dest,
        { client },
      );
      if (!copied.found) throw new CliError(`the service wrote nothing at ${copied.path}`);
      err(`copied ${copied.path} to ${copied.to} (${copied.files.length} file(s))\n`);
    });
}
