/**
 * The one place where gRPC failures become typed errors.
 *
 * @module
 */

/** gRPC status codes, numbered as gRPC (and containerd's errdefs) number them. */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** A gRPC status code number. */
export type GrpcCode = typeof GrpcCode[keyof typeof GrpcCode];

const CODE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(GrpcCode).map(([k, v]) => [v, k]),
);

/** Returns the name of a gRPC status code, e.g. `codeName(5)` is `"NOT_FOUND"`. */
export function codeName(code: number): string {
  return CODE_NAMES[code] ?? `CODE_${code}`;
}

/** Options of {@linkcode ContainerdError}. */
export interface ContainerdErrorOptions {
  /** The gRPC status code. */
  code: number;
  /** The RPC (e.g. `"Content.Read"`) or client operation (e.g. `"connect"`) that failed. */
  method: string;
  /** The server's message, or a description of the client-side failure. */
  details: string;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * A failed containerd call: the gRPC status `code`, the `method` that failed and
 * the server's message (`details`).
 *
 * @example Telling "not found" apart
 * ```ts
 * import { connect, isNotFound } from "@wfe/containerd";
 *
 * await using client = await connect();
 * try {
 *   await client.images.get({ name: "missing:latest" });
 * } catch (err) {
 *   if (!isNotFound(err)) throw err;
 * }
 * ```
 */
export class ContainerdError extends Error {
  /** The gRPC status code (5 is NOT_FOUND, 6 ALREADY_EXISTS, ...). */
  readonly code: number;
  /** The RPC or operation that failed, e.g. `"Content.Read"`. */
  readonly method: string;
  /** The server's message without the method and code. */
  readonly details: string;

  /** Creates an error; the message reads `<method>: <details> (<CODE_NAME>)`. */
  constructor(options: ContainerdErrorOptions) {
    super(`${options.method}: ${options.details} (${codeName(options.code)})`, {
      cause: options.cause,
    });
    this.name = "ContainerdError";
    this.code = options.code;
    this.method = options.method;
    this.details = options.details;
  }

  /** The name of {@linkcode ContainerdError.code}, e.g. `"NOT_FOUND"`. */
  get codeName(): string {
    return codeName(this.code);
  }
}

interface GrpcLikeError {
  code: number;
  details?: string;
  message?: string;
}

function isGrpcLike(err: unknown): err is GrpcLikeError {
  return typeof err === "object" && err !== null && typeof (err as GrpcLikeError).code === "number";
}

/**
 * Turns whatever a gRPC call threw into a {@linkcode ContainerdError} naming
 * `method`. An abort through `signal` yields the signal's reason instead, so
 * callers see the `AbortError` or `TimeoutError` they asked for.
 */
export function toContainerdError(err: unknown, method: string, signal?: AbortSignal): unknown {
  if (signal?.aborted) return signal.reason;
  if (err instanceof ContainerdError) return err;
  if (isGrpcLike(err)) {
    const details = err.details || err.message || "no details";
    return new ContainerdError({ code: err.code, method, details, cause: err });
  }
  return new ContainerdError({
    code: GrpcCode.UNKNOWN,
    method,
    details: err instanceof Error ? err.message : String(err),
    cause: err,
  });
}

function hasCode(err: unknown, code: number): boolean {
  return err instanceof ContainerdError && err.code === code;
}

/** True when `err` is a {@linkcode ContainerdError} with code NOT_FOUND (5). */
export function isNotFound(err: unknown): boolean {
  return hasCode(err, GrpcCode.NOT_FOUND);
}

/**
 * Runs a lookup (e.g. Content.Info, Snapshots.Stat): true when it answers,
 * false on NOT_FOUND; other failures are thrown.
 */
export async function found(lookup: () => Promise<unknown>): Promise<boolean> {
  try {
    await lookup();
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/** True when `err` is a {@linkcode ContainerdError} with code ALREADY_EXISTS (6). */
export function isAlreadyExists(err: unknown): boolean {
  return hasCode(err, GrpcCode.ALREADY_EXISTS);
}

/** True when `err` is a {@linkcode ContainerdError} with code INVALID_ARGUMENT (3). */
export function isInvalidArgument(err: unknown): boolean {
  return hasCode(err, GrpcCode.INVALID_ARGUMENT);
}

/** True when `err` is a {@linkcode ContainerdError} with code FAILED_PRECONDITION (9). */
export function isFailedPrecondition(err: unknown): boolean {
  return hasCode(err, GrpcCode.FAILED_PRECONDITION);
}

/** True when `err` is a {@linkcode ContainerdError} with code UNAVAILABLE (14). */
export function isUnavailable(err: unknown): boolean {
  return hasCode(err, GrpcCode.UNAVAILABLE);
}

/** True when `err` is a {@linkcode ContainerdError} with code UNIMPLEMENTED (12). */
export function isUnimplemented(err: unknown): boolean {
  return hasCode(err, GrpcCode.UNIMPLEMENTED);
}

/** True when `err` is a {@linkcode ContainerdError} with code DEADLINE_EXCEEDED (4). */
export function isDeadlineExceeded(err: unknown): boolean {
  return hasCode(err, GrpcCode.DEADLINE_EXCEEDED);
}
