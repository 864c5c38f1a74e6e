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
  CliError,
  collect,
  durationArg,
  err,
  errorLine,
  examples,
  EXIT_TIMEOUT,
  interruptible,
  keyValue,
  keyValues,
  lineWriter,
  out,
  positiveInt,
  PROGRAM,
} from "./common.ts";
import { newContainerId } from "../lib/runtime/task.ts";
import { type StepConfig, validateStepConfig } from "../lib/step/config.ts";
import { StepError, StepTimeoutError } from "../lib/step/errors.ts";
import { parseVolume } from "../lib/step/volume.ts";
import type { StepResult } from "../lib/step/run.ts";

/** How much of each stream `run` keeps in memory when it streams the output (not --json). */
const STREAMED_TAIL_BYTES = 64 * 1024;

/** Loaded when a command runs, so that `--help` and other commands do not load it. */
const stepRunner = () => import("../lib/step/run.ts");

/** The step flags of `run` and `spec`, as commander parses them. */
export interface StepFlags {
  /** `--plain-http` */
  plainHttp?: boolean;
  /** `--file` */
  file?: string;
  /** `--image` */
  image?: string;
  /** `--run` */
  run?: string;
  /** `--name` */
  name?: string;
  /** `--env` */
  env?: string[];
  /** `--env-file` */
  envFile?: string[];
  /** `--data` */
  data?: string[];
  /** `--volume` */
  volume?: string[];
  /** `--workdir` */
  workdir?: string;
  /** `--user` */
  user?: string;
  /** `--network` */
  network?: "none" | "host";
  /** `--memory` */
  memory?: string;
  /** `--cpu` */
  cpu?: string;
  /** `--timeout` (ms) */
  timeout?: number;
  /** `--label` */
  label?: string[];
  /** `--pull` */
  pull?: "if-not-present" | "always" | "never";
  /** `--platform` */
  platform?: string;
  /** `--runtime` */
  runtime?: string;
  /** `--snapshotter` */
  snapshotter?: string;
  /** `--seccomp` */
  seccomp?: string;
  /** `--runc-root` */
  runcRoot?: string;
  /** `--max-output-bytes` */
  maxOutputBytes?: number;
}

/** Adds the step flags (shared by `run` and `spec`) to a command. */
function addStepOptions<C extends Command<[string[]], Record<string, unknown>>>(cmd: C): C {
  cmd
    .optionsGroup("Step:")
    .option(
      "-f, --file <step.yaml>",
      "read the step from a YAML file (wfe's keys); flags override it",
    )
    .option("--image <ref>", "image to run, e.g. alpine:3.18 (required, here or in the file)")
    .option("--run <script>", "shell command: runs as /bin/sh -c SCRIPT instead of CMD ARGS")
    .option("--name <name>", "step name: output data keys <name>.stdout, ..., and labels")
    .option(
      "-e, --env <KEY=VALUE>",
      "environment variable; KEY alone copies ours (repeatable)",
      collect,
    )
    .option("--env-file <file>", "read KEY=VALUE lines from a file (repeatable)", collect)
    .option(
      "--data <KEY=VALUE>",
      "workflow data: becomes env KEY in upper case (repeatable)",
      collect,
    )
    .option(
      "-v, --volume <SRC:DST[:ro]>",
      "bind mount from the daemon's host (repeatable)",
      collect,
    )
    .option("-w, --workdir <dir>", "working directory (default: the image's, else /)")
    .option(
      "-u, --user <user>",
      "uid[:gid] or name[:group] (default: the image's User, else 65534:65534)",
    )
    .optionsGroup("Network and limits:")
    .addOption(
      new Option("--network <mode>", "none: only lo; host: the host's network").choices(
        ["none", "host"] as const,
      ),
    )
    .option("-m, --memory <size>", "memory limit, e.g. 512m or 1g (no swap on top)")
    .option("--cpu <cores>", "CPU limit in cores, e.g. 1.5")
    .option(
      "--timeout <duration>",
      "kill the step after 30s, 5m, 1h or milliseconds (exit 124)",
      durationArg,
    )
    .option(
      "--max-output-bytes <n>",
      "keep the last N bytes of each stream (default 16 MiB)",
      positiveInt,
    )
    .optionsGroup("Container:")
    .option("-l, --label <KEY=VALUE>", "label on the container (repeatable)", collect)
    .addOption(
      new Option(
        "--pull <policy>",
        "image pull policy: if-not-present pulls a missing image, always asks the registry",
      ).choices(
        ["if-not-present", "never", "always"] as const,
      ),
    )
    .option("--plain-http", "pull from the image's registry over plain HTTP")
    .option("--platform <os/arch>", "image platform, e.g. linux/arm64 (default: this host's)")
    .option("--runtime <name>", "runtime (default: io.containerd.runc.v2)")
    .option("--snapshotter <name>", "snapshotter (default: the namespace's, else overlayfs)")
    .option(
      "--seccomp <profile>",
      "seccomp filter: default (containerd's profile), unconfined, or a JSON profile file",
    )
    .option("--runc-root <dir>", "runc state directory (runc option root)");
  return cmd;
}

