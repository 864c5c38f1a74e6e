/**
 * Async helpers on AbortSignal: waiting with a bound, sleeping, racing a
 * deadline, a pooled map and retries. Private to this package.
 *
 * @module
 */

/** The longest delay one `setTimeout` takes: 2^31 - 1 ms (~24.8 days); longer ones fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A timer that {@linkcode longTimeout} started. */
export interface LongTimer {
  /** Stops it; nothing fires afterwards. */
  clear(): void;
}

/**
 * Calls `fn` after `ms` milliseconds, for any finite `ms`: delays beyond
 * {@linkcode MAX_TIMER_MS} are chained from shorter timers (a plain
 * `setTimeout` would fire after ~1 ms instead).
 *
 * @param options `maxChunk`: the longest single timer (for tests); `unref`:
 *   do not keep the process alive for it.
 */
export function longTimeout(
  fn: () => void,
  ms: number,
  options: { maxChunk?: number; unref?: boolean } = {},
): LongTimer {
  const { maxChunk = MAX_TIMER_MS, unref = false } = options;
  if (Number.isNaN(ms)) throw new RangeError("Cannot wait NaN ms");
  let timer: ReturnType<typeof setTimeout> | undefined;
  let cleared = false;
  const due = Date.now() + Math.max(0, ms);
  const arm = (left: number): void => {
    if (left === Infinity) return; // never fires
    timer = setTimeout(() => {
      if (cleared) return;
      const rest = due - Date.now();
      if (left > maxChunk && rest > 0) arm(rest);
      else fn();
    }, Math.min(Math.max(0, left), maxChunk));
    if (unref) Deno.unrefTimer(timer as unknown as number);
  };
  arm(Math.max(0, ms));
  return {
    clear() {
      cleared = true;
      clearTimeout(timer);
    },
  };
}

/** An AbortSignal that aborts with a TimeoutError after `ms` ms (any finite `ms`). */
export function timeoutSignal(ms: number): AbortSignal {
  const controller = new AbortController();
  longTimeout(
    () => controller.abort(new DOMException(`timed out after ${ms} ms`, "TimeoutError")),
    ms,
    { unref: true },
  );
  return controller.signal;
}

/**
 * Waits for `promise` at most `ms` milliseconds.
 *
 * @returns True when it settled (fulfilled or rejected) in time.
 */
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: LongTimer | undefined;
  try {
    return await Promise.race([
      promise.then(() => true, () => true),
      new Promise<boolean>((resolve) => (timer = longTimeout(() => resolve(false), ms))),
    ]);
  } finally {
    timer?.clear();
  }
}

/**
 * Resolves after `ms` milliseconds; rejects with the signal's reason when it
 * is aborted first.
 */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = longTimeout(done, ms);
    function done(): void {
      signal?.removeEventListener("abort", abort);
      resolve();
    }
    function abort(): void {
      timer.clear();
      reject(signal!.reason);
    }
    signal?.addEventListener("abort", abort, { once: true });
  });
}

/** Options of {@linkcode deadline}. */
export interface DeadlineOptions<T> {
  /** Names the awaited operation in the error: `<what>: no answer within <ms> ms`. */
  what?: string;
  /** Releases a value that arrives after the deadline (e.g. closes a late connection). */
  dispose?: (value: T) => void;
}

/**
 * Resolves as `promise` does, or rejects with `Error("[<what>: ]no answer
 * within <ms> ms")` when it has not settled within `ms` milliseconds.
 */
export async function deadline<T>(
  promise: Promise<T>,
  ms: number,
  options: DeadlineOptions<T> = {},
): Promise<T> {
  let timer: LongTimer | undefined;
  let timedOut = false;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = longTimeout(() => {
          timedOut = true;
          const prefix = options.what ? `${options.what}: ` : "";
          reject(new Error(`${prefix}no answer within ${ms} ms`));
        }, ms);
      }),
    ]);
  } finally {
    timer?.clear();
    if (timedOut) promise.then((value) => options.dispose?.(value), () => {});
  }
}

/**
 * Resolves with the first of: `"timeout"` after `timeoutMs` (when given),
 * `"abort"` when `signal` aborts (at once when it already has). Call
 * `cancel()` to release the timer and listener.
 */
export function timeoutOrAbort(
  timeoutMs: number | undefined,
  signal: AbortSignal | undefined,
): { reason: Promise<"timeout" | "abort">; cancel(): void } {
  let timer: LongTimer | undefined;
  let onAbort: (() => void) | undefined;
  const reason = new Promise<"timeout" | "abort">((resolve) => {
    if (timeoutMs !== undefined) timer = longTimeout(() => resolve("timeout"), timeoutMs);
    if (signal) {
      onAbort = () => resolve("abort");
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    }
  });
  return {
    reason,
    cancel() {
      timer?.clear();
      if (onAbort) signal?.removeEventListener("abort", onAbort);
    },
  };
}

/**
 * Runs `fn` over `items` with at most `limit` calls in flight, in order of
 * the items. Rejects with the first failure (calls already running finish).
 */
export async function pooledMap<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return results;
}

/** Options of {@linkcode retry}. */
export interface RetryOptions {
  /**
   * Attempts in all, the first included.
   * @default {3}
   */
  attempts?: number;
  /**
   * Pause before the second attempt, in ms; doubled before each later one.
   * @default {200}
   */
  minDelayMs?: number;
  /**
   * The longest pause, in ms.
   * @default {5000}
   */
  maxDelayMs?: number;
  /** Tells whether a failure is worth another attempt. @default {() => true} */
  retryable?: (err: unknown) => boolean;
  /** Cancels the pauses (and is handed to `fn`). */
  signal?: AbortSignal;
}

/**
 * Calls `fn` until it succeeds, a failure is not retryable, or `attempts`
 * are used up, pausing with exponential backoff in between.
 *
 * @returns What `fn` resolved with.
 * @throws The last failure, or the signal's reason when aborted.
 */
export async function retry<T>(
  fn: (attempt: number, signal?: AbortSignal) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const { attempts = 3, minDelayMs = 200, maxDelayMs = 5000, retryable = () => true, signal } =
    options;
  for (let attempt = 1;; attempt++) {
    signal?.throwIfAborted();
    try {
      return await fn(attempt, signal);
    } catch (err) {
      if (attempt >= attempts || !retryable(err) || signal?.aborted) throw err;
    }
    await delay(Math.min(maxDelayMs, minDelayMs * 2 ** (attempt - 1)), signal);
  }
}
