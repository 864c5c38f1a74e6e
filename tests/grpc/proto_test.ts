import assert from "node:assert/strict";
import protobuf from "protobufjs";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { decodeMessage, encodeMessage, loadProtobuf } from "../../lib/grpc/rpc.ts";
import { generate, loadProtoRoot } from "../../proto/generate.ts";

const GEN_DIR = new URL("../../proto/gen/", import.meta.url);

await loadProtobuf(); // connect() does this; these tests encode without a connection

Deno.test("proto/gen is what `deno task proto` generates from proto/", async () => {
  const files = await generate();
  for (const [name, text] of Object.entries(files)) {
    const committed = await Deno.readTextFile(new URL(name, GEN_DIR));
    assert.ok(committed === text, `proto/gen/${name} is stale: run \`deno task proto\``);
  }
});

Deno.test("encodeMessage() writes containerd field numbers on the wire", () => {
  // Descriptor: media_type=1, digest=2, size=3 (varint).
  const bytes = encodeMessage("containerd.types.Descriptor", {
    mediaType: "a",
    digest: "b",
    size: 300,
  });
  assert.deepEqual([...bytes], [0x0a, 1, 0x61, 0x12, 1, 0x62, 0x18, 0xac, 0x02]);
  const back = decodeMessage<{ mediaType: string; size: number; annotations: object }>(
    "containerd.types.Descriptor",
    bytes,
  );
  assert.equal(back.mediaType, "a");
  assert.equal(back.size, 300);
  assert.deepEqual(back.annotations, {});
});

Deno.test("encodeMessage() encodes Any with type_url as field 1", () => {
  const bytes = encodeMessage("google.protobuf.Any", { typeUrl: "t", value: new Uint8Array([7]) });
  assert.deepEqual([...bytes], [0x0a, 1, 0x74, 0x12, 1, 7]);
});

// ---------------------------------------------------------------------------------------------
// Conformance with the official definitions shipped by Debian's
// golang-github-containerd-containerd-dev (installed by lima/provision.sh).

const GOSRC = "/usr/share/gocode/src";
const CTD = `${GOSRC}/github.com/containerd/containerd`;
const GOGO = `${GOSRC}/github.com/gogo/protobuf`;
const GOOGLEAPIS = `${GOSRC}/github.com/gogo/googleapis`;
const haveOfficial = existsSync(`${CTD}/api/services/tasks/v1/tasks.proto`);
const required = Deno.env.get("WFE_REQUIRE_CONTAINERD") === "1";
if (!haveOfficial) {
  console.error(
    "skipped: proto conformance: Debian's golang-github-containerd-containerd-dev is not installed",
  );
}

function officialFiles(): string[] {
  const services = [
    "version",
    "containers",
    "content",
    "images",
    "snapshots",
    "tasks",
    "diff",
    "leases",
    "events",
    "introspection",
    "namespaces",
  ];
  const protos = (dir: string): string[] =>
    readdirSync(dir).filter((f) => f.endsWith(".proto")).map((f) => `${dir}/${f}`);
  return [
    ...services.flatMap((s) => protos(`${CTD}/api/services/${s}/v1`)),
    ...["descriptor", "mount", "platform", "metrics"].map((t) => `${CTD}/api/types/${t}.proto`),
    `${CTD}/api/types/task/task.proto`,
    ...protos(`${CTD}/api/events`),
    `${CTD}/runtime/v2/runc/options/oci.proto`,
    `${GOOGLEAPIS}/google/rpc/status.proto`,
  ];
}

function loadOfficial(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (origin: string, target: string): string => {
    if (target.startsWith("/")) return target;
    const candidates = [
      join(GOSRC, target),
      join(GOGO, target),
      join(GOGO, "protobuf", target),
      join(GOOGLEAPIS, target),
      join(dirname(origin), target),
    ];
    return candidates.find((c) => existsSync(c)) ?? target;
  };
  root.loadSync(officialFiles(), { keepCase: true });
  root.resolveAll();
  return root;
}

function definitions(ns: protobuf.NamespaceBase): protobuf.ReflectionObject[] {
  const out: protobuf.ReflectionObject[] = [];
  for (const obj of ns.nestedArray) {
    if (obj instanceof protobuf.Type || obj instanceof protobuf.Enum) out.push(obj);
    if (obj instanceof protobuf.Service) out.push(obj);
    if (obj instanceof protobuf.Namespace || obj instanceof protobuf.Type) {
      out.push(...definitions(obj as protobuf.NamespaceBase));
    }
  }
  return out.filter((o) =>
    !/^\.(google\.protobuf|gogoproto|containerd\.plugin)\b/.test(o.fullName)
  );
}

function fieldShape(f: protobuf.Field): string {
  const type = f.resolvedType ? f.resolvedType.fullName : f.type;
  const label = f.map
    ? `map<${(f as unknown as protobuf.MapField).keyType}>`
    : f.repeated
    ? "repeated"
    : "";
  return `${f.name}=${f.id} ${label} ${type} oneof:${f.partOf?.name ?? "-"}`;
}

function shape(o: protobuf.ReflectionObject): string[] {
  if (o instanceof protobuf.Type) return o.fieldsArray.map(fieldShape).sort();
  if (o instanceof protobuf.Enum) {
    return Object.entries(o.values).map(([k, v]) => `${k}=${v}`).sort();
  }
  if (o instanceof protobuf.Service) {
    return o.methodsArray.map((m) =>
      `${m.name}(${m.requestStream ? "stream " : ""}${m.resolvedRequestType!.fullName}) -> ` +
      `${m.responseStream ? "stream " : ""}${m.resolvedResponseType!.fullName}`
    ).sort();
  }
  return [];
}

function kind(o: protobuf.ReflectionObject): string {
  return o instanceof protobuf.Service
    ? "service"
    : o instanceof protobuf.Enum
    ? "enum"
    : "message";
}

Deno.test({
  name: "proto/ matches containerd's official API definitions field by field and RPC by RPC",
  ignore: !haveOfficial && !required,
  fn: async () => {
    assert.ok(haveOfficial, "golang-github-containerd-containerd-dev is required (CI installs it)");
    const ours = await loadProtoRoot({ keepCase: true });
    const official = loadOfficial();
    const mismatches: string[] = [];
    let compared = 0;
    for (const mine of definitions(ours)) {
      const theirs = official.lookup(mine.fullName);
      if (!theirs || kind(theirs) !== kind(mine)) {
        mismatches.push(`${kind(mine)} ${mine.fullName}: no official ${kind(mine)} of that name`);
        continue;
      }
      compared++;
      const a = shape(mine);
      const b = shape(theirs);
      for (const line of a) {
        if (!b.includes(line)) mismatches.push(`${mine.fullName}: ours ${line}`);
      }
      for (const line of b) {
        if (!a.includes(line)) mismatches.push(`${mine.fullName}: official ${line}`);
      }
    }
    // Every official definition of the files we mirror exists on our side too.
    for (const theirs of definitions(official)) {
      if (!ours.lookup(theirs.fullName)) {
        mismatches.push(`missing ${kind(theirs)} ${theirs.fullName}`);
      }
    }
    assert.deepEqual(mismatches, [], `${mismatches.length} mismatches`);
    assert.ok(compared > 150, `compared only ${compared} definitions`);
  },
});
