/**
 * A private OCI registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1 with
 * a free port and storage in a temp dir, started and stopped by PID; images are pushed into it
 * with skopeo from archives built by tests/oci_archive.ts.
 *
 * @module
 */

import { buildImage, type BuiltImage, type ImageSpec } from "./oci_archive.ts";

/** A running registry. */
export interface TestRegistry extends AsyncDisposable {
  /** `127.0.0.1:<port>`. */
  host: string;
  /** The registry's process id. */
  pid: number;
  /** Builds an image and pushes it as `<host>/<repository>:<tag>`; returns its digests. */
  push(spec: ImageSpec, repository: string, tag: string): Promise<BuiltImage>;
  /** Stops the registry (SIGTERM, then SIGKILL) and removes its storage. */
  stop(): Promise<void>;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}): ${err}`);
  }
}

/** Starts a registry; it answers `GET /v2/` before this returns. */
export async function startRegistry(): Promise<TestRegistry> {
  const dir = await Deno.makeTempDir({ prefix: "wfe-registry-" });
  const host = `127.0.0.1:${freePort()}`;
  const config = `${dir}/config.yml`;
  await Deno.writeTextFile(
    config,
    [
      "version: 0.1",
      "log:",
      "  level: error",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${dir}/data`,
      "http:",
      `  addr: ${host}`,
      "",
    ].join("\n"),
  );
  const child = new Deno.Command("docker-registry", {
    args: ["serve", config],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* exited */ }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
    }, 5000);
    await child.status;
    clearTimeout(timer);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const res = await fetch(`http://${host}/v2/`);
      await res.body?.cancel();
      if (res.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not answer on ${host} within 10 s`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host,
    pid: child.pid,
    async push(spec, repository, tag) {
      const built = await buildImage(spec);
      const archive = `${dir}/push-${crypto.randomUUID()}.tar`;
      await Deno.writeFile(archive, built.archive);
      try {
        await run("skopeo", [
          "copy",
          "--quiet",
          "--dest-tls-verify=false",
          `oci-archive:${archive}`,
          `docker://${host}/${repository}:${tag}`,
        ]);
      } finally {
        await Deno.remove(archive).catch(() => {});
      }
      return built;
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
