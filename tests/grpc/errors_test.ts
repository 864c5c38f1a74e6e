import assert from "node:assert/strict";
import {
  codeName,
  ContainerdError,
  GrpcCode,
  isAlreadyExists,
  isNotFound,
  isUnavailable,
  toContainerdError,
} from "../../lib/grpc/errors.ts";

Deno.test("toContainerdError() keeps the gRPC code, names the method and the server's message", () => {
  const grpcError = Object.assign(new Error('5 NOT_FOUND: image "x": not found'), {
    code: 5,
    details: 'image "x": not found',
  });
  const err = toContainerdError(grpcError, "Images.Get") as ContainerdError;
  assert.ok(err instanceof ContainerdError);
  assert.equal(err.code, 5);
  assert.equal(err.codeName, "NOT_FOUND");
  assert.equal(err.method, "Images.Get");
  assert.equal(err.details, 'image "x": not found');
  assert.equal(err.message, 'Images.Get: image "x": not found (NOT_FOUND)');
  assert.equal(err.cause, grpcError);
  assert.ok(isNotFound(err));
  assert.ok(!isAlreadyExists(err));
});

Deno.test("toContainerdError() returns the abort reason when the caller's signal fired", () => {
  const controller = new AbortController();
  controller.abort(new DOMException("stop", "AbortError"));
  const err = toContainerdError(
    { code: 1, details: "Cancelled on client" },
    "Content.Read",
    controller.signal,
  );
  assert.equal(err, controller.signal.reason);
});

Deno.test("toContainerdError() wraps non-gRPC failures as UNKNOWN", () => {
  const err = toContainerdError(new Error("boom"), "Tasks.Start") as ContainerdError;
  assert.ok(err instanceof ContainerdError);
  assert.equal(err.code, GrpcCode.UNKNOWN);
  assert.equal(err.details, "boom");
});

Deno.test("codeName() names every gRPC code and falls back for unknown numbers", () => {
  assert.equal(codeName(14), "UNAVAILABLE");
  assert.equal(codeName(6), "ALREADY_EXISTS");
  assert.equal(codeName(99), "CODE_99");
  assert.ok(isUnavailable(new ContainerdError({ code: 14, method: "connect", details: "x" })));
  assert.ok(!isNotFound(new Error("not found")));
});
