/**
 * `service start|stop|ls|logs`: long-running containers on the host network
 * next to the steps of a workflow, with readiness checks.
 *
 * @module
 */

import { progressDisplay } from "./progress.ts";
import { registerServiceIo } from "./service_io.ts";
import { addContainerOptions, type ContainerFlags } from "./step_flags.ts";
import { type Command, Option } from "@commander-js/extra-typings";
import {
  type Cli,
  CliError,
  collect,
  durationArg,
  err,
  errorLine,
  examples,
  formatAge,
  interruptible,
  keyValues,
  out,
  portArg,
  positiveInt,
  PROGRAM,
  table,
} from "./common.ts";
import { isNotFound } from "../lib/grpc/errors.ts";
import { parseInput } from "../lib/step/volume.ts";
import { LABELS, MANAGED_BY } from "../lib/labels.ts";
import type { ReadinessCheck, ReadinessOptions } from "../lib/service/readiness.ts";

/** Loaded when a command runs, so that `--help` and other commands do not load it. */
const serviceManager = () => import("../lib/service/manage.ts");

/** Loaded when a command runs, so that `--help` and other commands do not load it. */
const serviceStarter = () => import("../lib/service/start.ts");

const READY_FORMS = "tcp:PORT, http:PORT[/PATH], log:TEXT, log:/REGEX/, exec:COMMAND or none";

/**
 * Splits a command line into words: whitespace separates, '...' and "..." quote, \ escapes.
 *
 * @example
 * ```ts
 * import { splitWords } from "./service.ts";
 *
 * splitWords(`pg_isready -U "the user"`); // ["pg_isready", "-U", "the user"]
 * ```
 */
export function splitWords(text: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === "\\" && quote === '"' && i + 1 < text.length) word += text[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new CliError(`unterminated ${quote} in '${text}'`);
  if (inWord) words.push(word);
  return words;
}

/**
 * Parses `--ready`: `tcp:N`, `http:N/path`, `log:TEXT`, `exec:CMD`, or `none` (false).
 *
 * @example
 * ```ts
 * import { parseReady } from "./service.ts";
 *
 * parseReady("http:8080/health"); // { http: { port: 8080, path: "/health" } }
 * parseReady("exec:pg_isready -U app"); // { exec: ["pg_isready", "-U", "app"] }
 * ```
 */
export function parseReady(text: string): ReadinessCheck | false {
  const bad = (why: string) => new CliError(`--ready '${text}': ${why}; expected ${READY_FORMS}`);
  if (text === "none") return false;
  const colon = text.indexOf(":");
  const kind = colon < 0 ? text : text.slice(0, colon);
  const rest = colon < 0 ? "" : text.slice(colon + 1);
  const port = (s: string): number => {
    if (!/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 65535) throw bad(`'${s}' is not a port`);
    return Number(s);
  };
  switch (kind) {
    case "tcp":
      return { tcp: port(rest) };
    case "http": {
      const slash = rest.indexOf("/");
      return slash < 0
        ? { http: { port: port(rest) } }
        : { http: { port: port(rest.slice(0, slash)), path: rest.slice(slash) } };
    }
    case "log":
      if (rest === "") throw bad("the text is empty");
      return { log: rest };
    case "exec": {
      const argv = splitWords(rest);
      if (argv.length === 0) throw bad("the command is empty");
      return { exec: argv };
    }
    default:
      throw bad(`unknown check '${kind}'`);
  }
}

