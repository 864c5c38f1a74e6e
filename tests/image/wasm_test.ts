/**
 * Wasm images (layers that are Wasm modules, not tars; platform wasip1/wasm): stored and
 * resolved, a spec built, and the run reaching containerd's shim lookup. No Wasm shim is
 * packaged here, so the test ends where containerd reports the missing shim.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ContainerdError } from "../../lib/grpc/errors.ts";
import { importImages } from "../../lib/image/import.ts";
import { resolveImage } from "../../lib/image/resolve.ts";
import { runStep, stepSpec } from "../../lib/step/run.ts";
import { validateStepConfig } from "../../lib/step/config.ts";
import { assertRejects } from "../asserts.ts";
import { scratchNamespace } from "../daemon_helpers.ts";
import { containerdTest } from "../harness.ts";
import { buildImage } from "../oci_archive.ts";

const WASM_MODULE = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

containerdTest(
  "a Wasm image resolves and builds a spec; a missing shim is named, by runtime name or path",
  async (h) => {
    await using ns = await scratchNamespace(h);
    const image = await buildImage({
      name: "wfe.test/wasm:hello",
      os: "wasip1",
      architecture: "wasm",
      layers: [],
      cmd: [],
      entrypoint: ["/hello.wasm"],
      rawLayers: [{ mediaType: "application/vnd.w3c.wasm.module.v1+wasm", data: WASM_MODULE }],
    });
    const archive = new Blob([image.archive as Uint8Array<ArrayBuffer>]).stream();
    await importImages(ns.client, archive, { platform: "wasip1/wasm", snapshotter: h.snapshotter });
    const resolved = await resolveImage(ns.client, image.name, { platform: "wasip1/wasm" });
    assert.deepEqual(resolved.layers, []);
    assert.deepEqual(resolved.extraLayers.map((l) => l.digest), [image.layerDigests[0]]);
    assert.equal(resolved.chainId, "");
    const { info } = await ns.client.content.info({ digest: image.layerDigests[0] });
    assert.equal(info?.size, WASM_MODULE.length, "the module is stored");

    const step = {
      image: image.name,
      platform: "wasip1/wasm",
      containerdAddr: `unix://${h.address}`,
      namespace: ns.name,
      snapshotter: h.snapshotter,
      pull: "never" as const,
    };
    const spec = await stepSpec(ns.client, validateStepConfig(step), resolved, "wfe-wasm-1");
    assert.deepEqual(spec.process.args, ["/hello.wasm"]);
    const before = (await ns.client.containers.list({})).containers.length;
    await assertRejects(
      () => runStep({ ...step, runtime: "io.containerd.wasmtime.v1" }),
      ContainerdError,
      'runtime "io.containerd.wasmtime.v1" binary not installed "containerd-shim-wasmtime-v1"',
    );
    await assertRejects(
      () => runStep({ ...step, runtime: "/opt/wfe-none/containerd-shim-pelagos-v1" }),
      ContainerdError,
      "invalid custom binary path: stat /opt/wfe-none/containerd-shim-pelagos-v1: no such file",
    );
    assert.equal(
      (await ns.client.containers.list({})).containers.length,
      before,
      "left a container",
    );
    const { leases } = await ns.client.leases.list({ filters: ["id~=^wfe-"] });
    assert.deepEqual(leases.map((l) => l.id).filter((id) => id.endsWith("-lease")), []);
  },
);
