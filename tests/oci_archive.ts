/**
 * Builds OCI image-layout tar archives in pure TypeScript, importable with
 * `ctr images import`, plus the two busybox test images used by the containerd harness.
 *
 * Output is deterministic (fixed mtimes, uid/gid 0, sorted JSON keys as written here), so the
 * digests are stable from one run to the next on the same Deno version.
 *
 * @module
 */

import { encodeTarHeader, TAR_BLOCK } from "../lib/archive/tar_write.ts";
export { tarHeaderChecksum } from "../lib/archive/tar_write.ts";

/** A regular file in a layer. */
export interface FileEntry {
  /** Entry kind. */
  type: "file";
  /** Path inside the image, e.g. `/bin/busybox` (a leading `/` is stripped in the tar). */
  path: string;
  /** Permission bits, default `0o644`. */
  mode?: number;
  /** File content; strings are written as UTF-8. */
  content: Uint8Array | string;
}

/** A directory in a layer. */
export interface DirEntry {
  /** Entry kind. */
  type: "dir";
  /** Path inside the image. */
  path: string;
  /** Permission bits (may include sticky `0o1000`), default `0o755`. */
  mode?: number;
}

/** A symbolic link in a layer. */
export interface SymlinkEntry {
  /** Entry kind. */
  type: "symlink";
  /** Path of the link inside the image. */
  path: string;
  /** Link target, written as is. */
  target: string;
}

/** One entry of a tar archive / image layer. */
export type TarEntry = FileEntry | DirEntry | SymlinkEntry;

/** The fixed modification time (seconds since the epoch) written for every tar entry. */
export const FIXED_MTIME = 1_700_000_000;

/** OCI media types used in the archives. */
export const MediaTypes = {
  layer: "application/vnd.oci.image.layer.v1.tar+gzip",
  config: "application/vnd.oci.image.config.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  index: "application/vnd.oci.image.index.v1+json",
} as const;

const BLOCK = TAR_BLOCK;
const encoder = new TextEncoder();

function toBytes(content: Uint8Array | string): Uint8Array {
  return typeof content === "string" ? encoder.encode(content) : content;
}

function tarHeader(entry: TarEntry, size: number): Uint8Array {
  if (entry.path.replace(/^\/+/, "").replace(/\/+$/, "") === "") throw new Error("tar: empty path");
  const mode = entry.type === "file"
    ? entry.mode ?? 0o644
    : entry.type === "dir"
    ? entry.mode ?? 0o755
    : 0o777;
  return encodeTarHeader({
    path: entry.path,
    type: entry.type,
    mode,
    uid: 0,
    gid: 0,
    size,
    mtime: FIXED_MTIME,
    linkname: entry.type === "symlink" ? entry.target : "",
    uname: "root",
    gname: "root",
  });
}

/**
 * Writes a ustar archive: one 512-byte header per entry, file data padded to 512 bytes, and two
 * zero blocks at the end. Entries are written in the given order.
 */
export function writeTar(entries: readonly TarEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const entry of entries) {
    const data = entry.type === "file" ? toBytes(entry.content) : new Uint8Array(0);
    const header = tarHeader(entry, data.length);
    parts.push(header);
    total += BLOCK;
    if (data.length > 0) {
      const padded = Math.ceil(data.length / BLOCK) * BLOCK;
      const block = new Uint8Array(padded);
      block.set(data);
      parts.push(block);
      total += padded;
    }
  }
  total += 2 * BLOCK;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Returns `sha256:<hex>` of `data`. */
export async function sha256Digest(data: Uint8Array): Promise<string> {
  const hash = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return "sha256:" + Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join(
    "",
  );
}

