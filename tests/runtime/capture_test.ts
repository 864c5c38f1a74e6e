/**
 * Capture files without a daemon: the tests write to the files as containerd's
 * shim does (an existing file opened O_WRONLY|O_APPEND, never created).
 */

import assert from "node:assert/strict";
import { assertRejects } from "../asserts.ts";
import { withTempDir } from "../daemon_helpers.ts";
import process from "node:process";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { type Capture, createCapture, IO_DIR_ENV, ioBaseDir } from "../../lib/runtime/capture.ts";

const encoder = new TextEncoder();

/** Runs `fn` with a fresh temp directory, removed afterwards. */
function withIoTestDir(fn: (dir: string) => Promise<void>): Promise<void> {
  return withTempDir("wfe-io-test-", fn);
}

/** Runs `fn` with WFE_IO_DIR set to `value` (or unset), restoring it afterwards. */
async function withIoDirEnv(value: string | undefined, fn: () => Promise<void>): Promise<void> {
  const saved = Deno.env.get(IO_DIR_ENV);
  if (value === undefined) Deno.env.delete(IO_DIR_ENV);
  else Deno.env.set(IO_DIR_ENV, value);
  try {
    await fn();
  } finally {
    if (saved === undefined) Deno.env.delete(IO_DIR_ENV);
    else Deno.env.set(IO_DIR_ENV, saved);
  }
}

/** Runs `fn` under another umask, restoring it afterwards. */
async function withUmask(mask: number, fn: () => Promise<void>): Promise<void> {
  const saved = process.umask(mask);
  try {
    await fn();
  } finally {
    process.umask(saved);
  }
}

/** Appends to an existing file the way the shim does: O_WRONLY|O_APPEND, no O_CREAT. */
async function shimWrite(path: string, data: string | Uint8Array): Promise<void> {
  using file = await Deno.open(path, { write: true, append: true });
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}

async function mode(path: string): Promise<number> {
  return (await Deno.stat(path)).mode! & 0o777;
}

/** Waits until `condition` holds, checking every 5 ms. */
async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** `<base>/wfe-io-<id>.<16 hex>`, as a RegExp. */
function captureDirPattern(base: string, id: string): RegExp {
  const esc = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`^${esc(join(base, `wfe-io-${id}`))}\\.[0-9a-f]{16}$`);
}

async function assertGone(path: string): Promise<void> {
  await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
}

// ── creation ─────────────────────────────────────────────────────────────────

Deno.test("createCapture() makes a 0700 dir with empty 0600 files in a local dir, whatever the umask", async () => {
  await withIoTestDir(async (base) => {
    for (const umask of [0o022, 0o077, 0o000]) {
      await withUmask(umask, async () => {
        const id = `local-${umask}`;
        await using capture = await createCapture(id, { ioDir: base, shared: false });
        assert.match(capture.dir, captureDirPattern(base, id));
        assert.equal(capture.stdoutPath, join(capture.dir, "stdout"));
        assert.equal(capture.stderrPath, join(capture.dir, "stderr"));
        assert.equal(capture.shared, false);
        assert.equal(await mode(capture.dir), 0o700);
        for (const path of [capture.stdoutPath, capture.stderrPath]) {
          const info = await Deno.stat(path);
          assert.ok(info.isFile, `${path} is a regular file`);
          assert.equal(info.size, 0);
          assert.equal(info.mode! & 0o777, 0o600);
        }
        assert.deepEqual(
          (await Array.fromAsync(Deno.readDir(capture.dir))).map((e) => e.name)
            .sort(),
          ["stderr", "stdout"],
        );
      });
    }
  });
});

