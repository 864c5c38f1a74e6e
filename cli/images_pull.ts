/**
 * `images pull` and `images import`: bring images into the namespace, with
 * progress on stderr (cli/progress.ts) and the image names on stdout.
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { concat } from "../lib/_util/bytes.ts";
import type { StoredImage } from "../lib/image/store.ts";
import type { RegistryCredentials } from "../lib/registry/auth.ts";
import { parseReference } from "../lib/oci/reference.ts";
import { type Cli, CliError, err, examples, formatBytes, out, PROGRAM } from "./common.ts";
import { progressDisplay, progressMode } from "./progress.ts";

/** Loaded when a command runs, so that `--help` and other commands do not load it. */
const importer = () => import("../lib/image/import.ts");

/** Loaded when a command runs, so that `--help` and other commands do not load it. */
const puller = () => import("../lib/image/pull.ts");

async function readStdin(): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of Deno.stdin.readable) chunks.push(chunk);
  const text = new TextDecoder().decode(concat(chunks));
  return text.replace(/\r?\n$/, "");
}

function summary(verb: string, image: StoredImage, ms: number): string {
  const moved = verb === "pulled" ? "downloaded" : "copied";
  return `${verb} ${image.name} ${image.target.digest} (${image.fetched} blob(s) new to the ` +
    `namespace, ${image.existed} present, ${formatBytes(image.bytes)} ${moved} in ` +
    `${(ms / 1000).toFixed(1)} s)\n`;
}

/** Registers `pull` and `import` under the `images` group. */
export function registerPullImport(
  images: Command<[], Record<string, unknown>>,
  cli: Cli,
): void {
  images
    .command("pull")
    .summary("pull an image from a registry")
    .description(
      "Pull an image for this host's platform (or --platform) from its registry into the " +
        "namespace and unpack it, as `ctr images pull` does. Progress goes to stderr (bars on a " +
        "terminal, plain lines otherwise, JSON lines with --json); stdout gets the image name. " +
        "Credentials: --user, else Docker's config.json. Plain HTTP is used for localhost and " +
        "127.0.0.1, and for the registry with --plain-http.",
    )
    .argument("<ref>", "image reference, e.g. localhost:5000/team/app:1")
    .option("--platform <os/arch>", "the platform to pull (default: this host's)")
    .option("--snapshotter <name>", "unpack into this snapshotter (default: the namespace's)")
    .option("--plain-http", "reach this registry over plain HTTP (a private test registry)")
    .option("--ca-cert <file>", "trust this CA certificate (PEM) for the registry")
    .option("-u, --user <user:password>", "registry credentials")
    .option("--password-stdin", "read the password from stdin (with --user NAME)")
    .option("--json", "progress as JSON lines on stderr")
    .option("-q, --quiet", "no progress")
    .addHelpText(
      "after",
      examples(
        `${PROGRAM} images pull localhost:5000/team/app:1`,
        `${PROGRAM} images pull --plain-http --platform linux/arm64 registry.test:5000/app:1`,
        `echo "$TOKEN" | ${PROGRAM} images pull --user ci --password-stdin private.test/app:1`,
      ),
    )
    .action(async (ref, opts) => {
      const reference = parseReference(ref);
      let auth: Record<string, RegistryCredentials> | undefined;
      if (opts.user !== undefined) {
        const colon = opts.user.indexOf(":");
        const username = colon >= 0 ? opts.user.slice(0, colon) : opts.user;
        const password = opts.passwordStdin
          ? await readStdin()
          : colon >= 0
          ? opts.user.slice(colon + 1)
          : undefined;
        if (password === undefined) {
          throw new CliError(
            "--user NAME needs a password: --user NAME:PASSWORD or --password-stdin",
          );
        }
        auth = { [reference.registry]: { username, password } };
      } else if (opts.passwordStdin) {
        throw new CliError("--password-stdin needs --user NAME");
      }
      const caCerts = opts.caCert ? [await Deno.readTextFile(opts.caCert)] : undefined;
      await using client = await cli.connect();
      const display = progressDisplay(progressMode(opts));
      const started = performance.now();
      try {
        const image = await (await puller()).pull(client, ref, {
          platform: opts.platform,
          snapshotter: opts.snapshotter,
          plainHttp: opts.plainHttp ? [reference.registry] : undefined,
          registryAuth: auth,
          caCerts,
          onProgress: (e) => display.onProgress(e),
        });
        display.finish();
        if (!opts.quiet) err(summary("pulled", image, performance.now() - started));
        out(`${image.name}\n`);
      } catch (e) {
        display.finish();
        throw e;
      }
    });

  images
    .command("import")
    .summary("import images from an archive")
    .description(
      "Import the images of an OCI image layout archive (skopeo's oci-archive, `ctr images " +
        "export`) or a `docker save` archive, plain or gzip'd, from a file or stdin (-), and " +
        "unpack them for this host's platform (or --platform). Names come from the archive; " +
        "--base-name names images whose reference is only a tag. stdout gets the names.",
    )
    .argument("<file>", "the archive, or - for stdin")
    .option("--platform <os/arch>", "the platform to import (default: this host's)")
    .option("--snapshotter <name>", "unpack into this snapshotter (default: the namespace's)")
    .option("--base-name <name>", "name tag-only images <name>:<tag>")
    .option("--json", "progress as JSON lines on stderr")
    .option("-q, --quiet", "no progress")
    .addHelpText(
      "after",
      examples(
        `${PROGRAM} images import app.tar`,
        `docker save app:1 | ${PROGRAM} images import -`,
        `${PROGRAM} images import --base-name registry.test/app app-oci.tar.gz`,
      ),
    )
    .action(async (file, opts) => {
      await using client = await cli.connect();
      const display = progressDisplay(progressMode(opts));
      const started = performance.now();
      try {
        const result = await (await importer()).importImages(
          client,
          file === "-" ? Deno.stdin.readable : file,
          {
            platform: opts.platform,
            snapshotter: opts.snapshotter,
            baseName: opts.baseName,
            onProgress: (e) => display.onProgress(e),
          },
        );
        display.finish();
        for (const image of result.images) {
          if (!opts.quiet) err(summary("imported", image, performance.now() - started));
          out(`${image.name}\n`);
        }
        for (const target of result.unnamed) {
          err(`skipped ${target.digest}: no name in the archive (give --base-name)\n`);
        }
        if (result.images.length === 0) throw new CliError(`no named image in ${file}`);
      } catch (e) {
        display.finish();
        throw e;
      }
    });
}