/** Gzip-compresses `data` with the Web `CompressionStream`. */
export async function gzip(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Maps `Deno.build.arch` to the OCI architecture name (`amd64`, `arm64`). */
export function ociArch(arch: string = Deno.build.arch): string {
  switch (arch) {
    case "x86_64":
      return "amd64";
    case "aarch64":
      return "arm64";
    default:
      return arch;
  }
}

/** Maps `Deno.build.os` to the OCI OS name. */
export function ociOs(os: string = Deno.build.os): string {
  return os === "darwin" ? "darwin" : os === "windows" ? "windows" : "linux";
}

/** What to build: an image name and its layers, bottom first. */
export interface ImageSpec {
  /** Full image name, e.g. `wfe.test/busybox:one-layer`. */
  name: string;
  /** Layers, bottom first; each is the list of tar entries of that layer. */
  layers: readonly (readonly TarEntry[])[];
  /** OCI OS, default from `Deno.build.os` (`linux`). */
  os?: string;
  /** OCI architecture, default from `Deno.build.arch` (`amd64` / `arm64`). */
  architecture?: string;
  /** Image config environment, default a standard PATH. */
  env?: string[];
  /** Image config Cmd, default `["/bin/sh"]`. */
  cmd?: string[];
  /** Image config WorkingDir, default `/`. */
  workingDir?: string;
  /** Image config Entrypoint, default none. */
  entrypoint?: string[];
  /** Image config User, default none. */
  user?: string;
  /** Layers that are not tars (e.g. Wasm modules), after `layers`: no diff ID. */
  rawLayers?: readonly { mediaType: string; data: Uint8Array }[];
}

/** Digests and sizes of a built image, to compare with what containerd reports. */
export interface ImageDigests {
  /** Digest of the manifest blob (the image target digest in containerd). */
  manifestDigest: string;
  /** Size in bytes of the manifest blob. */
  manifestSize: number;
  /** Digest of the config blob. */
  configDigest: string;
  /** Size in bytes of the config blob. */
  configSize: number;
  /** Digests of the compressed (gzip) layer blobs, bottom first. */
  layerDigests: string[];
  /** Sizes of the compressed layer blobs, bottom first. */
  layerSizes: number[];
  /** sha256 of each uncompressed layer tar (config `rootfs.diff_ids`), bottom first. */
  diffIds: string[];
}

/** A built image: the archive bytes and a description of its digests. */
export interface BuiltImage extends ImageDigests {
  /** Full image name (the `io.containerd.image.name` annotation). */
  name: string;
  /** Tag (the `org.opencontainers.image.ref.name` annotation). */
  tag: string;
  /** OCI platform, e.g. `linux/amd64` (use as `ctr images import --platform`). */
  platform: string;
  /** The OCI image-layout tar archive. */
  archive: Uint8Array;
}

/** Returns the tag of an image reference (`latest` when none). */
export function imageTag(name: string): string {
  const slash = name.lastIndexOf("/");
  const colon = name.lastIndexOf(":");
  return colon > slash ? name.slice(colon + 1) : "latest";
}

/** Builds an OCI image-layout archive and describes its digests. */
export async function buildImage(spec: ImageSpec): Promise<BuiltImage> {
  const os = spec.os ?? ociOs();
  const architecture = spec.architecture ?? ociArch();
  const blobs = new Map<string, Uint8Array>();

  const layerDigests: string[] = [];
  const layerSizes: number[] = [];
  const diffIds: string[] = [];
  for (const entries of spec.layers) {
    const tar = writeTar(entries);
    diffIds.push(await sha256Digest(tar));
    const gz = await gzip(tar);
    const digest = await sha256Digest(gz);
    blobs.set(digest, gz);
    layerDigests.push(digest);
    layerSizes.push(gz.length);
  }
  const layerTypes = layerDigests.map(() => MediaTypes.layer as string);
  for (const raw of spec.rawLayers ?? []) {
    const digest = await sha256Digest(raw.data);
    blobs.set(digest, raw.data);
    layerDigests.push(digest);
    layerSizes.push(raw.data.length);
    layerTypes.push(raw.mediaType);
  }

  const config = {
    architecture,
    os,
    config: {
      Env: spec.env ?? ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      Cmd: spec.cmd ?? ["/bin/sh"],
      WorkingDir: spec.workingDir ?? "/",
      ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
      ...(spec.user ? { User: spec.user } : {}),
    },
    rootfs: { type: "layers", diff_ids: diffIds },
    history: [...spec.layers, ...spec.rawLayers ?? []].map((_, i) => ({
      created: new Date(FIXED_MTIME * 1000).toISOString(),
      created_by: `wfe test layer ${i + 1}`,
    })),
  };
  const configBytes = encoder.encode(JSON.stringify(config));
  const configDigest = await sha256Digest(configBytes);
  blobs.set(configDigest, configBytes);

  const manifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.manifest,
    config: { mediaType: MediaTypes.config, digest: configDigest, size: configBytes.length },
    layers: layerDigests.map((digest, i) => ({
      mediaType: layerTypes[i],
      digest,
      size: layerSizes[i],
    })),
  };
  const manifestBytes = encoder.encode(JSON.stringify(manifest));
  const manifestDigest = await sha256Digest(manifestBytes);
  blobs.set(manifestDigest, manifestBytes);

  const tag = imageTag(spec.name);
  const index = {
    schemaVersion: 2,
    mediaType: MediaTypes.index,
    manifests: [{
      mediaType: MediaTypes.manifest,
      digest: manifestDigest,
      size: manifestBytes.length,
      annotations: {
        "io.containerd.image.name": spec.name,
        "org.opencontainers.image.ref.name": tag,
      },
      platform: { architecture, os },
    }],
  };

  const entries: TarEntry[] = [
    { type: "file", path: "oci-layout", content: JSON.stringify({ imageLayoutVersion: "1.0.0" }) },
    { type: "file", path: "index.json", content: JSON.stringify(index) },
    { type: "dir", path: "blobs" },
    { type: "dir", path: "blobs/sha256" },
  ];
  for (const [digest, data] of [...blobs].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)) {
    entries.push({ type: "file", path: `blobs/sha256/${digest.slice(7)}`, content: data });
  }

  return {
    name: spec.name,
    tag,
    platform: `${os}/${architecture}`,
    archive: writeTar(entries),
    manifestDigest,
    manifestSize: manifestBytes.length,
    configDigest,
    configSize: configBytes.length,
    layerDigests,
    layerSizes,
    diffIds,
  };
}

