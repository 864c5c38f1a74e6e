/**
 * Lists source files for the tests that check the code base itself.
 *
 * @module
 */

/** Every `.ts` file below `dir` (a directory URL ending in `/`), depth first. */
export async function tsFiles(dir: URL): Promise<URL[]> {
  const out: URL[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) out.push(...await tsFiles(url));
    else if (entry.name.endsWith(".ts")) out.push(url);
  }
  return out;
}
