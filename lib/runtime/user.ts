/**
 * The process user of a container: parsing a user string (`"uid:gid"`, `"uid"`, `"name"`,
 * `"name:group"`, `"uid:group"`, `"name:gid"`) and resolving it against an image's
 * `/etc/passwd` and `/etc/group`, as containerd's `WithUser` and `WithImageConfig` do.
 *
 * Parsing is pure and strict: a malformed string is a `TypeError` before anything touches the
 * daemon. Resolving takes the file contents (read from the image's layers with
 * `readImagePasswdGroup` in `image/files.ts`), so it works against a remote daemon too.
 *
 * @module
 */

/** The user of a step when neither the step nor the image names one: `nobody:nogroup`. */
export const DEFAULT_USER = "65534:65534";

/** The largest uid or gid accepted: 2^32 - 2 (2^32 - 1 is the kernel's "no id", -1). */
export const MAX_ID = 4294967294;

/** The longest user or group name accepted. */
export const MAX_NAME_LENGTH = 32;

/** A parsed user string; numbers are ids, strings are names to look up in the image. */
export interface UserSpec {
  /** The string as given, e.g. `"tester:wheel"`. */
  input: string;
  /** The uid, or the user name to look up in `/etc/passwd`. */
  user: number | string;
  /**
   * The gid, or the group name to look up in `/etc/group`; `undefined` when the string names
   * only a user (the gid then comes from the user's passwd entry, or is 0).
   */
  group?: number | string;
}

/** The process user of a container, ready for the runtime spec's `process.user`. */
export interface ResolvedUser {
  /** The uid. */
  uid: number;
  /** The primary gid. */
  gid: number;
  /**
   * The gids of the process: the primary gid first, then the supplementary groups whose member
   * list names the user (as containerd computes them); just `[gid]` when the user has no name.
   */
  additionalGids: number[];
  /** The user's name from `/etc/passwd`, when the image has an entry for it. */
  username?: string;
}

/** The image files {@linkcode resolveUser} reads; absent when the image lacks them. */
export interface UserFiles {
  /** The text of the image's `/etc/passwd`. */
  passwd?: string;
  /** The text of the image's `/etc/group`. */
  group?: string;
}

/** One line of `/etc/passwd`. */
export interface PasswdEntry {
  /** The user name. */
  name: string;
  /** The uid. */
  uid: number;
  /** The primary gid. */
  gid: number;
  /** The home directory (may be empty). */
  home: string;
  /** The login shell (may be empty). */
  shell: string;
}

/** One line of `/etc/group`. */
export interface GroupEntry {
  /** The group name. */
  name: string;
  /** The gid. */
  gid: number;
  /** The user names listed as members. */
  members: string[];
}

const NAME_RE = /^[A-Za-z0-9._-]+$/;
const NUMERIC_LOOKING_RE = /^[+-]?[0-9.]*[0-9][0-9.]*$/;

/**
 * Parses one part of a user string: a decimal id, or a name. Returns the reason as a string
 * when the part is invalid.
 */
function parsePart(part: string, kind: "user" | "group"): number | string | { error: string } {
  const idName = kind === "user" ? "uid" : "gid";
  if (part === "") return { error: `the ${kind} is empty` };
  if (/^[0-9]+$/.test(part)) {
    const id = Number(part);
    if (id > MAX_ID) return { error: `the ${idName} ${part} is larger than ${MAX_ID}` };
    return id;
  }
  if (NUMERIC_LOOKING_RE.test(part)) {
    if (part.startsWith("-")) return { error: `the ${idName} ${part} is negative` };
    return { error: `the ${idName} ${part} is not a whole decimal number` };
  }
  if (!NAME_RE.test(part)) {
    return {
      error: `the ${kind} name '${part}' has characters other than A-Z, a-z, 0-9, '.', '_' and '-'`,
    };
  }
  if (part.startsWith("-")) return { error: `the ${kind} name '${part}' starts with '-'` };
  if (/^\.+$/.test(part)) return { error: `the ${kind} name '${part}' is only dots` };
  if (part.length > MAX_NAME_LENGTH) {
    return {
      error: `the ${kind} name '${part}' is longer than ${MAX_NAME_LENGTH} characters`,
    };
  }
  return part;
}