Deno.test("createCapture() keeps 0700/0600 under a shared WFE_IO_DIR; WFE_IO_PERMISSIVE=1 opts in to sticky 01777/0666", async () => {
  await withIoTestDir(async (base) => {
    await withIoDirEnv(base, async () => {
      assert.equal(ioBaseDir(), base);
      for (const umask of [0o022, 0o077]) {
        await withUmask(umask, async () => {
          await using capture = await createCapture(`env-${umask}`);
          assert.match(capture.dir, captureDirPattern(base, `env-${umask}`));
          assert.equal(capture.shared, false);
          assert.equal(await mode(capture.dir), 0o700);
          assert.equal(await mode(capture.stdoutPath), 0o600);
          assert.equal(await mode(capture.stderrPath), 0o600);
        });
      }
      Deno.env.set("WFE_IO_PERMISSIVE", "1");
      try {
        await withUmask(0o022, async () => {
          await using open = await createCapture("env-permissive");
          assert.equal(open.shared, true);
          assert.equal((await Deno.stat(open.dir)).mode! & 0o7777, 0o1777);
          assert.equal(await mode(open.stdoutPath), 0o666);
          assert.equal(Deno.umask(), 0o022, "the umask is restored");
        });
        // An explicit shared: false wins over the variable.
        await using local = await createCapture("env-local", { shared: false });
        assert.equal(local.shared, false);
        assert.equal(await mode(local.dir), 0o700);
      } finally {
        Deno.env.delete("WFE_IO_PERMISSIVE");
      }
    });
  });
});

Deno.test("createCapture() refuses an IO dir any user may write without the sticky bit", async () => {
  await withIoTestDir(async (base) => {
    await Deno.chmod(base, 0o777);
    await assertRejects(
      () => createCapture("unsafe-base", { ioDir: base }),
      TypeError,
      `Cannot use IO directory '${base}': any user may write to it and it has no sticky bit`,
    );
    await Deno.chmod(base, 0o1777); // like /tmp: accepted
    await using capture = await createCapture("sticky-base", { ioDir: base });
    assert.equal(await mode(capture.dir), 0o700);
  });
});

Deno.test("a capture notices when its files are replaced through their paths or deleted", async () => {
  await withIoTestDir(async (base) => {
    const secret = join(base, "secret");
    await Deno.writeTextFile(secret, "not the step's output\n", { mode: 0o600 });
    await using capture = await createCapture("swapped", { ioDir: base });
    assert.equal(await capture.check(), undefined);
    await Deno.remove(capture.stdoutPath);
    await Deno.symlink(secret, capture.stdoutPath);
    const err = await assertRejects(
      () => capture.read(),
      Error,
      `the capture file ${capture.stdoutPath} was replaced: it is no longer the file created for the step`,
    );
    assert.ok(!err.message.includes("not the step's output"));
    assert.match(String(await capture.check()), /was deleted \(with the capture directory/);
    await assertRejects(() => capture.tail("stdout", 100), Error, "was replaced");
  });
});

Deno.test("createCapture() with ioDir and shared: true makes 0777/0666", async () => {
  await withIoTestDir(async (base) => {
    await withIoDirEnv(undefined, async () => {
      await withUmask(0o077, async () => {
        await using capture = await createCapture("explicit-shared", { ioDir: base, shared: true });
        assert.equal(capture.shared, true);
        assert.equal((await Deno.stat(capture.dir)).mode! & 0o7777, 0o1777);
        assert.equal(await mode(capture.stdoutPath), 0o666);
        assert.equal(await mode(capture.stderrPath), 0o666);
      });
      // Without WFE_IO_DIR, an explicit ioDir is local by default.
      await using local = await createCapture("explicit-local", { ioDir: base });
      assert.equal(local.shared, false);
      assert.equal(await mode(local.dir), 0o700);
    });
  });
});

Deno.test("ioBaseDir() is the system temp dir when WFE_IO_DIR is unset or empty", async () => {
  await withIoDirEnv(undefined, () => {
    assert.equal(ioBaseDir(), tmpdir());
    return Promise.resolve();
  });
  await withIoDirEnv("", () => {
    assert.equal(ioBaseDir(), tmpdir());
    return Promise.resolve();
  });
});

Deno.test("createCapture() defaults to a local capture in the system temp dir", async () => {
  await withIoDirEnv(undefined, async () => {
    const id = `default-${crypto.randomUUID()}`;
    await using capture = await createCapture(id);
    assert.match(capture.dir, captureDirPattern(tmpdir(), id));
    assert.equal(capture.shared, false);
    assert.equal(await mode(capture.dir), 0o700);
  });
});

Deno.test("createCapture() rejects a container ID that is not a containerd identifier", async () => {
  await withIoTestDir(async (base) => {
    const bad = ["", "-a", "a-", "a..b", "a/b", "../x", "a b", "é", ".", "a_-b", "x".repeat(77)];
    for (const id of bad) {
      await assertRejects(() => createCapture(id, { ioDir: base }), TypeError, `'${id}'`);
    }
    assert.deepEqual(await Array.fromAsync(Deno.readDir(base)), []);
    for (const id of ["a", "A.b_c-d", "x".repeat(76), "wfe-0f1e2d3c"]) {
      const capture = await createCapture(id, { ioDir: base });
      await capture.remove();
    }
  });
});

Deno.test("createCapture() rejects bad maxOutputBytes, pollIntervalMs and ioDir", async () => {
  await withIoTestDir(async (base) => {
    for (const maxOutputBytes of [-1, 1.5, NaN]) {
      await assert.rejects(createCapture("x", { ioDir: base, maxOutputBytes }), RangeError);
    }
    for (const pollIntervalMs of [0, -5, NaN, Infinity]) {
      await assert.rejects(createCapture("x", { ioDir: base, pollIntervalMs }), RangeError);
    }
    await assert.rejects(createCapture("x", { ioDir: "" }), TypeError);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(base)), []);
  });
});

