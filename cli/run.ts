/**
 * `run` and `spec`: run a step in a fresh container, or print the runtime
 * spec it would get. Both take the same step flags and YAML step files.
 *
 * @module
 */

import { progressDisplay } from "./progress.ts";
import { type Command, Option } from "@commander-js/extra-typings";
import {
  type Cli,
  durationArg,
  err,
  errorLine,
  examples,
  EXIT_TIMEOUT,
  formatBytes,
  interruptible,
  lineWriter,
  out,
  PROGRAM,
} from "./common.ts";
import { newContainerId } from "../lib/runtime/task.ts";
import { parseMemory, validateStepConfig } from "../lib/step/config.ts";
import { StepError, StepTimeoutError } from "../lib/step/errors.ts";
import { addStepOptions, type StepFlags, stepFromFlags } from "./step_flags.ts";
import type { StepResult } from "../lib/step/run.ts";
import type { Collected } from "../lib/runtime/collect.ts";

/** How much of each stream `run` keeps in memory when it streams the output (not --json). */
const STREAMED_TAIL_BYTES = 64 * 1024;

/** Loaded when a command runs, so that `--help` and other commands do not load it. */
const stepRunner = () => import("../lib/step/run.ts");

/** What `run --json` prints. */
export interface RunJson {
  /** The container's exit code. */
  exitCode: number;
  /** Whether the step was killed at its timeout. */
  timedOut: boolean;
  /** Whether the kernel killed the step for going over its memory limit. */
  oomKilled: boolean;
  /** What --collect copied out. */
  collected: Collected[];
  /** stdout. */
  stdout: string;
  /** stderr. */
  stderr: string;
  /** `##wfe[output]` values. */
  outputs: Record<string, string>;
  /** wfe's output data. */
  outputData: Record<string, string | number>;
  /** The (removed) container's id. */
  containerId: string;
  /** Wall time in milliseconds. */
  durationMs: number;
}

/** Registers `run` on the program. */
export function registerRun(program: Command<[], Record<string, unknown>>, cli: Cli): void {
  const run = program
    .command("run")
    .summary("run a step: a command in a fresh container, removed afterwards")
    .description(
      "Run a workflow step: a command in a fresh container from an image. Its stdout and stderr " +
        "stream here as they are produced; ##wfe[output key=value] lines become outputs. The " +
        "container, its task, snapshot, lease and capture files are removed on every path. " +
        "Exits with the container's exit code, 124 on timeout, 125 for errors of " + PROGRAM + ".",
    )
    .argument(
      "[command...]",
      "command and arguments after --: replace the image's Cmd (its Entrypoint stays)",
    );
  addStepOptions(run)
    .optionsGroup("Output:")
    .option(
      "--json",
      "instead of streaming the output, print one JSON object at the end (exitCode, stdout, ...)",
    )
    .addOption(
      new Option(
        "--grace-period <duration>",
        "time between SIGTERM and SIGKILL on timeout or Ctrl-C",
      ).argParser(durationArg).default(10_000, "10s"),
    )
    .addHelpText(
      "after",
      examples(
        `${PROGRAM} run --image alpine:3.18 -- echo hello`,
        `${PROGRAM} run --image alpine:3.18 --run 'echo "##wfe[output version=1.2.3]"' --json`,
        `${PROGRAM} run -f step.yaml --env MODE=release --timeout 5m`,
        "",
        "A step file uses wfe's keys:",
        "  image: alpine:3.18",
        "  run: make test",
        "  env: { MODE: release }",
        "  volumes: [/srv/cache:/cache:ro]",
        "  timeout: 5m",
      ),
    )
    .action(async (command, opts) => {
      const flags = opts as unknown as StepFlags & { json?: boolean; gracePeriod: number };
      const config = await stepFromFlags(cli, flags, command);
      const runner = stepRunner(); // loads while the connection opens
      runner.catch(() => {});
      await using client = await cli.connect({
        address: config.containerdAddr,
        namespace: config.namespace,
      });
      const interrupt = interruptible("stopping the step and removing its container");
      let result: StepResult;
      let timedOut = false;
      try {
        const pulling = progressDisplay(flags.json ? "quiet" : "plain");
        // Streamed output is printed as it comes: keep only a short tail in memory (for the
        // error line), unless --json or the step asks for more.
        const keep = flags.json || config.maxOutputBytes !== undefined
          ? config
          : { ...config, maxOutputBytes: STREAMED_TAIL_BYTES };
        result = await (await runner).runStep(keep, {
          client,
          signal: interrupt.signal,
          registry: flags.plainHttp ? { plainHttp: true } : undefined,
          onPullProgress: (e) => pulling.onProgress(e),
          gracePeriodMs: flags.gracePeriod,
          onStdout: flags.json ? undefined : lineWriter("stdout"),
          onStderr: flags.json ? undefined : lineWriter("stderr"),
        });
      } catch (e) {
        if (!(e instanceof StepError)) throw e;
        result = e.result as StepResult;
        timedOut = e instanceof StepTimeoutError;
        if (timedOut && !flags.json) err(`error: ${errorLine(e)}\n`);
        if (result.oomKilled && !flags.json) {
          err(`killed: out of memory (limit ${formatBytes(parseMemory(config.memory!))})\n`);
        }
      } finally {
        interrupt.done();
      }
      for (const problem of result.cleanupErrors) err(`warning: cleanup: ${problem.message}\n`);
      if (!flags.json) {
        for (const c of result.collected) {
          err(
            c.found
              ? `collected ${c.path} to ${c.to} (${c.files.length} file(s))\n`
              : `collect: the step wrote nothing at ${c.path}\n`,
          );
        }
      }
      if (flags.json) {
        const json: RunJson = {
          exitCode: result.exitCode,
          timedOut,
          oomKilled: result.oomKilled,
          collected: result.collected,
          stdout: result.stdout,
          stderr: result.stderr,
          outputs: result.outputs,
          outputData: result.outputData,
          containerId: result.containerId,
          durationMs: Math.round(result.durationMs),
        };
        out(JSON.stringify(json, null, 2) + "\n");
      }
      cli.exitCode = timedOut ? EXIT_TIMEOUT : result.exitCode;
    });
}

/** Registers `spec` on the program. */
export function registerSpec(program: Command<[], Record<string, unknown>>, cli: Cli): void {
  const spec = program
    .command("spec")
    .summary("print the OCI runtime spec that run would use, without running")
    .description(
      "Print the OCI runtime spec (JSON) that `run` would give the container, from the same flags " +
        "or step file. It reads the image from containerd and creates nothing.",
    )
    .argument("[command...]", "command and arguments after --, as for run");
  addStepOptions(spec)
    .addHelpText(
      "after",
      examples(
        `${PROGRAM} spec --image alpine:3.18 --network host -- id`,
        `${PROGRAM} spec -f step.yaml | jq .process.args`,
      ),
    )
    .action(async (command, opts) => {
      const config = await stepFromFlags(cli, opts as unknown as StepFlags, command);
      const step = validateStepConfig(config);
      await using client = await cli.connect({
        address: config.containerdAddr,
        namespace: config.namespace,
      });
      const image = await (await stepRunner()).ensureStepImage(client, step, {
        registry: (opts as { plainHttp?: boolean }).plainHttp ? { plainHttp: true } : undefined,
      });
      const result = await (await stepRunner()).stepSpec(
        client,
        step,
        image,
        newContainerId(step.stepName),
      );
      out(JSON.stringify(result, null, 2) + "\n");
    });
}
