/**
 * Checks the examples in the documentation against the package's entry
 * points: every name an example imports from `@wfe/containerd` must be
 * exported by mod.ts, and from `@wfe/containerd/api` by api.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { tsFiles } from "./ts_files.ts";

const ROOT = new URL("../", import.meta.url);
const ENTRIES: Record<string, string> = {
  "@wfe/containerd": "mod.ts",
  "@wfe/containerd/api": "api.ts",
};

/** The names an entry point exports, as `deno doc --json` lists them. */
async function exportedNames(file: string): Promise<Set<string>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", file],
    cwd: ROOT,
    stdout: "piped",
    stderr: "null",
  }).output();
  assert.ok(out.success, `deno doc --json ${file} failed`);
  const doc = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    nodes: Record<string, { symbols: { name: string }[] }>;
  };
  const names = new Set<string>();
  for (const node of Object.values(doc.nodes)) for (const s of node.symbols) names.add(s.name);
  return names;
}

/** `file: import { names } from "spec"` of every example import of the package. */
export function exampleImports(text: string): { spec: string; names: string[] }[] {
  const out: { spec: string; names: string[] }[] = [];
  const re = /import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+"(@wfe\/containerd(?:\/[a-z]+)?)"/g;
  for (const m of text.matchAll(re)) {
    const names = m[1].replace(/^\s*\*\s?/gm, "").split(",").map((n) =>
      n.trim().replace(/^type\s+/, "").split(/\s+as\s+/)[0]
    ).filter(Boolean);
    out.push({ spec: m[2], names });
  }
  return out;
}

Deno.test("every name a documentation example imports is exported by that entry point", async () => {
  const exported: Record<string, Set<string>> = {};
  for (const [spec, file] of Object.entries(ENTRIES)) exported[spec] = await exportedNames(file);
  const files = [
    ...await tsFiles(new URL("lib/", ROOT)),
    new URL("mod.ts", ROOT),
    new URL("api.ts", ROOT),
    new URL("README.md", ROOT),
  ];
  const missing: string[] = [];
  let checked = 0;
  for (const url of files) {
    const text = await Deno.readTextFile(url);
    for (const { spec, names } of exampleImports(text)) {
      for (const name of names) {
        checked++;
        const known = exported[spec];
        if (!known) {
          missing.push(`${url.pathname.slice(ROOT.pathname.length)}: unknown entry ${spec}`);
        } else if (!known.has(name)) {
          missing.push(`${url.pathname.slice(ROOT.pathname.length)}: ${name} from ${spec}`);
        }
      }
    }
  }
  assert.ok(checked > 50, `expected many example imports, found ${checked}`);
  assert.deepEqual(missing, []);
});