Deno.test("createCapture() never reuses a directory: each capture gets its own unguessable one", async () => {
  await withIoTestDir(async (base) => {
    await using first = await createCapture("twice", { ioDir: base });
    await shimWrite(first.stdoutPath, "first step\n");
    await using second = await createCapture("twice", { ioDir: base });
    assert.notEqual(second.dir, first.dir);
    assert.equal(await Deno.readTextFile(second.stdoutPath), "");
    // The first capture is untouched.
    assert.equal(await Deno.readTextFile(first.stdoutPath), "first step\n");
    // A directory planted at the predictable name (a service's id is its name) changes nothing.
    const planted = join(base, "wfe-io-svc-web");
    await Deno.mkdir(planted);
    await Deno.symlink("/etc/passwd", join(planted, "stdout"));
    await using svc = await createCapture("svc-web", { ioDir: base });
    assert.notEqual(svc.dir, planted);
    assert.match(svc.dir, captureDirPattern(base, "svc-web"));
  });
});

Deno.test("createCapture() fails with NotFound when the IO directory does not exist", async () => {
  await withIoTestDir(async (base) => {
    const missing = join(base, "not-mounted");
    await assert.rejects(
      createCapture("x", { ioDir: missing, shared: true }),
      (err: unknown) => err instanceof Deno.errors.NotFound && err.message.includes(missing),
    );
    await assertGone(missing);
  });
});

Deno.test("remove() deletes the directory, is idempotent, and await using calls it", async () => {
  await withIoTestDir(async (base) => {
    const capture = await createCapture("removed", { ioDir: base });
    await shimWrite(capture.stdoutPath, "data\n");
    await capture.remove();
    await assertGone(capture.dir);
    await capture.remove();
    await capture[Symbol.asyncDispose]();
    assert.throws(() => capture.startTailing(), Error);

    let dir: string;
    {
      await using scoped = await createCapture("scoped", { ioDir: base });
      dir = scoped.dir;
      assert.ok((await Deno.stat(dir)).isDirectory);
    }
    await assertGone(dir);
  });
});

Deno.test("createCapture() makes a relative ioDir absolute (the daemon gets the paths as they are)", async () => {
  await withIoTestDir(async (base) => {
    const rel = relative(Deno.cwd(), base);
    assert.ok(!rel.startsWith("/"));
    await using capture = await createCapture("relative", { ioDir: rel });
    assert.match(capture.dir, captureDirPattern(base, "relative"));
    assert.equal(capture.stdoutPath, join(capture.dir, "stdout"));
  });
});

// ── tailing ──────────────────────────────────────────────────────────────────

