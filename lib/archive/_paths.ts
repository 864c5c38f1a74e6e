/**
 * POSIX path helpers for paths inside an image's root filesystem (always
 * absolute, `/`-separated, `..` clamped at the root). Private to lib/archive.
 *
 * @module
 */

/** Normalises a path inside an image: absolute, no `.`, `..` or empty parts. */
export function normalizePath(path: string): string {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return "/" + out.join("/");
}

/** The parent directory. */
export function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

/** The last component. */
export function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** `dir` + `/` + `name`. */
export function join(dir: string, name: string): string {
  return dir === "/" ? `/${name}` : `${dir}/${name}`;
}

/** True when `path` is strictly below `dir`. */
export function isUnder(path: string, dir: string): boolean {
  return dir === "/" ? path !== "/" : path.startsWith(dir + "/");
}

/** The path and its ancestors below `/`, e.g. `/a`, `/a/b`, `/a/b/c`. */
export function withAncestors(path: string): string[] {
  const out: string[] = [];
  let cur = path;
  while (cur !== "/") {
    out.push(cur);
    cur = dirname(cur);
  }
  return out.reverse();
}
