/**
 * The command line of @wfe/containerd: run workflow steps and services as
 * containers, inspect images, clean up, all over containerd's gRPC API. Each
 * command is a thin layer over the module's public API (mod.ts).
 *
 * ```sh
 * deno run -A cli.ts --help
 * deno run -A cli.ts run --image alpine:3.18 -- echo hello
 * deno install -g -A -c deno.json -n wfe-containerd cli.ts   # then: wfe-containerd --help
 * ```
 *
 * @module
 */

import { Command, CommanderError, Option } from "@commander-js/extra-typings";
import { Cli, CliError, err, errorLine, examples, EXIT_ERROR, out, PROGRAM } from "./cli/common.ts";
import { registerCompletions } from "./cli/completions.ts";
import { registerImages } from "./cli/images.ts";
import { registerRun, registerSpec } from "./cli/run.ts";
import { registerService } from "./cli/service.ts";
import { CLIENT_VERSION, registerSystem } from "./cli/system.ts";

/**
 * Builds the command tree. Actions record their exit code in the returned
 * {@linkcode Cli}; errors propagate to the caller of `parseAsync`.
 *
 * @returns The root command and the invocation state.
 *
 * @example
 * ```ts
 * import { buildProgram } from "./cli.ts";
 *
 * const { program } = buildProgram();
 * console.log(program.commands.map((c) => c.name())); // ["run", "spec", "service", ...]
 * ```
 */
export function buildProgram(): { program: Command<[], Record<string, unknown>>; cli: Cli } {
  const program = new Command(PROGRAM) as unknown as Command<[], Record<string, unknown>>;
  const cli = new Cli(program);
  program
    .description(
      "Run workflow steps and services as containers on containerd, over its gRPC API (no ctr, " +
        "no Docker). From a checkout run it as `deno run -A cli.ts`; `deno install -g -A -c deno.json -n " +
        `${PROGRAM} cli.ts\` installs it as ${PROGRAM}.`,
    )
    .version(CLIENT_VERSION, "-V, --version", "print the client version")
    .option(
      "-a, --address <address>",
      "containerd address: /path.sock, unix:///path or tcp://host:port (default: " +
        "$WFE_CONTAINERD_ADDR, $CONTAINERD_ADDRESS, the system socket, else the daemon of `up`)",
    )
    .option(
      "-n, --namespace <name>",
      "containerd namespace (default: $CONTAINERD_NAMESPACE, else default)",
    )
    .option(
      "--io-dir <dir>",
      "directory for capture files, shared with the daemon (default: $WFE_IO_DIR, else the temp dir)",
    )
    .addOption(new Option("--debug", "print stack traces with errors"))
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({
      writeOut: out,
      writeErr: err,
      // One line per error: commander puts its suggestion on a line of its own.
      outputError: (text, write) =>
        write(text.replace(/\n\(Did you mean (.*)\?\)\n$/, " (did you mean $1?)\n")),
    })
    .exitOverride()
    .showSuggestionAfterError(true)
    .hook("preAction", () => cli.applyIoDir());

  program.commandsGroup("Steps:");
  registerRun(program, cli);
  registerSpec(program, cli);
  program.commandsGroup("Services:");
  registerService(program, cli);
  program.commandsGroup("Images:");
  registerImages(program, cli);
  program.commandsGroup("Daemon:");
  registerSystem(program, cli);
  program.commandsGroup("Shell:");
  registerCompletions(program);
  program.commandsGroup("Help:");
  program.helpCommand("help [command]", "show help for a command");

  program.addHelpText(
    "after",
    examples(
      `eval "$(${PROGRAM} up)"    # a private containerd, for those without one`,
      `${PROGRAM} run --image alpine:3.18 -- echo hello`,
      `${PROGRAM} run -f step.yaml --json`,
      `${PROGRAM} service start web --image busybox --port 8080 -- httpd -f -p 8080`,
      `${PROGRAM} prune --older-than 1h`,
    ) +
      "\nExit status: run passes on the container's exit code; 124 when a step timed out; 125 for\n" +
      `errors of ${PROGRAM} itself. Run '${PROGRAM} help COMMAND' for a command's flags.\n`,
  );
  return { program, cli };
}

/**
 * Runs the command line with `args` (without the program name) and returns
 * the exit code: a `run`'s container exit code, 124 when its step timed out,
 * 125 for errors of the command line itself, 0 otherwise. Errors are printed
 * as one `error: ...` line on stderr (with the stack under `--debug`).
 *
 * @param args The arguments, e.g. `Deno.args`.
 * @returns The process exit code.
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 *
 * Deno.exit(await main(["version"]));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const { program, cli } = buildProgram();
  try {
    await program.parseAsync(args, { from: "user" });
    return cli.exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander has printed help, the version or its own error line.
      const ok = ["commander.helpDisplayed", "commander.help", "commander.version"];
      return ok.includes(e.code) ? 0 : EXIT_ERROR;
    }
    const debug = cli.globals.debug || args.includes("--debug");
    if (debug) {
      let cause: unknown = e;
      for (let depth = 0; cause !== undefined && depth < 5; depth++) {
        err(
          `${depth === 0 ? "" : "caused by: "}${
            cause instanceof Error ? cause.stack : String(cause)
          }\n`,
        );
        cause = cause instanceof Error ? cause.cause : undefined;
      }
    }
    err(`error: ${errorLine(e)}\n`);
    return e instanceof CliError ? e.exitCode : EXIT_ERROR;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