Deno.test("tailing delivers lines in order, a line split across two writes, and CRLF lines", async () => {
  await withIoTestDir(async (base) => {
    const out: string[] = [];
    const err: string[] = [];
    await using capture = await createCapture("tail", {
      ioDir: base,
      pollIntervalMs: 10,
      onStdout: (line) => out.push(line),
      onStderr: (line) => err.push(line),
    });
    capture.startTailing();
    capture.startTailing(); // no second timer
    await shimWrite(capture.stdoutPath, "one\ntw");
    await shimWrite(capture.stderrPath, "warning: a\r\n");
    await waitFor(() => out.length === 1 && err.length === 1, "the first lines");
    assert.deepEqual(out, ["one"]); // "tw" waits for its line break
    await shimWrite(capture.stdoutPath, "o\r\nthree\n\nfour é😀\n");
    await shimWrite(capture.stderrPath, "warning: b\n");
    await waitFor(() => out.length === 5 && err.length === 2, "the other lines");
    await capture.stopTailing();
    assert.deepEqual(out, ["one", "two", "three", "", "four é😀"]);
    assert.deepEqual(err, ["warning: a", "warning: b"]);
  });
});

Deno.test("stopTailing() reads what is left and delivers a final partial line", async () => {
  await withIoTestDir(async (base) => {
    const out: string[] = [];
    const err: string[] = [];
    await using capture = await createCapture("partial", {
      ioDir: base,
      pollIntervalMs: 60_000, // no poll happens: stopTailing alone must read
      onStdout: (line) => out.push(line),
      onStderr: (line) => err.push(line),
    });
    capture.startTailing();
    await shimWrite(capture.stdoutPath, "a\nb\r\nlast without newline\r");
    await shimWrite(capture.stderrPath, "only partial");
    await capture.stopTailing();
    assert.deepEqual(out, ["a", "b", "last without newline"]);
    assert.deepEqual(err, ["only partial"]);
    await capture.stopTailing(); // idempotent
    assert.equal(out.length, 3);
  });
});

Deno.test("tailing decodes UTF-8 split across writes and replaces invalid bytes", async () => {
  await withIoTestDir(async (base) => {
    const out: string[] = [];
    await using capture = await createCapture("utf8", {
      ioDir: base,
      pollIntervalMs: 5,
      onStdout: (line) => out.push(line),
    });
    capture.startTailing();
    const emoji = encoder.encode("😀");
    await shimWrite(capture.stdoutPath, emoji.subarray(0, 2));
    await new Promise((resolve) => setTimeout(resolve, 30)); // a poll sees half the emoji
    await shimWrite(capture.stdoutPath, emoji.subarray(2));
    await shimWrite(capture.stdoutPath, Uint8Array.from([0x0a, 0xff, 0xfe, 0x41, 0x0a, 0xc3]));
    await capture.stopTailing();
    assert.deepEqual(out, ["😀", "\ufffd\ufffdA", "\ufffd"]);
  });
});

Deno.test("stopTailing() rethrows the first callback error after delivering every line", async () => {
  await withIoTestDir(async (base) => {
    const seen: string[] = [];
    await using capture = await createCapture("throws", {
      ioDir: base,
      pollIntervalMs: 5,
      onStdout: (line) => {
        seen.push(line);
        throw new Error(`bad line ${line}`);
      },
    });
    capture.startTailing();
    await shimWrite(capture.stdoutPath, "1\n2\n3");
    await assert.rejects(capture.stopTailing(), { message: "bad line 1" });
    assert.deepEqual(seen, ["1", "2", "3"]);
  });
});

Deno.test("tailing delivers a very long line without a break in 1 Mi-character pieces", async () => {
  await withIoTestDir(async (base) => {
    const out: string[] = [];
    await using capture = await createCapture("long-line", {
      ioDir: base,
      onStdout: (line) => out.push(line),
    });
    capture.startTailing();
    await shimWrite(capture.stdoutPath, "x".repeat(1024 * 1024 + 10) + "\nnext\n");
    await capture.stopTailing();
    assert.deepEqual(out.map((line) => line.length), [1024 * 1024, 10, 4]);
  });
});

Deno.test("stopTailing() reports a file that vanished while tailing", async () => {
  await withIoTestDir(async (base) => {
    const out: string[] = [];
    await using capture = await createCapture("vanished", {
      ioDir: base,
      pollIntervalMs: 5,
      onStdout: (line) => out.push(line),
    });
    capture.startTailing();
    await shimWrite(capture.stdoutPath, "before\n");
    await waitFor(() => out.length === 1, "the first line");
    await Deno.remove(capture.stdoutPath);
    await assert.rejects(capture.stopTailing(), Deno.errors.NotFound);
    assert.deepEqual(out, ["before"]);
  });
});