/**
 * Parses a user string as containerd's `WithUser` accepts it: `"uid:gid"`, `"uid"`, `"name"`,
 * `"name:group"`, `"uid:group"` or `"name:gid"`. All-digit parts are ids (0 to 2^32 - 2), other
 * parts are names from the POSIX portable set (`A-Z a-z 0-9 . _ -`, not starting with `-`, at
 * most 32 characters). Unlike containerd, which takes anything that is not a number as a name,
 * malformed strings are rejected here, before the daemon is involved.
 *
 * @param user The user string, e.g. `"1000:1000"`, `"tester"` or `"tester:wheel"`.
 * @param field What the string is, named in error messages (e.g. `"image User"`).
 * @returns The parsed ids and names; names still need {@linkcode resolveUser}.
 * @throws {TypeError} When the string is empty, has an empty part (`"abc:"`, `":5"`), more than
 *   two parts (`"a:b:c"`), a negative, fractional or too large id, or an invalid name; the
 *   message names the field and the value, e.g. `Cannot parse user as 'abc:' is not uid:gid, uid, name or
 *   name:group: the group is empty`.
 *
 * @example
 * ```ts
 * import { parseUserSpec } from "@wfe/containerd/api";
 *
 * parseUserSpec("1000:1000"); // { input: "1000:1000", user: 1000, group: 1000 }
 * parseUserSpec("tester"); // { input: "tester", user: "tester", group: undefined }
 * ```
 */
export function parseUserSpec(user: string, field = "user"): UserSpec {
  const fail = (reason: string): never => {
    throw new TypeError(
      `Cannot parse ${field} as '${user}' is not uid:gid, uid, name or name:group: ${reason}`,
    );
  };
  if (typeof user !== "string") {
    throw new TypeError(`Cannot parse ${field} as ${String(user)}: expected a string`);
  }
  if (user === "") fail("the user is empty");
  const parts = user.split(":");
  if (parts.length > 2) fail(`it has ${parts.length} ':'-separated parts, at most 2 are allowed`);
  const parsedUser = parsePart(parts[0], "user");
  if (typeof parsedUser === "object") return fail(parsedUser.error);
  if (parts.length === 1) return { input: user, user: parsedUser, group: undefined };
  const parsedGroup = parsePart(parts[1], "group");
  if (typeof parsedGroup === "object") return fail(parsedGroup.error);
  return { input: user, user: parsedUser, group: parsedGroup };
}

/**
 * Tells whether resolving a user needs the image's `/etc/passwd` or `/etc/group`: false only for
 * a numeric `"uid:gid"`, which containerd applies as is (no supplementary groups are looked up
 * then, as with `ctr run --user uid:gid`).
 *
 * @param spec A parsed user string (or the string, which is parsed first).
 * @returns True when {@linkcode resolveUser} should get the image's files.
 * @throws {TypeError} When `spec` is a string that {@linkcode parseUserSpec} rejects.
 *
 * @example
 * ```ts
 * import { needsImageFiles, parseUserSpec } from "@wfe/containerd/api";
 *
 * needsImageFiles(parseUserSpec("65534:65534")); // false
 * needsImageFiles(parseUserSpec("1000")); // true: the gid comes from /etc/passwd
 * ```
 */
export function needsImageFiles(spec: UserSpec | string): boolean {
  const parsed = typeof spec === "string" ? parseUserSpec(spec) : spec;
  return !(typeof parsed.user === "number" && typeof parsed.group === "number");
}

function parseId(field: string): number | undefined {
  if (!/^[0-9]+$/.test(field)) return undefined;
  const id = Number(field);
  return id <= MAX_ID ? id : undefined;
}

function contentLines(text: string): string[] {
  return text.split("\n").map((line) => line.trim()).filter((line) =>
    line !== "" && !line.startsWith("#") && !line.startsWith("+") && !line.startsWith("-")
  );
}

/**
 * Parses `/etc/passwd` text. Blank lines, comments (`#`), NIS lines (`+`/`-`) and malformed lines
 * (no name, fewer than 4 fields, a uid or gid that is not a whole number up to 2^32 - 2) are
 * skipped; entries keep file order (the first entry wins on lookups, as in containerd).
 *
 * @param text The file's text.
 * @returns The well-formed entries.
 *
 * @example
 * ```ts
 * import { parsePasswd } from "@wfe/containerd/api";
 *
 * parsePasswd("root:x:0:0:root:/root:/bin/sh\n")[0].uid; // 0
 * ```
 */
export function parsePasswd(text: string): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const line of contentLines(text)) {
    const fields = line.split(":");
    if (fields.length < 4 || fields[0] === "") continue;
    const uid = parseId(fields[2]);
    const gid = parseId(fields[3]);
    if (uid === undefined || gid === undefined) continue;
    entries.push({ name: fields[0], uid, gid, home: fields[5] ?? "", shell: fields[6] ?? "" });
  }
  return entries;
}

