/**
 * A client for the e2e test "inputs and collect from a directory the daemon cannot see": run
 * inside a private mount namespace where `dir` is a tmpfs of its own, it makes a source tree
 * there, runs one step on the remote daemon with it as input and collects into it, and prints
 * what it saw as JSON. argv: the topology facts (JSON), dir.
 *
 * @module
 */

import { runStep } from "../../lib/step/run.ts";
import type { E2eInfo } from "./topology.ts";
import { remoteStep } from "./e2e.ts";

const [info, dir] = Deno.args;
const e: E2eInfo = JSON.parse(info);
await Deno.mkdir(`${dir}/src/deep`, { recursive: true });
await Deno.writeTextFile(`${dir}/src/deep/only-here.txt`, "written in a private mount namespace\n");
const result = await runStep(remoteStep(e, {
  run: "cat /in/deep/only-here.txt; mkdir /tmp/o && echo made remotely > /tmp/o/made.txt",
  inputs: [{ source: `${dir}/src`, target: "/in" }],
  collect: [{ path: "/tmp/o", to: `${dir}/out` }],
}));
console.log(JSON.stringify({
  stdout: result.stdout,
  containerId: result.containerId,
  files: result.collected[0].files,
  made: await Deno.readTextFile(`${dir}/out/made.txt`),
}));