Deno.test("remove() while tailing stops the timer", async () => {
  await withIoTestDir(async (base) => {
    const capture = await createCapture("busy", {
      ioDir: base,
      pollIntervalMs: 1,
      onStdout: () => {},
    });
    capture.startTailing();
    await shimWrite(capture.stdoutPath, "x\n");
    await new Promise((resolve) => setTimeout(resolve, 20));
    await capture.remove();
    await assertGone(capture.dir);
  });
});

// ── reading ──────────────────────────────────────────────────────────────────

Deno.test("read() keeps the tail of each stream, sets the flags, and counts all bytes", async () => {
  await withIoTestDir(async (base) => {
    await using capture = await createCapture("trunc", { ioDir: base, maxOutputBytes: 10 });
    await shimWrite(capture.stdoutPath, "0123456789abcdefghij");
    await shimWrite(capture.stderrPath, "ééééé!"); // 11 bytes: the tail starts inside an "é"
    const result = await capture.read();
    assert.equal(result.stdout, "abcdefghij");
    assert.equal(result.stdoutBytes, 20);
    assert.equal(result.stdoutTruncated, true);
    assert.equal(result.stderr, "éééé!"); // 9 bytes: the split "é" is dropped
    assert.equal(result.stderrBytes, 11);
    assert.equal(result.stderrTruncated, true);
    assert.equal(Object.keys(result.outputs).length, 0);
  });
});

Deno.test("read() cuts the kept tail at a UTF-8 boundary wherever it starts, across read chunks", async () => {
  await withIoTestDir(async (base) => {
    const bytes = encoder.encode("😀".repeat(150_000) + "end"); // 600 003 bytes, several chunks
    const reference = (max: number): string => {
      let start = bytes.length - max;
      for (let i = 0; i < 3 && (bytes[start] & 0xc0) === 0x80; i++) start++;
      return new TextDecoder().decode(bytes.subarray(start));
    };
    // Starts just before, at and after the 256 KiB read boundaries, and inside one chunk.
    const starts = [
      1,
      2,
      3,
      262_141,
      262_142,
      262_143,
      262_144,
      262_145,
      262_146,
      524_287,
      600_000,
    ];
    let n = 0;
    for (const start of starts) {
      const max = bytes.length - start;
      await using capture = await createCapture(`cut-${n++}`, { ioDir: base, maxOutputBytes: max });
      await shimWrite(capture.stdoutPath, bytes);
      const result = await capture.read();
      assert.equal(result.stdoutTruncated, true);
      assert.equal(result.stdoutBytes, bytes.length);
      assert.ok(encoder.encode(result.stdout).length <= max);
      assert.ok(result.stdout === reference(max), `kept tail from byte ${start}`);
      assert.ok(!result.stdout.includes("\ufffd"), `no replacement character from byte ${start}`);
    }
  });
});

Deno.test("read() does not flag output of exactly maxOutputBytes as truncated", async () => {
  await withIoTestDir(async (base) => {
    await using capture = await createCapture("exact", { ioDir: base, maxOutputBytes: 4 });
    await shimWrite(capture.stdoutPath, "abcd");
    const result = await capture.read();
    assert.equal(result.stdout, "abcd");
    assert.equal(result.stdoutTruncated, false);
    assert.equal(result.stderr, "");
    assert.equal(result.stderrBytes, 0);
    assert.equal(result.stderrTruncated, false);
  });
});

Deno.test("read() parses outputs from the whole stdout file, even far beyond maxOutputBytes", async () => {
  await withIoTestDir(async (base) => {
    await using capture = await createCapture("outputs", { ioDir: base, maxOutputBytes: 1024 });
    await shimWrite(capture.stdoutPath, "##wfe[output early=first]\r\n");
    const filler = "filler line that is not an output\n".repeat(40_000); // ~1.3 MiB
    await shimWrite(capture.stdoutPath, filler);
    await shimWrite(capture.stdoutPath, "##wfe[output late=x=y]\n##wfe[output early=second]\nend");
    const result = await capture.read();
    assert.equal(result.stdoutTruncated, true);
    assert.ok(result.stdout.length <= 1024);
    assert.ok(result.stdout.endsWith("##wfe[output early=second]\nend"));
    assert.equal(
      result.stdoutBytes,
      encoder.encode("##wfe[output early=first]\r\n").length + filler.length +
        encoder.encode("##wfe[output late=x=y]\n##wfe[output early=second]\nend").length,
    );
    assert.equal(Object.getPrototypeOf(result.outputs), null);
    assert.deepEqual({ ...result.outputs }, { early: "second", late: "x=y" });
  });
});