/** Builds an OCI image-layout archive (the bytes only; see {@link buildImage} for digests). */
export async function buildImageArchive(spec: ImageSpec): Promise<Uint8Array> {
  return (await buildImage(spec)).archive;
}

// ---------------------------------------------------------------------------------------------
// Test images

/** Name of the one-layer busybox test image. */
export const ONE_LAYER_IMAGE = "wfe.test/busybox:one-layer";
/** Name of the three-layer busybox test image. */
export const THREE_LAYER_IMAGE = "wfe.test/busybox:three-layer";

/** Applets linked to /bin/busybox in the test images. */
export const BUSYBOX_APPLETS: readonly string[] = [
  "sh",
  "echo",
  "cat",
  "ls",
  "sleep",
  "env",
  "id",
  "true",
  "false",
  "nc",
  "wget",
  "httpd",
  "printf",
  "test",
  "pwd",
  "whoami",
  "hostname",
  "ip",
  "mkdir",
  "rm",
  "touch",
  "grep",
  "head",
  "tail",
  "wc",
  "stat",
  "kill",
  "ps",
  "uname",
  "date",
  "mount",
  "df",
  "cp",
  "mv",
  "chmod",
  "readlink",
  "dd",
  "sha256sum",
  "md5sum",
  "yes",
  "seq",
  "tr",
  "sed",
  "xargs",
];

/** Default places to look for the static busybox (package busybox-static). */
export const BUSYBOX_CANDIDATES: readonly string[] = ["/bin/busybox", "/usr/bin/busybox"];

