import assert from "node:assert/strict";
import { parseChallenge } from "../../lib/registry/auth.ts";

Deno.test("parseChallenge() reads the scheme and quoted or bare parameters", () => {
  assert.deepEqual(
    parseChallenge(
      'Bearer realm="https://auth.test/token",service="registry.test",' +
        'scope="repository:team/app:pull,push"',
    ),
    {
      scheme: "bearer",
      params: {
        realm: "https://auth.test/token",
        service: "registry.test",
        scope: "repository:team/app:pull,push",
      },
    },
  );
  assert.deepEqual(parseChallenge('Basic realm="Registry Realm"'), {
    scheme: "basic",
    params: { realm: "Registry Realm" },
  });
  assert.deepEqual(parseChallenge("Bearer realm=http://a.test/t, service=x"), {
    scheme: "bearer",
    params: { realm: "http://a.test/t", service: "x" },
  });
  assert.equal(parseChallenge(null), undefined);
  assert.equal(parseChallenge(""), undefined);
});
