import assert from "node:assert/strict";
import { RegistryClient } from "../../lib/registry/client.ts";
import { dockerCredentials } from "../../lib/registry/docker_config.ts";
import { RegistryError } from "../../lib/registry/errors.ts";
import { assertRejects } from "../asserts.ts";
import type { ImageSpec } from "../oci_archive.ts";
import { startRegistry } from "../registry_harness.ts";

const SPEC: ImageSpec = {
  name: "wfe.test/login:1",
  layers: [[{ type: "file", path: "etc/login.txt", content: "logged in\n" }]],
};
const AUTH = { users: { alice: "s3cret" }, anonymousPull: false, oauthPost: true };

async function configDir(config: unknown): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "wfe-docker-config-" });
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config));
  return dir;
}

Deno.test("dockerCredentials() reads auths entries by host, URL or user/password fields", async () => {
  const dir = await configDir({
    auths: {
      "a.test:5000": { auth: btoa("ann:pw:with:colons") },
      "https://b.test": { username: "bob", password: "pw2" },
    },
  });
  try {
    assert.deepEqual(await dockerCredentials("a.test:5000", { configDir: dir }), {
      username: "ann",
      password: "pw:with:colons",
    });
    assert.deepEqual(await dockerCredentials("b.test", { configDir: dir }), {
      username: "bob",
      password: "pw2",
    });
    assert.equal(await dockerCredentials("c.test", { configDir: dir }), undefined);
    assert.equal(await dockerCredentials("a.test:5000", { configDir: `${dir}/absent` }), undefined);
    await Deno.writeTextFile(`${dir}/config.json`, "{ not json");
    await assertRejects(
      () => dockerCredentials("a.test", { configDir: dir }),
      SyntaxError,
      `Cannot read Docker credentials from '${dir}/config.json'`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RegistryClient logs in with config.json auths and with a credential helper", async () => {
  await using registry = await startRegistry({ tokenAuth: AUTH });
  const built = await registry.push(SPEC, "team/login", "1");
  const ref = `${registry.host}/team/login:1`;

  const withAuths = await configDir({ auths: { [registry.host]: { auth: btoa("alice:s3cret") } } });
  const helperDir = await Deno.makeTempDir({ prefix: "wfe-cred-helper-" });
  const oldPath = Deno.env.get("PATH") ?? "";
  try {
    const viaAuths = new RegistryClient({ dockerConfigDir: withAuths });
    assert.equal((await viaAuths.resolve(ref)).descriptor.digest, built.manifestDigest);

    // A credential helper is a real program on PATH that answers `get` with JSON.
    const helper = `${helperDir}/docker-credential-wfetest`;
    await Deno.writeTextFile(
      helper,
      '#!/bin/sh\nread host\n[ "$1" = get ] && [ "$host" = "' + registry.host + '" ] || exit 1\n' +
        'echo \'{"ServerURL":"\'"$host"\'","Username":"alice","Secret":"s3cret"}\'\n',
    );
    await Deno.chmod(helper, 0o700);
    Deno.env.set("PATH", `${helperDir}:${oldPath}`);
    const withHelper = await configDir({ credHelpers: { [registry.host]: "wfetest" } });
    const viaHelper = new RegistryClient({ dockerConfigDir: withHelper });
    assert.equal((await viaHelper.resolve(ref)).descriptor.digest, built.manifestDigest);

    // A helper that is not installed means anonymous access, which this registry refuses.
    const missing = await configDir({ credsStore: "not-installed-helper" });
    await assertRejects(
      () => new RegistryClient({ dockerConfigDir: missing }).resolve(ref),
      RegistryError,
      `unauthorized: no credentials for ${registry.host} found`,
    );
    // registryAuth wins over config.json, and `false` ignores config.json.
    await assertRejects(
      () => new RegistryClient({ dockerConfigDir: false }).resolve(ref),
      RegistryError,
      "no credentials",
    );
    await assertRejects(
      () =>
        new RegistryClient({
          dockerConfigDir: withAuths,
          registryAuth: { [registry.host]: { username: "alice", password: "wrong" } },
        }).resolve(ref),
      RegistryError,
      `credentials for ${registry.host} were rejected`,
    );
    for (const dir of [withHelper, missing]) await Deno.remove(dir, { recursive: true });
  } finally {
    Deno.env.set("PATH", oldPath);
    await Deno.remove(withAuths, { recursive: true });
    await Deno.remove(helperDir, { recursive: true });
  }
});
