/**
 * The error a registry request ends with: it names the registry, the
 * repository, what was asked for and the HTTP status.
 *
 * @module
 */

/** What {@linkcode RegistryError} carries. */
export interface RegistryErrorOptions {
  /** The registry host, e.g. `localhost:5000`. */
  registry: string;
  /** The repository, e.g. `library/alpine`. */
  repository: string;
  /** The HTTP status, 0 when no answer came (connection or TLS failure). */
  status: number;
  /** The distribution error code from the body, e.g. `MANIFEST_UNKNOWN`, when there is one. */
  code?: string;
  /** What went wrong, e.g. `manifest unknown: tag '1.2' not found`. */
  details: string;
  /** The underlying failure. */
  cause?: unknown;
}

/**
 * A failed registry request, e.g.
 * `registry localhost:5000, repository team/app: manifest unknown: tag '9' not found (HTTP 404)`.
 */
export class RegistryError extends Error {
  /** The registry host. */
  readonly registry: string;
  /** The repository. */
  readonly repository: string;
  /** The HTTP status, 0 when no answer came. */
  readonly status: number;
  /** The distribution error code, when the registry sent one. */
  readonly code: string | undefined;
  /** What went wrong, without the registry and repository prefix. */
  readonly details: string;

  /** Builds the error and its message from the parts. */
  constructor(options: RegistryErrorOptions) {
    const status = options.status ? ` (HTTP ${options.status})` : "";
    super(
      `registry ${options.registry}, repository ${options.repository}: ${options.details}${status}`,
      { cause: options.cause },
    );
    this.name = "RegistryError";
    this.registry = options.registry;
    this.repository = options.repository;
    this.status = options.status;
    this.code = options.code;
    this.details = options.details;
  }
}
