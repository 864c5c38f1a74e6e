/**
 * The step flags shared by `run` and `spec`, and the step they build (with a
 * YAML step file, if one is given, underneath).
 *
 * @module
 */

import { type Command, Option } from "@commander-js/extra-typings";
import {
  type Cli,
  CliError,
  collect,
  durationArg,
  keyValue,
  keyValues,
  positiveInt,
} from "./common.ts";
import { type StepConfig, validateStepConfig } from "../lib/step/config.ts";
import { parseCollect, parseInput, parseVolume } from "../lib/step/volume.ts";

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
  /** `--input` */
  input?: string[];
  /** `--collect` */
  collect?: string[];
  /** `--entrypoint` */
  entrypoint?: string;
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
export function addStepOptions<C extends Command<[string[]], Record<string, unknown>>>(cmd: C): C {
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
    .option(
      "-i, --input <SRC:TARGET[:MODE]>",
      "copy a file or directory from here into the container before it starts (repeatable)",
      collect,
    )
    .option(
      "-c, --collect <PATH:DEST>",
      "after the step (also when it fails), copy what it wrote at PATH to DEST here (repeatable)",
      collect,
    )
    .option(
      "--entrypoint <path>",
      "replace the image's Entrypoint (and drop its Cmd); the command after -- is its arguments",
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
    .optionsGroup("Container:");
  return addContainerOptions(cmd);
}

/** The flags {@linkcode addContainerOptions} adds, as commander parses them. */
export type ContainerFlags = Pick<
  StepFlags,
  "label" | "pull" | "plainHttp" | "platform" | "runtime" | "snapshotter" | "seccomp" | "runcRoot"
>;

/**
 * Adds the image and runtime flags steps and services share: labels, pull
 * policy, plain HTTP, platform, runtime, snapshotter, seccomp, runc root.
 */
export function addContainerOptions<C>(cmd: C): C {
  // Typed loosely: the callers read these flags through ContainerFlags.
  (cmd as unknown as Command<[], Record<string, unknown>>)
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
  const inputs = [
    ...(file.inputs ?? []),
    ...(flags.input ?? []).map((v) => parseInput(v, "--input", Deno.cwd())),
  ];
  const collected = [
    ...(file.collect ?? []),
    ...(flags.collect ?? []).map((v) => parseCollect(v, "--collect", Deno.cwd())),
  ];
  const image = flags.image ?? file.image;
  if (!image) throw new CliError("no image: pass --image IMAGE or set 'image' in the step file");
  const config: StepConfig = {
    ...file,
    image,
    env: Object.keys(env).length > 0 ? env : undefined,
    labels: Object.keys(labels).length > 0 ? labels : undefined,
    volumes: volumes.length > 0 ? volumes : undefined,
    inputs: inputs.length > 0 ? inputs : undefined,
    collect: collected.length > 0 ? collected : undefined,
    containerdAddr: cli.address(file.containerdAddr).address,
    namespace: cli.namespace(file.namespace),
  };
  if (flags.entrypoint !== undefined) {
    if (flags.run !== undefined) throw new CliError("give either --run or --entrypoint, not both");
    config.entrypoint = [flags.entrypoint];
    delete config.run;
  }
  if (flags.run !== undefined) {
    config.run = flags.run;
    delete config.command;
    delete config.entrypoint;
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