/** True if `elf` is an ELF executable without a PT_INTERP segment (statically linked). */
export function isStaticElf(elf: Uint8Array): boolean {
  if (elf.length < 64 || elf[0] !== 0x7f || elf[1] !== 0x45 || elf[2] !== 0x4c || elf[3] !== 0x46) {
    return false;
  }
  const is64 = elf[4] === 2;
  const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const le = elf[5] === 1;
  const phoff = is64 ? Number(view.getBigUint64(0x20, le)) : view.getUint32(0x1c, le);
  const phentsize = view.getUint16(is64 ? 0x36 : 0x2a, le);
  const phnum = view.getUint16(is64 ? 0x38 : 0x2c, le);
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 > elf.length) return false;
    if (view.getUint32(off, le) === 3) return false; // PT_INTERP: dynamically linked
  }
  return true;
}

/** Reads the static busybox binary, failing clearly when only a dynamic one is installed. */
export async function readStaticBusybox(path?: string): Promise<Uint8Array> {
  const candidates = path ? [path] : BUSYBOX_CANDIDATES;
  const seen: string[] = [];
  for (const candidate of candidates) {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(candidate);
    } catch {
      continue;
    }
    if (isStaticElf(bytes)) return bytes;
    seen.push(candidate);
  }
  throw new Error(
    seen.length > 0
      ? `busybox at ${seen.join(", ")} is not statically linked: install busybox-static`
      : `busybox not found (${candidates.join(", ")}): install busybox-static ` +
        "(run lima/provision.sh as root)",
  );
}

/** The base layer of the test images: static busybox, applet links, dirs, passwd and group. */
export function busyboxBaseLayer(busybox: Uint8Array): TarEntry[] {
  const dirs: [string, number][] = [
    ["/bin", 0o755],
    ["/dev", 0o755],
    ["/etc", 0o755],
    ["/home", 0o755],
    ["/home/tester", 0o755],
    ["/proc", 0o555],
    ["/root", 0o700],
    ["/run", 0o755],
    ["/sys", 0o555],
    ["/tmp", 0o1777],
    ["/usr", 0o755],
    ["/usr/bin", 0o755],
    ["/var", 0o755],
  ];
  const entries: TarEntry[] = dirs.map(([path, mode]) => ({ type: "dir", path, mode }));
  entries.push({ type: "file", path: "/bin/busybox", mode: 0o755, content: busybox });
  for (const applet of BUSYBOX_APPLETS) {
    entries.push({ type: "symlink", path: `/bin/${applet}`, target: "busybox" });
  }
  entries.push(
    {
      type: "file",
      path: "/etc/passwd",
      content: "root:x:0:0:root:/root:/bin/sh\n" +
        "tester:x:1000:1000:tester:/home/tester:/bin/sh\n" +
        "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    },
    {
      type: "file",
      path: "/etc/group",
      content: "root:x:0:\ntester:x:1000:\nnogroup:x:65534:\n",
    },
    { type: "file", path: "/etc/hostname", content: "wfe-test\n" },
  );
  return entries;
}

/** Both test images, built. */
export interface TestImages {
  /** `wfe.test/busybox:one-layer`. */
  oneLayer: BuiltImage;
  /** `wfe.test/busybox:three-layer`: base layer, then /layer2.txt, then /layer3.txt. */
  threeLayer: BuiltImage;
}

/** Builds the one-layer and three-layer busybox test images. */
export async function buildTestImages(options: { busyboxPath?: string } = {}): Promise<TestImages> {
  const base = busyboxBaseLayer(await readStaticBusybox(options.busyboxPath));
  const oneLayer = await buildImage({ name: ONE_LAYER_IMAGE, layers: [base] });
  const threeLayer = await buildImage({
    name: THREE_LAYER_IMAGE,
    layers: [
      base,
      [{ type: "file", path: "/layer2.txt", content: "layer two\n" }],
      [{ type: "file", path: "/layer3.txt", content: "layer three\n" }],
    ],
  });
  return { oneLayer, threeLayer };
}
