/**
 * The HTTP/2 channel gRPC runs on, against the harness's containerd: a lost connection is
 * re-opened by the next call, deadlines and aborts end calls (server streams included), and
 * large messages cross in both directions within flow control.
 *
 * @module
 */

import assert from "node:assert/strict";
import { connect } from "../../lib/grpc/connection.ts";
import { ContainerdError, GrpcCode } from "../../lib/grpc/errors.ts";
import { withLease } from "../../lib/content/lease.ts";
import { writeContent } from "../../lib/content/write.ts";
import { readAllContent } from "../../lib/content/read.ts";
import { assertRejects } from "../asserts.ts";
import { containerdTest } from "../harness.ts";

containerdTest("a lost connection is opened again by the next call", async (h) => {
  // A TCP relay to the daemon's socket whose connections the test can cut.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const links: Deno.Conn[] = [];
  let accepted = 0;
  const relay = (async () => {
    for await (const conn of listener) {
      accepted++;
      const upstream = await Deno.connect({ transport: "unix", path: h.address });
      links.push(conn, upstream);
      conn.readable.pipeTo(upstream.writable).catch(() => {});
      upstream.readable.pipeTo(conn.writable).catch(() => {});
    }
  })().catch(() => {});
  try {
    await using c = await connect(`tcp://127.0.0.1:${listener.addr.port}`, {
      namespace: h.namespace,
    });
    assert.equal((await c.version.version({})).version, h.version);
    const before = accepted; // connect's TCP probe and the channel's connection
    for (const link of links.splice(0)) {
      try {
        link.close();
      } catch { /* closed */ }
    }
    // The call in flight when the connection drops may fail; the next one reconnects.
    await new Promise((r) => setTimeout(r, 50));
    const again = await c.version.version({});
    assert.equal(again.version, h.version);
    assert.equal(accepted, before + 1, "one new connection");
  } finally {
    listener.close();
    for (const link of links) {
      try {
        link.close();
      } catch { /* closed */ }
    }
    await relay;
  }
});

containerdTest(
  "deadlines and aborts end calls, server streams included; the channel keeps working",
  async (h) => {
    await using c = await connect(`unix://${h.address}`, { namespace: h.namespace });
    // Events.Subscribe never ends by itself.
    const events = c.events.subscribe({ filters: ['topic=="/wfe/never"'] }, { timeoutMs: 200 });
    const err = await assertRejects(async () => {
      for await (const _ of events) { /* none */ }
    }, ContainerdError);
    assert.equal(err.code, GrpcCode.DEADLINE_EXCEEDED);
    const stop = new AbortController();
    setTimeout(() => stop.abort(new Error("stopped by the test")), 100);
    await assertRejects(
      async () => {
        for await (const _ of c.events.subscribe({}, { signal: stop.signal })) { /* none */ }
      },
      Error,
      "stopped by the test",
    );
    assert.equal((await c.version.version({})).version, h.version);
  },
);

containerdTest("a 15 MiB message and a 48 MiB blob cross in both directions", async (h) => {
  await using c = await connect(`unix://${h.address}`, { namespace: h.namespace });
  const blob = new Uint8Array(48 * 1024 * 1024);
  for (let i = 0; i < blob.length; i += 4096) blob[i] = (i >> 12) & 0xff;
  await withLease(c, async (leased) => {
    const { digest } = await writeContent(leased, blob);
    const back = await readAllContent(leased, digest);
    assert.equal(back.length, blob.length);
    assert.ok(back.every((b, i) => b === blob[i]), "the blob came back different");
    // One message close to the 16 MiB limit: a label value is not allowed that large, but a
    // spec is; a container record carries it both ways.
    const spec = new TextEncoder().encode(JSON.stringify({ pad: "x".repeat(15 * 1024 * 1024) }));
    const id = `wfe-h2-big-${crypto.randomUUID().slice(0, 8)}`;
    await leased.containers.create({
      container: {
        id,
        runtime: { name: "io.containerd.runc.v2" },
        spec: { typeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Spec", value: spec },
      },
    });
    try {
      const { container } = await leased.containers.get({ id });
      assert.equal(container?.spec?.value.length, spec.length);
    } finally {
      await leased.containers.delete({ id });
    }
  }, { syncDelete: true });
});