/** Registers the `service` command group on the program. */
export function registerService(program: Command<[], Record<string, unknown>>, cli: Cli): void {
  const service = program
    .command("service")
    .summary("start, stop, list services and show their logs")
    .description(
      "Services are long-running containers on the host network (a database, a cache, a mock " +
        "server) next to the steps of a workflow. A service's container id is its NAME.",
    )
    .addHelpText(
      "after",
      examples(
        `${PROGRAM} service start web --image busybox --port 8080 --ready http:8080/ -- httpd -f -p 8080`,
        `${PROGRAM} service ls`,
        `${PROGRAM} service logs web`,
        `${PROGRAM} service stop web`,
      ),
    );

  const start = service
    .command("start")
    .summary("start a service and wait until it is ready")
    .description(
      "Start a service container on the host network (as 0:0) and wait until its readiness check " +
        "passes. Without --ready it checks TCP on the first --port. If the service exits or is not " +
        "ready in time, everything is removed and the error says why.",
    )
    .argument("<name>", "service name, also its container id (letters, digits, . _ -)")
    .argument("[command...]", "command and arguments after --: replace the image's Cmd")
    .requiredOption("--image <ref>", "image to run")
    .option("-p, --port <port>", "a port the service listens on (repeatable)", portArg)
    .option("--ready <check>", `readiness check: ${READY_FORMS}`)
    .addOption(
      new Option("--ready-interval <duration>", "time between readiness attempts").argParser(
        durationArg,
      ).default(1000, "1s"),
    )
    .addOption(
      new Option("--ready-timeout <duration>", "give up after this long").argParser(durationArg)
        .default(60_000, "60s"),
    )
    .option(
      "--ready-retries <n>",
      "give up after this many failed attempts (default: no limit)",
      positiveInt,
    )
    .option(
      "-e, --env <KEY=VALUE>",
      "environment variable; KEY alone copies ours (repeatable)",
      collect,
    )
    .option("--entrypoint <program>", "replace the image's Entrypoint")
    .option(
      "-i, --input <SRC:TARGET[:MODE]>",
      "copy a file or directory from here into the container before it starts (repeatable)",
      collect,
    )
    .option("-m, --memory <size>", "memory limit, e.g. 256m")
    .option("--cpu <cores>", "CPU limit in cores, e.g. 0.5");
  addContainerOptions(start)
    .option("--json", "print the started service as JSON")
    .addHelpText(
      "after",
      examples(
        `${PROGRAM} service start db --image postgres:16 -e POSTGRES_PASSWORD=x --port 5432`,
        `${PROGRAM} service start web --image busybox --port 8080 --ready http:8080/health \\`,
        "    -- httpd -f -p 8080",
        `${PROGRAM} service start worker --image busybox --ready 'log:/listening on \\d+/' -- ./worker`,
      ),
    )
    .action(async (name, command, parsed) => {
      const opts = parsed as typeof parsed & ContainerFlags;
      const ready = opts.ready === undefined ? undefined : parseReady(opts.ready);
      const readiness: ReadinessOptions | false = ready === false ? false : {
        check: ready,
        intervalMs: opts.readyInterval,
        timeoutMs: opts.readyTimeout,
        retries: opts.readyRetries ??
          Math.ceil(opts.readyTimeout / Math.max(1, opts.readyInterval)) + 1,
      };
      const env = keyValues(opts.env, "--env", true) ?? {};
      await using client = await cli.connect();
      const pulling = progressDisplay(opts.json ? "quiet" : "plain");
      const interrupt = interruptible("removing the half-started service");
      const handle = await (await serviceStarter()).runService(undefined, name, opts.image, env, {
        client,
        signal: interrupt.signal,
        name,
        entrypoint: opts.entrypoint !== undefined ? [opts.entrypoint] : undefined,
        inputs: opts.input?.map((v) => parseInput(v, "--input", Deno.cwd())),
        args: command.length > 0 ? command : undefined,
        ports: opts.port ?? [],
        readiness,
        memory: opts.memory,
        cpu: opts.cpu,
        labels: keyValues(opts.label, "--label"),
        pull: opts.pull,
        registry: opts.plainHttp ? { plainHttp: true } : undefined,
        onPullProgress: (e) => pulling.onProgress(e),
        platform: opts.platform,
        runtime: opts.runtime,
        snapshotter: opts.snapshotter,
        seccomp: opts.seccomp,
        runcOptions: opts.runcRoot !== undefined ? { root: opts.runcRoot } : undefined,
      }).finally(() => interrupt.done());
      if (opts.json) {
        out(JSON.stringify(handle, null, 2) + "\n");
        return;
      }
      out(
        `started service ${handle.name}: pid ${handle.pid}, image ${handle.image}\n` +
          (handle.endpoints.length > 0 ? `  endpoints: ${handle.endpoints.join(" ")}\n` : "") +
          `  env:       ${Object.entries(handle.env).map(([k, v]) => `${k}=${v}`).join(" ")}\n`,
      );
    });

  service
    .command("stop")
    .summary("stop and remove services")
    .description(
      "Stop services (their image's StopSignal, else SIGTERM; SIGKILL after the grace period) " +
        "and remove their task, container, snapshot, lease and capture files.",
    )
    .argument("<name...>", "service names")
    .addOption(
      new Option("--grace-period <duration>", "time between the stop signal and SIGKILL").argParser(
        durationArg,
      ).default(10_000, "10s"),
    )
    .addHelpText("after", examples(`${PROGRAM} service stop web db --grace-period 2s`))
    .action(async (names, opts) => {
      await using client = await cli.connect();
      for (const name of names) {
        try {
          const record = await client.containers.get({ id: name }).then(
            (r) => r.container,
            (e) => {
              if (isNotFound(e)) return null;
              throw e;
            },
          );
          if (
            record &&
            (record.labels[LABELS.managedBy] !== MANAGED_BY ||
              record.labels[LABELS.kind] !== "service")
          ) {
            throw new CliError(`${name} is not a service started by ${PROGRAM}`);
          }
          const removed = await (await serviceManager()).cleanupService(undefined, name, {
            client,
            gracePeriodMs: opts.gracePeriod,
          });
          if (removed.removed.length === 0) {
            throw new CliError(`no service ${name} in namespace ${client.namespace}`);
          }
          out(`stopped ${name} (removed ${removed.removed.join(", ")})\n`);
        } catch (e) {
          err(`error: ${errorLine(e)}\n`);
          cli.exitCode = 125;
        }
      }
    });

  service
    .command("ls")
    .alias("list")
    .summary("list services")
    .description("List the services started by " + PROGRAM + " in the namespace.")
    .option("-q, --quiet", "print only the names")
    .option("--json", "print JSON")
    .addHelpText("after", examples(`${PROGRAM} service ls`, `${PROGRAM} -n ci service ls --json`))
    .action(async (opts) => {
      await using client = await cli.connect();
      const services = await (await serviceManager()).listServices(undefined, { client });
      services.sort((a, b) => a.containerId.localeCompare(b.containerId));
      if (opts.json) {
        out(JSON.stringify(services, null, 2) + "\n");
      } else if (opts.quiet) {
        out(services.map((s) => `${s.containerId}\n`).join(""));
      } else {
        const now = Date.now();
        out(table(
          ["NAME", "STATUS", "PID", "PORTS", "IMAGE", "CREATED"],
          services.map((s) => {
            const created = Date.parse(s.createdAt);
            return [
              s.containerId,
              s.status,
              s.pid ? String(s.pid) : "-",
              s.ports.join(",") || "-",
              s.image,
              Number.isFinite(created) ? `${formatAge(now - created)} ago` : "-",
            ];
          }),
        ));
      }
    });

  registerServiceIo(service, cli);
}
