import assert from "node:assert/strict";
import { layerCompression, MediaType, mediaTypeKind } from "../../lib/oci/media_types.ts";

Deno.test("mediaTypeKind() classifies OCI and Docker media types", () => {
  assert.equal(mediaTypeKind(MediaType.ociIndex), "index");
  assert.equal(mediaTypeKind(MediaType.dockerManifestList), "index");
  assert.equal(mediaTypeKind(MediaType.ociManifest), "manifest");
  assert.equal(mediaTypeKind(MediaType.dockerManifest), "manifest");
  assert.equal(mediaTypeKind(MediaType.ociConfig), "config");
  assert.equal(mediaTypeKind(MediaType.dockerConfig), "config");
  for (
    const t of [
      MediaType.ociLayer,
      MediaType.ociLayerGzip,
      MediaType.ociLayerZstd,
      MediaType.ociLayerNonDistributable,
      MediaType.ociLayerNonDistributableGzip,
      MediaType.ociLayerNonDistributableZstd,
      MediaType.dockerLayer,
      MediaType.dockerLayerGzip,
      MediaType.dockerLayerForeign,
      MediaType.dockerLayerForeignGzip,
    ]
  ) {
    assert.equal(mediaTypeKind(t), "layer", t);
  }
  assert.equal(mediaTypeKind("application/vnd.in-toto+json"), undefined);
  assert.equal(mediaTypeKind(""), undefined);
});

Deno.test("layerCompression() tells none, gzip and zstd apart", () => {
  assert.equal(layerCompression("application/vnd.oci.image.layer.v1.tar"), "none");
  assert.equal(layerCompression("application/vnd.oci.image.layer.v1.tar+gzip"), "gzip");
  assert.equal(layerCompression("application/vnd.oci.image.layer.v1.tar+zstd"), "zstd");
  assert.equal(
    layerCompression("application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"),
    "zstd",
  );
  assert.equal(layerCompression("application/vnd.docker.image.rootfs.diff.tar.gzip"), "gzip");
  assert.equal(
    layerCompression("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"),
    "gzip",
  );
  assert.equal(layerCompression(MediaType.ociConfig), undefined);
});

// ---------------------------------------------------------------------------------------------
// manifests
