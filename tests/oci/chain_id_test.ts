import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { connect } from "../../lib/grpc/connection.ts";
import { chainId, chainIds } from "../../lib/oci/chain_id.ts";
import { containerdTest } from "../harness.ts";
import { Kind } from "../../proto/gen/types.ts";

/** The chain ID rule, written independently with node:crypto. */
function expectedChain(diffIds: readonly string[]): string[] {
  const out = [diffIds[0]];
  for (let i = 1; i < diffIds.length; i++) {
    const hex = createHash("sha256").update(`${out[i - 1]} ${diffIds[i]}`).digest("hex");
    out.push(`sha256:${hex}`);
  }
  return out;
}

function fakeDiffId(seed: string): string {
  return `sha256:${createHash("sha256").update(seed).digest("hex")}`;
}

// sha256 of "layer-a", "layer-b", "layer-c" and their chain, computed with sha256sum(1).
const A = "sha256:589f0d58b9053a4ff7329b8fdb4f9dd120e29354c086ad0b3b10733f6cfd6de3";
const B = "sha256:55fea2a37a9fc5963f1beccd0d162b856e6bd05ca07cdd3726847846ab740f0d";
const C = "sha256:e6c65c655ca8172ab7a2b634dab3220a45472dd6571b6efd956ccc05e229a201";
const AB = "sha256:267c5fd16af60e52927fabf0a36a31f3b5a2069347f7f00c7bd7f93f6ebc01f4";
const ABC = "sha256:82c0ed5f6c15be9b9180a8c04b9f2c676d74af6db13c711f5bb47a0fa43b56df";

Deno.test("chainId() returns the first diff ID for one layer", async () => {
  assert.equal(await chainId([A]), A);
});

Deno.test("chainId() matches a vector computed with sha256sum", async () => {
  assert.equal(await chainId([A, B]), AB);
  assert.equal(await chainId([A, B, C]), ABC);
});

Deno.test("chainId() hashes the parent chain ID and the next diff ID joined by a space", async () => {
  const diffIds = Array.from({ length: 12 }, (_, i) => fakeDiffId(`layer ${i}`));
  const expected = expectedChain(diffIds);
  assert.equal(await chainId(diffIds), expected.at(-1));
  assert.equal(await chainId(diffIds.slice(0, 2)), expected[1]);
});

Deno.test("chainId() depends on the order of the layers", async () => {
  assert.notEqual(await chainId([A, B]), await chainId([B, A]));
});

Deno.test("chainIds() returns the chain ID of every prefix", async () => {
  assert.deepEqual(await chainIds([A, B, C]), [A, AB, ABC]);
  assert.deepEqual(await chainIds([A]), [A]);
  const diffIds = Array.from({ length: 5 }, (_, i) => fakeDiffId(`prefix ${i}`));
  assert.deepEqual(await chainIds(diffIds), expectedChain(diffIds));
});

Deno.test("chainId() rejects an empty list with a TypeError", async () => {
  await assert.rejects(() => chainId([]), {
    name: "TypeError",
    message: "Cannot compute a chain ID of no layers: expected at least one diff ID",
  });
  await assert.rejects(() => chainIds([]), TypeError);
});

Deno.test("chainId() names the index of a diff ID that is not a digest", async () => {
  await assert.rejects(() => chainId([A, "sha256:abc", B]), {
    name: "TypeError",
    message: /^Cannot use diffIds\[1\] 'sha256:abc': expected 'sha256:'/,
  });
  await assert.rejects(() => chainId([A.toUpperCase()]), /diffIds\[0\]/);
  await assert.rejects(() => chainIds([A, B, "md5:00"]), /diffIds\[2\] 'md5:00'/);
});

containerdTest("chainIds() of the test images name the snapshots ctr unpacked", async (h) => {
  await using client = await connect(`unix://${h.address}`, { namespace: h.namespace });
  for (const image of [h.images.oneLayer, h.images.threeLayer]) {
    const ids = await chainIds(image.diffIds);
    assert.deepEqual(ids, expectedChain(image.diffIds));
    assert.equal(await chainId(image.diffIds), ids.at(-1));
    for (const [i, id] of ids.entries()) {
      const { info } = await client.snapshots.stat({ snapshotter: h.snapshotter, key: id });
      assert.equal(info?.name, id);
      assert.equal(info?.kind, Kind.COMMITTED);
      assert.equal(info?.parent, i === 0 ? "" : ids[i - 1], `parent of layer ${i}`);
    }
  }
});
