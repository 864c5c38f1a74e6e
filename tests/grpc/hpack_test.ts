import assert from "node:assert/strict";
import { encodeHeaders, HpackDecoder, huffmanDecode } from "../../lib/grpc/h2/hpack.ts";

const hex = (h: string) =>
  Uint8Array.from(h.replace(/\s+/g, "").match(/../g)!.map((x) => parseInt(x, 16)));
const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("huffmanDecode() decodes RFC 7541's examples and refuses bad padding", () => {
  assert.equal(text(huffmanDecode(hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff"))), "www.example.com");
  assert.equal(text(huffmanDecode(hex("a8eb 1064 9cbf"))), "no-cache");
  assert.equal(text(huffmanDecode(hex("25a8 49e9 5bb8 e8b4 bf"))), "custom-value");
  assert.equal(text(huffmanDecode(hex("6402"))), "302");
  assert.equal(
    text(huffmanDecode(hex("d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff"))),
    "Mon, 21 Oct 2013 20:13:21 GMT",
  );
  // Padding of zeros, and padding longer than 7 bits, are errors.
  assert.throws(() => huffmanDecode(hex("f1e3 c2e5 f23a 6ba0 ab90 f400")), /padding|code/);
  assert.throws(() => huffmanDecode(hex("a8eb 1064 9cbf ff")), /padding/);
});

Deno.test("HpackDecoder decodes RFC 7541 C.6 responses (Huffman, dynamic table, eviction)", () => {
  const d = new HpackDecoder();
  d.decode(hex("3f e1 01")); // a 256-byte table, as in C.6: the second response evicts
  const first = d.decode(
    hex(
      "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e " +
        "919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
    ),
  );
  assert.deepEqual(first, [
    [":status", "302"],
    ["cache-control", "private"],
    ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
    ["location", "https://www.example.com"],
  ]);
  // The second response reuses three of them from the dynamic table.
  const second = d.decode(hex("4883 640e ff c1 c0 bf"));
  assert.deepEqual(second, [
    [":status", "307"],
    ["cache-control", "private"],
    ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
    ["location", "https://www.example.com"],
  ]);
  // ":status 302" no longer fits in 256 bytes: it was evicted (index 66 is gone).
  assert.throws(() => d.decode(hex("c2")), /no table entry 66/);
});

Deno.test("encodeHeaders() output decodes to the same headers", () => {
  const headers: [string, string][] = [
    [":method", "POST"],
    [":path", "/containerd.services.version.v1.Version/Version"],
    ["containerd-namespace", "wfe-test"],
    ["x-long", "v".repeat(300)],
  ];
  assert.deepEqual(new HpackDecoder().decode(encodeHeaders(headers)), headers);
});
