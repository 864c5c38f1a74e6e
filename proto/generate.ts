/**
 * Generates `proto/gen/descriptor.ts` (the protobufjs JSON descriptor of every
 * `.proto` file under `proto/`) and `proto/gen/types.ts` (TypeScript interfaces
 * for every message, enum and service) so that nothing parses `.proto` text at
 * start-up.
 *
 * Run it with `deno task proto`. `tests/proto_test.ts` fails when the committed
 * output differs from what this script would write.
 *
 * @module
 */

import protobuf from "protobufjs";

const PROTO_DIR = new URL(".", import.meta.url);
const GEN_DIR = new URL("gen/", PROTO_DIR);

/** Short labels used to prefix type names that exist in several packages. */
const PACKAGE_LABELS: Record<string, string> = {
  "containerd.types": "Types",
  "containerd.v1.types": "Task",
  "containerd.events": "Event",
  "containerd.runc.v1": "Runc",
  "google.rpc": "Rpc",
  "google.protobuf": "Protobuf",
};

/** Names too generic for a TypeScript API, renamed. */
const RENAMES: Record<string, string> = {
  "containerd.runc.v1.Options": "RuncOptions",
  "containerd.runc.v1.CheckpointOptions": "RuncCheckpointOptions",
  "containerd.runc.v1.ProcessDetails": "RuncProcessDetails",
};

/** The property name under which each service appears on the client. */
const SERVICE_KEYS: Record<string, string> = {
  "containerd.services.version.v1.Version": "version",
  "containerd.services.containers.v1.Containers": "containers",
  "containerd.services.content.v1.Content": "content",
  "containerd.services.images.v1.Images": "images",
  "containerd.services.snapshots.v1.Snapshots": "snapshots",
  "containerd.services.tasks.v1.Tasks": "tasks",
  "containerd.services.diff.v1.Diff": "diff",
  "containerd.services.leases.v1.Leases": "leases",
  "containerd.services.events.v1.Events": "events",
  "containerd.services.introspection.v1.Introspection": "introspection",
  "containerd.services.namespaces.v1.Namespaces": "namespaces",
};

/** Lists every `.proto` file below `proto/`, sorted, as paths relative to it. */
export async function listProtoFiles(dir: URL = PROTO_DIR, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isDirectory && entry.name !== "gen") {
      out.push(...await listProtoFiles(new URL(`${entry.name}/`, dir), `${prefix}${entry.name}/`));
    } else if (entry.isFile && entry.name.endsWith(".proto")) {
      out.push(`${prefix}${entry.name}`);
    }
  }
  return out.sort();
}

/**
 * Parses our `.proto` files into one resolved protobufjs root. Well-known
 * google/protobuf types come from protobufjs' bundled copies.
 */
export async function loadProtoRoot(
  options: { keepCase?: boolean } = {},
): Promise<protobuf.Root> {
  const root = new protobuf.Root();
  const files = await listProtoFiles();
  const wellKnown = new Set<string>();
  for (const file of files) {
    const text = await Deno.readTextFile(new URL(file, PROTO_DIR));
    const parsed = protobuf.parse(text, root, {
      keepCase: options.keepCase ?? false,
      alternateCommentMode: true,
    });
    for (const imp of [...(parsed.imports ?? []), ...(parsed.weakImports ?? [])]) {
      if (imp.startsWith("google/protobuf/")) wellKnown.add(imp);
      else if (!files.includes(imp)) {
        throw new Error(`${file} imports '${imp}', which is not a file under proto/`);
      }
    }
  }
  for (const name of [...wellKnown].sort()) {
    const common = protobuf.common.get(name);
    if (!common) throw new Error(`protobufjs has no bundled copy of ${name}`);
    root.addJSON(common.nested as Record<string, protobuf.AnyNestedObject>);
  }
  // protobufjs names Any's first field in snake case; rename it so every field
  // the client exposes is camelCase (the wire name is the field number).
  if (!options.keepCase) {
    const any = root.lookupType("google.protobuf.Any");
    const field = any.fields["type_url"];
    if (field) {
      any.remove(field);
      any.add(new protobuf.Field("typeUrl", field.id, field.type));
    }
  }
  root.resolveAll();
  return root;
}

function allNested(ns: protobuf.NamespaceBase): protobuf.ReflectionObject[] {
  const out: protobuf.ReflectionObject[] = [];
  for (const obj of ns.nestedArray) {
    out.push(obj);
    if (obj instanceof protobuf.Namespace || obj instanceof protobuf.Type) {
      out.push(...allNested(obj as protobuf.NamespaceBase));
    }
  }
  return out;
}

