/**
 * The error a service that did not become ready ends with.
 *
 * @module
 */

/** What {@linkcode ServiceError} carries. */
export interface ServiceFailure {
  /** The service container's id. */
  containerId: string;
  /** The exit code, when the service's task exited before it was ready. */
  exitCode?: number;
  /** The kernel killed it for going over its memory limit (watched when it has one). */
  oomKilled?: boolean;
  /** The readiness check that failed, e.g. `tcp 127.0.0.1:5432`. */
  check?: string;
  /** The check's last error. */
  lastError?: string;
  /** The end of the service's stdout. */
  stdoutTail: string;
  /** The end of the service's stderr. */
  stderrTail: string;
}

/**
 * A service that exited before it was ready, or whose readiness check did
 * not pass in time. Everything it created has been removed.
 */
export class ServiceError extends Error implements ServiceFailure {
  /** The service container's id. */
  readonly containerId: string;
  /** The exit code, when the task exited before it was ready. */
  readonly exitCode?: number;
  /** The kernel killed it for going over its memory limit. */
  readonly oomKilled: boolean;
  /** The readiness check that failed. */
  readonly check?: string;
  /** The check's last error. */
  readonly lastError?: string;
  /** The end of the service's stdout. */
  readonly stdoutTail: string;
  /** The end of the service's stderr. */
  readonly stderrTail: string;

  /** Creates the error from what failed. */
  constructor(message: string, failure: ServiceFailure) {
    super(`${message}\nstdout: ${failure.stdoutTail}\nstderr: ${failure.stderrTail}`);
    this.name = "ServiceError";
    this.containerId = failure.containerId;
    this.exitCode = failure.exitCode;
    this.oomKilled = failure.oomKilled ?? false;
    this.check = failure.check;
    this.lastError = failure.lastError;
    this.stdoutTail = failure.stdoutTail;
    this.stderrTail = failure.stderrTail;
  }
}

/**
 * A host-network service's declared port is already taken on this host, so
 * the service was not started (it would fail to bind, or a readiness check
 * would reach the other listener).
 */
export class PortInUseError extends Error {
  /** The port. */
  readonly port: number;
  /** The service's container id. */
  readonly containerId: string;

  /** Creates the error for a port and service. */
  constructor(port: number, containerId: string) {
    super(
      `Cannot start service ${containerId}: port ${port} is already in use on this host by ` +
        "another process (the service shares the host's network)",
    );
    this.name = "PortInUseError";
    this.port = port;
    this.containerId = containerId;
  }
}
