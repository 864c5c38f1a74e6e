import assert from "node:assert/strict";
import {
  deadline,
  delay,
  longTimeout,
  MAX_TIMER_MS,
  pooledMap,
  retry,
  timeoutOrAbort,
  within,
} from "../../lib/_util/async.ts";
import { LruCache } from "../../lib/_util/cache.ts";
import { assertRejects } from "../asserts.ts";

Deno.test("within() tells whether a promise settled in time", async () => {
  assert.equal(await within(Promise.resolve(1), 50), true);
  assert.equal(await within(Promise.reject(new Error("x")), 50), true);
  assert.equal(await within(new Promise(() => {}), 10), false);
});

Deno.test("delay() waits, and rejects with the abort reason", async () => {
  const started = performance.now();
  await delay(20);
  assert.ok(performance.now() - started >= 15);
  const controller = new AbortController();
  const pending = delay(10_000, controller.signal);
  controller.abort(new Error("stop now"));
  await assertRejects(() => pending, Error, "stop now");
  await assertRejects(
    () => delay(1, AbortSignal.abort(new RangeError("early"))),
    RangeError,
    "early",
  );
});

Deno.test("deadline() passes the value through or names what did not answer", async () => {
  assert.equal(await deadline(Promise.resolve(7), 50), 7);
  await assertRejects(
    () => deadline(new Promise(() => {}), 10, { what: "connect" }),
    Error,
    "connect: no answer within 10 ms",
  );
  let disposed = 0;
  const late = new Promise<number>((resolve) => setTimeout(() => resolve(5), 30));
  await assertRejects(
    () => deadline(late, 5, { dispose: (v) => (disposed = v) }),
    Error,
    "no answer",
  );
  await late;
  await delay(1);
  assert.equal(disposed, 5, "a value arriving after the deadline is disposed");
});

Deno.test("timeoutOrAbort() resolves with timeout or abort, whichever comes first", async () => {
  const t = timeoutOrAbort(5, undefined);
  assert.equal(await t.reason, "timeout");
  t.cancel();
  const controller = new AbortController();
  const a = timeoutOrAbort(10_000, controller.signal);
  controller.abort();
  assert.equal(await a.reason, "abort");
  a.cancel();
  const b = timeoutOrAbort(undefined, AbortSignal.abort());
  assert.equal(await b.reason, "abort");
  b.cancel();
});

Deno.test("pooledMap() keeps order and never runs more than the limit at once", async () => {
  let running = 0;
  let peak = 0;
  const out = await pooledMap([5, 1, 4, 2, 3], 2, async (n, i) => {
    running++;
    peak = Math.max(peak, running);
    await delay(n);
    running--;
    return `${i}:${n * 10}`;
  });
  assert.deepEqual(out, ["0:50", "1:10", "2:40", "3:20", "4:30"]);
  assert.equal(peak, 2);
  await assertRejects(
    () => pooledMap([1, 2], 2, (n) => n === 2 ? Promise.reject(new TypeError("bad 2")) : delay(1)),
    TypeError,
    "bad 2",
  );
});

Deno.test("retry() retries what is retryable, with backoff, up to the attempts", async () => {
  let calls = 0;
  const value = await retry(async (attempt) => {
    calls++;
    await delay(1);
    if (attempt < 3) throw new Error(`try ${attempt}`);
    return "done";
  }, { attempts: 3, minDelayMs: 1 });
  assert.equal(value, "done");
  assert.equal(calls, 3);
  calls = 0;
  await assertRejects(
    () =>
      retry(() => (calls++, Promise.reject(new RangeError("fatal"))), {
        retryable: (e) => !(e instanceof RangeError),
        minDelayMs: 1,
      }),
    RangeError,
    "fatal",
  );
  assert.equal(calls, 1, "a failure that is not retryable is not retried");
  calls = 0;
  await assertRejects(
    () =>
      retry(() => (calls++, Promise.reject(new Error("always"))), { attempts: 2, minDelayMs: 1 }),
    Error,
    "always",
  );
  assert.equal(calls, 2);
});

Deno.test("LruCache forgets the least recently used beyond its entry and byte limits", () => {
  const cache = new LruCache<string, string>({
    maxEntries: 2,
    maxBytes: 10,
    sizeOf: (v) => v.length,
  });
  cache.set("a", "aaa");
  cache.set("b", "bbb");
  assert.deepEqual(cache.get("a"), { value: "aaa" }); // a is now the most recent
  cache.set("c", "ccc");
  assert.equal(cache.get("b"), undefined, "b was the least recently used");
  assert.equal(cache.size, 2);
  assert.equal(cache.bytes, 6);
  cache.set("big", "x".repeat(11));
  assert.equal(cache.get("big"), undefined, "a value above maxBytes is not kept");
  cache.set("d", "dddddddd");
  assert.equal(cache.bytes <= 10, true);
  assert.deepEqual(cache.get("d"), { value: "dddddddd" });
  cache.clear();
  assert.equal(cache.size, 0);
  assert.equal(cache.bytes, 0);
  const withUndefined = new LruCache<string, string | undefined>({
    maxEntries: 4,
    maxBytes: 4,
    sizeOf: (v) => v?.length ?? 0,
  });
  withUndefined.set("missing", undefined);
  assert.deepEqual(withUndefined.get("missing"), { value: undefined }, "undefined is a value");
});

Deno.test("longTimeout() chains timers for delays beyond one timer's limit and fires once, on time", async () => {
  const started = performance.now();
  let fired = 0;
  await new Promise<void>((resolve) => {
    longTimeout(
      () => {
        fired++;
        resolve();
      },
      35,
      { maxChunk: 10 },
    );
  });
  assert.ok(performance.now() - started >= 34, `fired after ${performance.now() - started} ms`);
  await delay(30);
  assert.equal(fired, 1);
  // A cleared chain never fires.
  const timer = longTimeout(() => fired++, 25, { maxChunk: 10 });
  await delay(12);
  timer.clear();
  await delay(30);
  assert.equal(fired, 1);
});

Deno.test("delay(), within(), deadline() and timeoutOrAbort() do not fire early for delays above 2^31-1 ms", async () => {
  const huge = MAX_TIMER_MS + 5; // a plain setTimeout fires this after ~1 ms
  const stop = new AbortController();
  const slept = delay(huge, stop.signal);
  const raced = timeoutOrAbort(25 * 24 * 3600 * 1000, stop.signal);
  let settle!: (value: string) => void;
  const late = new Promise<string>((resolve) => (settle = resolve));
  const inTime = within(late, huge);
  const bounded = deadline(late, huge);
  const first = await Promise.race([
    slept.then(() => "delay", () => "delay rejected"),
    raced.reason,
    inTime.then(() => "within"),
    bounded.then(() => "deadline", () => "deadline rejected"),
    new Promise((r) => setTimeout(() => r("nothing fired"), 50)),
  ]);
  assert.equal(first, "nothing fired");
  stop.abort(new Error("done"));
  assert.equal(await raced.reason, "abort");
  await assert.rejects(slept, /done/);
  raced.cancel();
  settle("late"); // within() and deadline() settle and release their timers
  assert.equal(await inTime, true);
  assert.equal(await bounded, "late");
});