function packageOf(obj: protobuf.ReflectionObject): string {
  let p = obj.parent;
  const parts: string[] = [];
  while (p && !(p instanceof protobuf.Root)) {
    if (!(p instanceof protobuf.Type)) parts.unshift(p.name);
    p = p.parent;
  }
  return parts.join(".");
}

function packageLabel(pkg: string): string {
  if (PACKAGE_LABELS[pkg]) return PACKAGE_LABELS[pkg];
  const m = /^containerd\.services\.([a-z]+)\.v1$/.exec(pkg);
  if (m) return m[1][0].toUpperCase() + m[1].slice(1);
  throw new Error(`no label for package ${pkg}`);
}

function localName(obj: protobuf.ReflectionObject): string {
  const names: string[] = [obj.name];
  let p = obj.parent;
  while (p instanceof protobuf.Type) {
    names.unshift(p.name);
    p = p.parent;
  }
  return names.join("_");
}

function docComment(text: string | null | undefined, indent: string, fallback: string): string {
  const body = (text && text.trim()) ? text.trim() : fallback;
  const lines = body.split("\n").map((l) => l.replace(/\*\//g, "*\\/").trimEnd());
  if (lines.length === 1) return `${indent}/** ${lines[0]} */\n`;
  return `${indent}/**\n${
    lines.map((l) => `${indent} *${l ? " " + l : ""}`).join("\n")
  }\n${indent} */\n`;
}

const SCALARS: Record<string, string> = {
  double: "number",
  float: "number",
  int32: "number",
  uint32: "number",
  sint32: "number",
  fixed32: "number",
  sfixed32: "number",
  int64: "number",
  uint64: "number",
  sint64: "number",
  fixed64: "number",
  sfixed64: "number",
  bool: "boolean",
  string: "string",
  bytes: "Uint8Array",
};

async function format(code: string): Promise<string> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext", "ts", "--line-width", "100", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(code));
  await writer.close();
  const out = await child.output();
  if (!out.success) throw new Error(`deno fmt failed: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

const HEADER =
  "// Generated by proto/generate.ts from the .proto files under proto/. Do not edit;\n" +
  "// run `deno task proto` after changing a .proto file.\n";

/** The generated files, keyed by their path relative to `proto/gen/`. */
export async function generate(): Promise<Record<string, string>> {
  const root = await loadProtoRoot();
  const objects = allNested(root).filter((o) =>
    o instanceof protobuf.Type || o instanceof protobuf.Enum || o instanceof protobuf.Service
  );

  // Type names: the bare name, unless two packages define it (then prefixed
  // with the package label) or it is renamed.
  const byBare = new Map<string, protobuf.ReflectionObject[]>();
  for (const o of objects) {
    if (o instanceof protobuf.Service) continue;
    const bare = localName(o);
    byBare.set(bare, [...(byBare.get(bare) ?? []), o]);
  }
  const tsName = new Map<string, string>();
  for (const [bare, list] of byBare) {
    for (const o of list) {
      const renamed = RENAMES[o.fullName.replace(/^\./, "")];
      tsName.set(
        o.fullName,
        renamed ?? (list.length > 1 ? packageLabel(packageOf(o)) + bare : bare),
      );
    }
  }
  const nameOf = (o: protobuf.ReflectionObject): string => {
    const n = tsName.get(o.fullName);
    if (!n) throw new Error(`no TypeScript name for ${o.fullName}`);
    return n;
  };

  const fieldType = (f: protobuf.Field): string => {
    let t: string;
    if (f.resolvedType) {
      t = nameOf(f.resolvedType);
      if (f.resolvedType instanceof protobuf.Type && !f.repeated && !f.map) t += " | null";
    } else {
      t = SCALARS[f.type];
      if (!t) throw new Error(`unknown scalar ${f.type} in ${f.fullName}`);
    }
    if (f.map) return `Record<string, ${t}>`;
    if (f.repeated) return `${t.includes("|") ? `(${t})` : t}[]`;
    return t;
  };

  let types = HEADER + "\n" +
    "/**\n * TypeScript shapes of containerd's API messages as this client exposes them:\n" +
    " * field names in camelCase, 64-bit integers as numbers, bytes as Uint8Array,\n" +
    " * enums as numbers, unset message fields as null. Names are the proto names;\n" +
    " * a name defined in two packages is prefixed with its package (e.g.\n" +
    " * `ContentInfo`, `SnapshotsInfo`).\n *\n * @module\n */\n\n" +
    'import type { BidiStream, CallOptions, Init } from "../../lib/grpc/rpc.ts";\n\n';

  for (const o of objects) {
    if (o instanceof protobuf.Service) continue;
    const name = nameOf(o);
    if (o instanceof protobuf.Enum) {
      const fallback = `Enum \`${o.fullName}\`.`;
      types += docComment(o.comment, "", fallback);
      types += `export type ${name} = ${Object.values(o.values).join(" | ")};\n`;
      types += docComment(o.comment, "", fallback);
      types += `export const ${name}: {\n`;
      for (const [k, v] of Object.entries(o.values)) {
        types += docComment(o.comments[k], "  ", `\`${k}\` (${v})`);
        types += `  readonly ${k}: ${v};\n`;
      }
      types += "} = {\n";
      for (const [k, v] of Object.entries(o.values)) types += `  ${k}: ${v},\n`;
      types += "};\n\n";
    } else if (o instanceof protobuf.Type) {
      types += docComment(o.comment, "", `Message \`${o.fullName}\`.`);
      if (o.fieldsArray.length === 0) {
        types += `export type ${name} = Record<string, never>;\n\n`;
        continue;
      }
      types += `export interface ${name} {\n`;
      for (const f of o.fieldsArray) {
        const kind = f.map
          ? `map<${(f as unknown as protobuf.MapField).keyType}, ${f.type}>`
          : f.repeated
          ? `repeated ${f.type}`
          : f.type;
        types += docComment(f.comment, "  ", `Field ${f.id} (\`${kind}\`).`);
        types += `  ${f.name}: ${fieldType(f)};\n`;
      }
      types += "}\n\n";
    }
  }

  const services = objects.filter((o): o is protobuf.Service => o instanceof protobuf.Service);
  const keys: string[] = [];
  for (const s of services) {
    const key = SERVICE_KEYS[s.fullName.replace(/^\./, "")];
    if (!key) throw new Error(`no client property name for service ${s.fullName}`);
    keys.push(key);
    const iface = `${s.name}Client`;
    types += docComment(
      s.comment,
      "",
      `Client of \`${s.fullName.replace(/^\./, "")}\`.`,
    );
    types += `export interface ${iface} {\n`;
    for (const m of s.methodsArray) {
      const req = nameOf(m.resolvedRequestType!);
      const res = nameOf(m.resolvedResponseType!);
      const method = m.name[0].toLowerCase() + m.name.slice(1);
      types += docComment(m.comment, "  ", `Calls \`${s.name}.${m.name}\`.`);
      if (m.requestStream && m.responseStream) {
        types += `  ${method}(options?: CallOptions): BidiStream<Init<${req}>, ${res}>;\n`;
      } else if (m.requestStream) {
        throw new Error(`client-streaming RPC ${m.fullName} is not supported`);
      } else if (m.responseStream) {
        types +=
          `  ${method}(request: Init<${req}>, options?: CallOptions): AsyncIterable<${res}>;\n`;
      } else {
        types += `  ${method}(request: Init<${req}>, options?: CallOptions): Promise<${res}>;\n`;
      }
    }
    types += "}\n\n";
  }
  types += "/** Every containerd service the client speaks, by client property name. */\n";
  types += "export interface ContainerdServices {\n";
  services.forEach((s, i) => {
    types += `  /** \`${s.fullName.replace(/^\./, "")}\` */\n  ${keys[i]}: ${s.name}Client;\n`;
  });
  types += "}\n\n";
  types += "/** Fully qualified proto name of every service, by client property name. */\n";
  types += "export const SERVICE_NAMES: { readonly [K in keyof ContainerdServices]: string } = {\n";
  services.forEach((s, i) => {
    types += `  ${keys[i]}: "${s.fullName.replace(/^\./, "")}",\n`;
  });
  types += "};\n";

  const json = root.toJSON({ keepComments: false });
  const descriptor = HEADER + "\n" +
    "/**\n * protobufjs JSON descriptor of the containerd API subset under proto/.\n *\n" +
    " * @module\n */\n\n" +
    "/** The JSON descriptor, loaded with `protobuf.Root.fromJSON`. */\n" +
    `export const descriptor: Record<string, unknown> = ${JSON.stringify(json)};\n`;

  return {
    "types.ts": await format(types),
    "descriptor.ts": await format(descriptor),
  };
}

if (import.meta.main) {
  const files = await generate();
  await Deno.mkdir(GEN_DIR, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(new URL(name, GEN_DIR), text);
    console.log(`wrote proto/gen/${name} (${text.length} bytes)`);
  }
}
