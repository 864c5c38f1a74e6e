/**
 * Errors a step ends with: a non-zero exit ({@linkcode StepError}) or a timeout
 * ({@linkcode StepTimeoutError}), each carrying the step's whole result.
 *
 * @module
 */

/** What {@linkcode StepError} and {@linkcode StepTimeoutError} carry. */
export interface StepFailure<R> {
  /** The container's exit code (128 + N when killed by signal N). */
  exitCode: number;
  /** The end of the step's stdout. */
  stdoutTail: string;
  /** The end of the step's stderr. */
  stderrTail: string;
  /** The full result of the step. */
  result: R;
}

/**
 * A step whose container exited with a non-zero code. Carries the exit code,
 * the tails of stdout and stderr (as wfe-containerd's message does) and the
 * full result.
 */
export class StepError<R = unknown> extends Error implements StepFailure<R> {
  /** The container's exit code. */
  readonly exitCode: number;
  /** The end of the step's stdout. */
  readonly stdoutTail: string;
  /** The end of the step's stderr. */
  readonly stderrTail: string;
  /** The full result of the step. */
  readonly result: R;

  /** Creates the error; the message says the exit code and shows the output tails. */
  constructor(failure: StepFailure<R>, message?: string) {
    super(
      message ??
        `container exited with code ${failure.exitCode}\nstdout: ${failure.stdoutTail}\n` +
          `stderr: ${failure.stderrTail}`,
    );
    this.name = "StepError";
    this.exitCode = failure.exitCode;
    this.stdoutTail = failure.stdoutTail;
    this.stderrTail = failure.stderrTail;
    this.result = failure.result;
  }
}

/** A step killed because it ran past its timeout. */
export class StepTimeoutError<R = unknown> extends StepError<R> {
  /** The timeout that expired, in milliseconds. */
  readonly timeoutMs: number;

  /** Creates the error; the message names the timeout. */
  constructor(failure: StepFailure<R>, timeoutMs: number) {
    super(
      failure,
      `container execution timed out after ${timeoutMs} ms (killed, exit code ${failure.exitCode})` +
        `\nstdout: ${failure.stdoutTail}\nstderr: ${failure.stderrTail}`,
    );
    this.name = "StepTimeoutError";
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The step ran, but its output was lost: the capture files were deleted or
 * replaced while it ran (the step was then stopped), or reading them failed
 * (e.g. an `onStdout` callback threw). The exit code is kept.
 */
export class StepOutputError extends Error {
  /** The container's exit code (128 + N when it was stopped by signal N). */
  readonly exitCode: number;
  /** The (removed) container's id. */
  readonly containerId: string;
  /** Whether the step was stopped because its capture files went away. */
  readonly stopped: boolean;

  /** Creates the error; the message names the container, the exit code and the cause. */
  constructor(
    details: { exitCode: number; containerId: string; stopped: boolean; cause: unknown },
  ) {
    const cause = details.cause instanceof Error ? details.cause.message : String(details.cause);
    super(
      details.stopped
        ? `step ${details.containerId} was stopped (exit code ${details.exitCode}): ${cause}`
        : `step ${details.containerId} exited with code ${details.exitCode}, but its output ` +
          `could not be read: ${cause}`,
      { cause: details.cause },
    );
    this.name = "StepOutputError";
    this.exitCode = details.exitCode;
    this.containerId = details.containerId;
    this.stopped = details.stopped;
  }
}