/**
 * Parses `/etc/group` text. Blank lines, comments, NIS lines and malformed lines (no name, fewer
 * than 3 fields, a gid that is not a whole number) are skipped; member lists are split at commas
 * with empty names dropped.
 *
 * @param text The file's text.
 * @returns The well-formed entries, in file order.
 *
 * @example
 * ```ts
 * import { parseGroup } from "@wfe/containerd/api";
 *
 * parseGroup("wheel:x:10:root,tester\n")[0].members; // ["root", "tester"]
 * ```
 */
export function parseGroup(text: string): GroupEntry[] {
  const entries: GroupEntry[] = [];
  for (const line of contentLines(text)) {
    const fields = line.split(":");
    if (fields.length < 3 || fields[0] === "") continue;
    const gid = parseId(fields[2]);
    if (gid === undefined) continue;
    const members = (fields[3] ?? "").split(",").map((m) => m.trim()).filter((m) => m !== "");
    entries.push({ name: fields[0], gid, members });
  }
  return entries;
}

/**
 * Resolves a user string against an image's `/etc/passwd` and `/etc/group` the way containerd's
 * `WithUser` + `WithAdditionalGIDs` do:
 *
 * - `"uid:gid"`: both as given.
 * - `"uid"`: the gid of the first passwd entry with that uid, else 0 (also without a passwd).
 * - `"name"`: uid and gid from the first passwd entry with that name.
 * - `"name:group"`, `"uid:group"`, `"name:gid"`: the uid from passwd (names) or as given, the gid
 *   from the first `/etc/group` entry with that name (names) or as given.
 *
 * `additionalGids` starts with the primary gid, followed by the gids of the groups whose member
 * list names the user (skipping a group named like the user), when the user has a name (given,
 * or found in passwd by uid) and the image has `/etc/group`.
 *
 * @param spec A parsed user string, or the string itself.
 * @param files The image's `/etc/passwd` and `/etc/group` texts, absent when missing.
 * @param imageName The image, named in error messages.
 * @returns The uid, gid, additional gids and, when known, the user name.
 * @throws {TypeError} When `spec` is a string that {@linkcode parseUserSpec} rejects.
 * @throws {Error} When a user or group name is not in the image's files (or the file is
 *   missing), e.g. `Cannot resolve user 'abc': no such user in /etc/passwd of image
 *   wfe.test/busybox:one-layer`.
 *
 * @example
 * ```ts
 * import { resolveUser } from "@wfe/containerd/api";
 *
 * const files = {
 *   passwd: "tester:x:1000:1000::/home/tester:/bin/sh\n",
 *   group: "tester:x:1000:\nwheel:x:10:tester\n",
 * };
 * resolveUser("tester", files, "example:latest");
 * // { uid: 1000, gid: 1000, additionalGids: [1000, 10], username: "tester" }
 * ```
 */
export function resolveUser(
  spec: UserSpec | string,
  files: UserFiles,
  imageName: string,
): ResolvedUser {
  const parsed = typeof spec === "string" ? parseUserSpec(spec) : spec;
  const fail = (reason: string): never => {
    throw new Error(`Cannot resolve user '${parsed.input}': ${reason}`);
  };
  const passwd = files.passwd === undefined ? undefined : parsePasswd(files.passwd);
  const groups = files.group === undefined ? undefined : parseGroup(files.group);

  let uid: number;
  let gid: number;
  let username: string | undefined;
  if (typeof parsed.user === "string") {
    const name = parsed.user;
    const what = parsed.input === name ? "user" : `user '${name}'`;
    if (passwd === undefined) {
      return fail(`image ${imageName} has no /etc/passwd to look up ${what}`);
    }
    const entry = passwd.find((e) => e.name === name);
    if (!entry) return fail(`no such ${what} in /etc/passwd of image ${imageName}`);
    uid = entry.uid;
    gid = entry.gid;
    username = name;
  } else {
    uid = parsed.user;
    const entry = passwd?.find((e) => e.uid === uid);
    gid = entry?.gid ?? 0;
    username = entry?.name;
  }

  if (typeof parsed.group === "number") {
    gid = parsed.group;
  } else if (typeof parsed.group === "string") {
    const name = parsed.group;
    if (groups === undefined) {
      return fail(`image ${imageName} has no /etc/group to look up group '${name}'`);
    }
    const entry = groups.find((g) => g.name === name);
    if (!entry) return fail(`no such group '${name}' in /etc/group of image ${imageName}`);
    gid = entry.gid;
  }

  const additionalGids = [gid];
  if (username !== undefined && groups !== undefined) {
    for (const group of groups) {
      if (group.name === username || !group.members.includes(username)) continue;
      if (!additionalGids.includes(group.gid)) additionalGids.push(group.gid);
    }
  }
  const result: ResolvedUser = { uid, gid, additionalGids };
  if (username !== undefined) result.username = username;
  return result;
}