function parseEnvFile(path: string): Record<string, string> {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "no such file" : (e as Error).message;
    throw new CliError(`--env-file ${path}: ${why}`);
  }
  const env: Record<string, string> = {};
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
    const [key, value] = keyValue(
      line.replace(/^export\s+/, ""),
      `--env-file ${path}:${i + 1}:`,
      true,
    );
    env[key] = value;
  }
  return env;
}

/**
 * Builds the step from a step file (if any), the flags and the command
 * after `--`; flags win over the file. Checks it before anything connects.
 *
 * @example
 * ```ts
 * import { buildProgram } from "../cli.ts";
 * import { stepFromFlags } from "./run.ts";
 *
 * const { cli } = buildProgram();
 * const step = await stepFromFlags(cli, { image: "alpine:3.18", env: ["A=1"] }, ["echo", "hi"]);
 * step.command; // ["echo", "hi"]
 * ```
 */
export async function stepFromFlags(
  cli: Cli,
  flags: StepFlags,
  command: string[],
): Promise<StepConfig> {
  // The YAML parser loads only for --file (importing it costs ~80 ms).
  const file: Partial<StepConfig> = flags.file
    ? await (await import("../lib/step/file.ts")).readStepFile(flags.file)
    : {};
  if (flags.run !== undefined && command.length > 0) {
    throw new CliError("give either --run SCRIPT or a command after --, not both");
  }
  const env = {
    ...file.env,
    ...Object.assign({}, ...(flags.envFile ?? []).map(parseEnvFile)),
    ...keyValues(flags.env, "--env", true),
  };
  const labels = { ...file.labels, ...keyValues(flags.label, "--label") };
  const volumes = [
    ...(file.volumes ?? []),
    ...(flags.volume ?? []).map((v) => parseVolume(v, "--volume")),
  ];
  const image = flags.image ?? file.image;
  if (!image) throw new CliError("no image: pass --image IMAGE or set 'image' in the step file");
  const config: StepConfig = {
    ...file,
    image,
    env: Object.keys(env).length > 0 ? env : undefined,
    labels: Object.keys(labels).length > 0 ? labels : undefined,
    volumes: volumes.length > 0 ? volumes : undefined,
    containerdAddr: cli.address(file.containerdAddr).address,
    namespace: cli.namespace(file.namespace),
  };
  if (flags.run !== undefined) {
    config.run = flags.run;
    delete config.command;
  } else if (command.length > 0) {
    config.command = command;
    delete config.run;
  }
  const set = <K extends keyof StepConfig>(key: K, value: StepConfig[K] | undefined) => {
    if (value !== undefined) config[key] = value;
  };
  set("stepName", flags.name);
  set("workingDir", flags.workdir);
  set("user", flags.user);
  set("network", flags.network);
  set("memory", flags.memory);
  set("cpu", flags.cpu);
  set("timeoutMs", flags.timeout);
  set("maxOutputBytes", flags.maxOutputBytes);
  set("pull", flags.pull);
  set("platform", flags.platform);
  set("runtime", flags.runtime);
  set("snapshotter", flags.snapshotter);
  set("seccomp", flags.seccomp);
  if (flags.data?.length) config.workflowData = keyValues(flags.data, "--data");
  if (flags.runcRoot !== undefined) config.runcOptions = { root: flags.runcRoot };
  if (flags.timeout === 0) throw new CliError("--timeout must be longer than 0");
  validateStepConfig(config);
  return config;
}

/** What `run --json` prints. */
export interface RunJson {
  /** The container's exit code. */
  exitCode: number;
  /** Whether the step was killed at its timeout. */
  timedOut: boolean;
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
        result = await (await stepRunner()).runStep(keep, {
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
      } finally {
        interrupt.done();
      }
      for (const problem of result.cleanupErrors) err(`warning: cleanup: ${problem.message}\n`);
      if (flags.json) {
        const json: RunJson = {
          exitCode: result.exitCode,
          timedOut,
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
