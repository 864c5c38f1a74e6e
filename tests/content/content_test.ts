import assert from "node:assert/strict";
import { sha256Digest } from "../../lib/content/digest.ts";
import { withLease } from "../../lib/content/lease.ts";
import { MAX_WRITE_CHUNK, readAllContent, readContent } from "../../lib/content/read.ts";
import { writeContent } from "../../lib/content/write.ts";
import { connect, type ContainerdClient } from "../../lib/grpc/connection.ts";
import { ContainerdError, GrpcCode, isNotFound } from "../../lib/grpc/errors.ts";
import { assertInstanceOf, assertRejects } from "../asserts.ts";
import { containerdTest, type HarnessInfo } from "../harness.ts";

const MiB = 1024 * 1024;

async function client(h: HarnessInfo): Promise<ContainerdClient> {
  return await connect(`unix://${h.address}`, { namespace: h.namespace });
}

function randomBytes(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

containerdTest("writeContent() stores 64 MiB that read back byte-identical", async (h) => {
  await using c = await client(h);
  const data = randomBytes(64 * MiB);
  const digest = await sha256Digest(data);
  await withLease(c, async (leased) => {
    let progressCalls = 0;
    const result = await writeContent(leased, data, { onProgress: () => progressCalls++ });
    assert.deepEqual(result, { digest, size: data.length, existed: false, resumedFrom: 0 });
    assert.equal(progressCalls, 64);
    const info = await c.content.info({ digest });
    assert.equal(info.info!.size, data.length);
    const back = await readAllContent(c, digest, { maxBytes: 64 * MiB });
    assert.ok(equalBytes(back, data), "bytes differ");
    // Writing it again is a success that writes nothing.
    const again = await writeContent(leased, data);
    assert.equal(again.existed, true);
    assert.equal(again.digest, digest);
  }, { syncDelete: true });
  // The lease was the only reference: deleting it (sync) collected the blob.
  await assert.rejects(() => c.content.info({ digest }), (e: unknown) => isNotFound(e));
});

containerdTest(
  "writeContent() resumes an ingest interrupted after 10 MiB from the server's offset",
  async (h) => {
    await using c = await client(h);
    const data = randomBytes(24 * MiB);
    const digest = await sha256Digest(data);
    const ref = `resume-test-${crypto.randomUUID()}`;
    await withLease(c, async (leased) => {
      const controller = new AbortController();
      async function* interrupted(): AsyncGenerator<Uint8Array> {
        for (let off = 0; off < data.length; off += MiB) {
          if (off === 10 * MiB) controller.abort(new Error("interrupted on purpose"));
          yield data.subarray(off, off + MiB);
        }
      }
      await assertRejects(
        () =>
          writeContent(leased, interrupted(), { ref, expected: digest, signal: controller.signal }),
        Error,
        "interrupted on purpose",
      );
      const status = await leased.content.status({ ref });
      assert.equal(status.status!.offset, 10 * MiB);
      const result = await writeContent(leased, data, { ref, expected: digest });
      assert.equal(result.resumedFrom, 10 * MiB);
      assert.equal(result.existed, false);
      assert.equal(result.digest, digest);
      const back = await readAllContent(leased, digest);
      assert.ok(equalBytes(back, data), "bytes differ after resume");
    }, { syncDelete: true });
  },
);

containerdTest(
  "writeContent() of a stream with a wrong expected digest aborts the ingest",
  async (h) => {
    await using c = await client(h);
    const data = randomBytes(3 * MiB + 17);
    const wrong = await sha256Digest("something else");
    const ref = `mismatch-test-${crypto.randomUUID()}`;
    await withLease(c, async (leased) => {
      try {
        await writeContent(
          leased,
          ReadableStream.from([data.subarray(0, MiB), data.subarray(MiB)]),
          {
            ref,
            expected: wrong,
          },
        );
        assert.fail("wrote data under a wrong digest");
      } catch (e) {
        assertInstanceOf(e, ContainerdError);
        assert.equal(e.code, GrpcCode.DATA_LOSS);
        assert.match(e.message, /hashes to sha256:[0-9a-f]{64}, expected/);
      }
      await assert.rejects(() => leased.content.status({ ref }), (e: unknown) => isNotFound(e));
      await assert.rejects(
        () => leased.content.info({ digest: wrong }),
        (e: unknown) => isNotFound(e),
      );
    }, { syncDelete: true });
  },
);

containerdTest("writeContent() sends chunks of at most 1 MiB with their offsets", async (h) => {
  await using c = await client(h);
  const data = randomBytes(2 * MiB + 5);
  await withLease(c, async (leased) => {
    const seen: number[] = [];
    const result = await writeContent(leased, data, {
      chunkSize: MAX_WRITE_CHUNK,
      onProgress: (written) => seen.push(written),
    });
    assert.deepEqual(seen, [MiB, 2 * MiB, 2 * MiB + 5]);
    assert.equal(result.size, data.length);
    await assert.rejects(() => writeContent(leased, data, { chunkSize: MiB + 1 }), RangeError);
  }, { syncDelete: true });
});

containerdTest("readAllContent() refuses a blob over maxBytes before reading it", async (h) => {
  await using c = await client(h);
  const layer = h.images.oneLayer.layerDigests[0];
  await assertRejects(
    () => readAllContent(c, layer, { maxBytes: 1024 }),
    RangeError,
    `Cannot read ${layer}`,
  );
});

containerdTest("readContent() reads a range and break cancels it", async (h) => {
  await using c = await client(h);
  const layer = h.images.oneLayer.layerDigests[0];
  const whole = await readAllContent(c, layer);
  const parts: Uint8Array[] = [];
  for await (const chunk of readContent(c, layer, { offset: 100, size: 1000 })) parts.push(chunk);
  const range = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    range.set(p, at);
    at += p.length;
  }
  assert.ok(equalBytes(range, whole.subarray(100, 1100)));
  let chunks = 0;
  for await (const _ of readContent(c, layer)) {
    chunks++;
    break;
  }
  assert.equal(chunks, 1);
  await assert.rejects(
    async () => {
      for await (const _ of readContent(c, `sha256:${"0".repeat(64)}`)) { /* nothing */ }
    },
    (e: unknown) => e instanceof ContainerdError && e.code === 5 && e.method === "Content.Read",
  );
});

containerdTest(
  "readAllContent() with a known size skips Info and refuses a blob of another size",
  async (h) => {
    await using c = await connect(`unix://${h.address}`, { namespace: h.namespace });
    const { manifestDigest, manifestSize } = h.images.oneLayer;
    let infos = 0;
    const info = c.content.info.bind(c.content);
    c.content.info = (req, opts) => (infos++, info(req, opts));
    const bytes = await readAllContent(c, manifestDigest, { size: manifestSize });
    assert.equal(bytes.length, manifestSize);
    assert.equal(infos, 0, "no Content.Info");
    for (const size of [manifestSize - 1, manifestSize + 1]) {
      const err = await assertRejects(
        () => readAllContent(c, manifestDigest, { size }),
        ContainerdError,
        "the descriptor says",
      );
      assert.equal(err.code, GrpcCode.DATA_LOSS);
    }
  },
);
