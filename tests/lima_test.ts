import assert from "node:assert/strict";
import YAML from "yaml";
import { IO_DIR, renderTemplate, SOCAT_PORT } from "../lima/template.ts";
import { assertExists } from "./asserts.ts";
import { LIMA_IO_DIR, SOCAT_PORT as TOPOLOGY_PORT } from "./e2e/topology.ts";

const limaDir = new URL("../lima/", import.meta.url);
const templateText = await Deno.readTextFile(new URL("wfe-test.yaml", limaDir));
const provisionScript = await Deno.readTextFile(new URL("provision.sh", limaDir));
const readme = await Deno.readTextFile(new URL("README.md", limaDir));

interface Template {
  minimumLimaVersion: string;
  mountType: string;
  mounts: { location: string; mountPoint: string; writable: boolean }[];
  containerd: { system: boolean; user: boolean };
  provision: { mode: string; script: string }[];
  portForwards: { guestPort: number; hostIP: string; hostPort: number }[];
  probes: { mode: string; script: string; hint: string }[];
}

const template = YAML.parse(templateText) as Template;

function documented(name: string): string {
  const m = new RegExp(`export ${name}=(\\S+)`).exec(readme);
  assertExists(m, `lima/README.md documents no ${name}`);
  return m[1];
}

Deno.test("lima/wfe-test.yaml is what lima/template.ts renders from lima/provision.sh", () => {
  assert.ok(templateText === renderTemplate(provisionScript), "run `deno run -A lima/template.ts`");
});

Deno.test("the Lima template parses and disables Lima's own containerd", () => {
  assert.match(template.minimumLimaVersion, /^\d+\.\d+\.\d+$/);
  assert.deepEqual(template.containerd, { system: false, user: false });
  assert.equal(template.mountType, "virtiofs");
  assert.ok(template.probes.some((p) => p.mode === "readiness" && p.hint.length > 0));
});

Deno.test("the socat port, the forwarded guest port and WFE_CONTAINERD_ADDR agree", () => {
  const socat = template.provision.map((p) => /TCP4-LISTEN:(\d+)/.exec(p.script)?.[1]).find(
    Boolean,
  );
  assert.equal(Number(socat), SOCAT_PORT);
  const forward = template.portForwards.find((f) => f.guestPort === SOCAT_PORT);
  assertExists(forward, "no port forward for the socat port");
  assert.equal(forward.hostIP, "127.0.0.1");
  const address = documented("WFE_CONTAINERD_ADDR");
  assert.equal(address, `tcp://${forward.hostIP}:${forward.hostPort}`);
  assert.equal(TOPOLOGY_PORT, SOCAT_PORT);
  assert.match(templateText, new RegExp(`export WFE_CONTAINERD_ADDR=${address}`));
});

Deno.test("the shared mount is the documented WFE_IO_DIR, writable, at the same path", () => {
  const ioDir = documented("WFE_IO_DIR");
  const mount = template.mounts.find((m) => m.location === ioDir);
  assertExists(mount, `no mount of ${ioDir}`);
  assert.equal(mount.mountPoint, ioDir);
  assert.equal(mount.writable, true);
  assert.equal(IO_DIR, ioDir);
  assert.equal(LIMA_IO_DIR, ioDir);
});

Deno.test("the VM is provisioned by the same script as the local harness", () => {
  assert.equal(template.provision[0].mode, "system");
  assert.equal(template.provision[0].script.trimEnd(), provisionScript.trimEnd());
  const harness = Deno.readTextFileSync(new URL("harness.ts", import.meta.url));
  assert.match(harness, /lima\/provision\.sh/);
});
