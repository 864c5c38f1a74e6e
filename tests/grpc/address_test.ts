import assert from "node:assert/strict";
import { assertThrows } from "../asserts.ts";
import { DEFAULT_ADDRESS, defaultAddress, parseAddress } from "../../lib/grpc/address.ts";

Deno.test("parseAddress() reads a bare socket path as unix", () => {
  assert.deepEqual(parseAddress("/run/containerd/containerd.sock"), {
    transport: "unix",
    path: "/run/containerd/containerd.sock",
    target: "unix:///run/containerd/containerd.sock",
  });
});

Deno.test("parseAddress() reads unix:///path", () => {
  const a = parseAddress("unix:///tmp/x/containerd.sock");
  assert.equal(a.transport, "unix");
  assert.equal(a.transport === "unix" && a.path, "/tmp/x/containerd.sock");
});

Deno.test("parseAddress() resolves a relative socket path against the working directory", () => {
  const a = parseAddress("./c.sock");
  assert.equal(a.transport === "unix" && a.path, `${Deno.cwd()}/c.sock`);
});

Deno.test("parseAddress() reads tcp:// and http:// as plain TCP, https:// as TLS", () => {
  assert.deepEqual(parseAddress("tcp://127.0.0.1:2500"), {
    transport: "tcp",
    host: "127.0.0.1",
    port: 2500,
    tls: false,
    target: "ipv4:127.0.0.1:2500",
  });
  const http = parseAddress("http://localhost:80");
  assert.equal(http.transport === "tcp" && http.port, 80);
  assert.equal(http.target, "dns:localhost:80");
  const https = parseAddress("https://containerd.example:443");
  assert.equal(https.transport === "tcp" && https.tls, true);
  const v6 = parseAddress("tcp://[::1]:2500");
  assert.equal(v6.transport === "tcp" && v6.host, "::1");
  assert.equal(v6.target, "ipv6:[::1]:2500");
});

Deno.test("parseAddress() rejects unsupported schemes, missing ports and junk", () => {
  assertThrows(() => parseAddress("ftp://x"), TypeError, "unsupported scheme 'ftp'");
  assertThrows(() => parseAddress("tcp://127.0.0.1"), TypeError, "missing port");
  assertThrows(() => parseAddress("tcp://127.0.0.1:99999"), TypeError, "out of range");
  assertThrows(() => parseAddress("tcp://h:1/path"), TypeError, "nothing more");
  assertThrows(() => parseAddress(""), TypeError, "empty");
  assertThrows(() => parseAddress("unix://relative.sock"), TypeError, "absolute path");
});

Deno.test("defaultAddress() prefers WFE_CONTAINERD_ADDR, then CONTAINERD_ADDRESS", () => {
  const saved = [Deno.env.get("WFE_CONTAINERD_ADDR"), Deno.env.get("CONTAINERD_ADDRESS")];
  try {
    Deno.env.delete("WFE_CONTAINERD_ADDR");
    Deno.env.delete("CONTAINERD_ADDRESS");
    assert.equal(defaultAddress(), DEFAULT_ADDRESS);
    Deno.env.set("CONTAINERD_ADDRESS", "/b.sock");
    assert.equal(defaultAddress(), "/b.sock");
    Deno.env.set("WFE_CONTAINERD_ADDR", "tcp://127.0.0.1:2500");
    assert.equal(defaultAddress(), "tcp://127.0.0.1:2500");
  } finally {
    const names = ["WFE_CONTAINERD_ADDR", "CONTAINERD_ADDRESS"];
    saved.forEach((v, i) =>
      v === undefined ? Deno.env.delete(names[i]) : Deno.env.set(names[i], v)
    );
  }
});