Deno.test("read() returns 5 MiB of output intact when under the cap", async () => {
  await withIoTestDir(async (base) => {
    await using capture = await createCapture("big", { ioDir: base });
    // Multi-byte characters at every offset, so chunk boundaries fall inside them.
    const unit = "line é 😀 ünïcödé ";
    const lines: string[] = [];
    let size = 0;
    for (let i = 0; size < 5 * 1024 * 1024; i++) {
      const line = `${i} ${unit.repeat(i % 7)}\n`;
      lines.push(line);
      size += encoder.encode(line).length;
    }
    const text = lines.join("");
    const bytes = encoder.encode(text);
    assert.ok(bytes.length >= 5 * 1024 * 1024);
    for (let at = 0; at < bytes.length; at += 1_000_003) {
      await shimWrite(capture.stdoutPath, bytes.subarray(at, at + 1_000_003));
    }
    await shimWrite(capture.stderrPath, bytes);
    const result = await capture.read();
    assert.equal(result.stdoutBytes, bytes.length);
    assert.equal(result.stdoutTruncated, false);
    assert.ok(result.stdout === text, "stdout differs");
    assert.equal(result.stderrBytes, bytes.length);
    assert.ok(result.stderr === text, "stderr differs");
  });
});

Deno.test("read() and tail() replace invalid UTF-8 instead of throwing", async () => {
  await withIoTestDir(async (base) => {
    await using capture = await createCapture("binary", { ioDir: base, maxOutputBytes: 6 });
    await shimWrite(capture.stdoutPath, Uint8Array.from([0x61, 0xff, 0xc3, 0x28, 0x0a]));
    await shimWrite(
      capture.stderrPath,
      Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x62, 0xe2]),
    );
    const result = await capture.read();
    assert.equal(result.stdout, "a\ufffd\ufffd(\n");
    assert.equal(result.stdoutTruncated, false);
    // Truncated to 6 bytes; at most 3 leading continuation bytes are skipped.
    assert.equal(result.stderr, "\ufffdb\ufffd");
    assert.equal(result.stderrTruncated, true);
    assert.equal(await capture.tail("stdout", 3), "\ufffd(\n");
    assert.equal(await capture.tail("stderr", 100), "\ufffd".repeat(5) + "b\ufffd");
  });
});

Deno.test("tail() reads only the end of a stream, from a UTF-8 boundary", async () => {
  await withIoTestDir(async (base) => {
    await using capture = await createCapture("tail-end", { ioDir: base });
    await shimWrite(capture.stderrPath, "x".repeat(100_000) + "error: é failed\n");
    assert.equal(await capture.tail("stderr", 17), "error: é failed\n"); // 17 bytes
    assert.equal(await capture.tail("stderr", 9), " failed\n"); // starts inside "é"
    assert.equal(await capture.tail("stderr", 0), "");
    assert.equal(await capture.tail("stdout", 10), "");
    await shimWrite(capture.stdoutPath, "short");
    assert.equal(await capture.tail("stdout", 1000), "short");
    await assert.rejects(capture.tail("stdin" as "stdout", 10), TypeError);
    await assert.rejects(capture.tail("stdout", -1), RangeError);
    await assert.rejects(capture.tail("stdout", 0.5), RangeError);
  });
});

Deno.test("read() with maxOutputBytes 0 keeps no text but still counts bytes and parses outputs", async () => {
  await withIoTestDir(async (base) => {
    const capture: Capture = await createCapture("zero", { ioDir: base, maxOutputBytes: 0 });
    try {
      await shimWrite(capture.stdoutPath, "abc\n##wfe[output a=1]\n");
      const result = await capture.read();
      assert.equal(result.stdout, "");
      assert.equal(result.stdoutBytes, 22);
      assert.equal(result.stdoutTruncated, true);
      assert.deepEqual({ ...result.outputs }, { a: "1" });
    } finally {
      await capture.remove();
    }
  });
});
