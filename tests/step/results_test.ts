/**
 * Results that say what happened: out-of-memory kills, commands that are missing or not
 * executable (exit 127 / 126, as docker reports them), against the harness's containerd.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runStep, type StepResult } from "../../lib/step/run.ts";
import { StepError } from "../../lib/step/errors.ts";
import { assertRejects } from "../asserts.ts";
import { assertNothingLeft, stepConfig } from "../daemon_helpers.ts";
import { containerdTest } from "../harness.ts";

containerdTest(
  "a step killed for going over its memory limit says so: oomKilled, exit 137, the limit in the message",
  async (h) => {
    const err = await assertRejects(
      () =>
        runStep(stepConfig(h, {
          memory: "16m",
          // awk grows a string until the kernel kills it (as PID 1, through exec).
          run: "echo start; exec awk 'BEGIN { s = \"x\"; while (1) s = s s }'",
        })),
      StepError,
      "container killed: out of memory (limit 16 MiB), exit code 137",
    );
    const result = err.result as StepResult;
    assert.equal(result.oomKilled, true);
    assert.equal(result.exitCode, 137);
    assert.equal(result.stdout, "start\n");
    await assertNothingLeft(h, result.containerId);

    // Killed by SIGKILL for another reason (no memory pressure): not an OOM.
    const killed = await assertRejects(
      () => runStep(stepConfig(h, { memory: "64m", run: "sh -c 'kill -KILL $$'; exit $?" })),
      StepError,
      "container exited with code 137",
    );
    assert.equal((killed.result as StepResult).oomKilled, false);

    const fine = await runStep(stepConfig(h, { memory: "64m", run: "echo ok" }));
    assert.equal(fine.oomKilled, false);
  },
);

containerdTest(
  "a missing command exits 127 and a non-executable one 126, each with one clear line; nothing is left",
  async (h) => {
    const lines: string[] = [];
    for (
      const [command, code, line] of [
        [["nosuch-cmd", "x"], 127, "nosuch-cmd: executable file not found in $PATH"],
        [["/no/such/path"], 127, "/no/such/path: no such file or directory"],
        [["/etc/passwd"], 126, "/etc/passwd: permission denied (not an executable file)"],
      ] as const
    ) {
      const err = await assertRejects(
        () => runStep(stepConfig(h, { command: [...command] }), { onStderr: (l) => lines.push(l) }),
        StepError,
        `container could not start its command (exit code ${code}): ${line}`,
      );
      const result = err.result as StepResult;
      assert.equal(result.exitCode, code);
      assert.equal(result.stderr, `${line}\n`);
      assert.equal(result.outputData["step.exit_code"], code);
      await assertNothingLeft(h, result.containerId);
    }
    assert.equal(lines.length, 3);
    // The shell's own "not found" stays the shell's: exit 127 from the running container.
    const shell = await assertRejects(
      () => runStep(stepConfig(h, { run: "nosuch-cmd" })),
      StepError,
      "container exited with code 127",
    );
    assert.match((shell.result as StepResult).stderr, /nosuch-cmd: not found/);
  },
);
