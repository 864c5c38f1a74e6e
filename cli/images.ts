/**
 * `images ls|rm`, `chain-id` and `manifest`: the images in containerd and
 * what they resolve to; `images pull` and `images import` bring them in
 * (cli/images_pull.ts).
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import {
  type Cli,
  CliError,
  err,
  errorLine,
  examples,
  formatAge,
  formatBytes,
  out,
  PROGRAM,
  table,
} from "./common.ts";
import { readAllContent } from "../lib/content/read.ts";
import type { ResolvedImage } from "../lib/image/resolve.ts";
import { formatPlatform } from "../lib/oci/platform.ts";
import { registerPullImport } from "./images_pull.ts";

/** Loaded when a command runs, so that `--help` and other commands do not load it. */
const resolver = () => import("../lib/image/resolve.ts");

function shortDigest(digest: string): string {
  return digest.replace(/^sha256:/, "").slice(0, 12);
}

/** Registers the `images` group, `chain-id` and `manifest` on the program. */
export function registerImages(program: Command<[], Record<string, unknown>>, cli: Cli): void {
  const images = program
    .command("images")
    .summary("pull, import, list and remove images")
    .description("The images stored in the namespace: pull them from a registry, import archives.")
    .addHelpText(
      "after",
      examples(
        `${PROGRAM} images pull localhost:5000/team/app:1`,
        `${PROGRAM} images import app.tar`,
        `${PROGRAM} images ls`,
        `${PROGRAM} images rm alpine:3.18`,
      ),
    );
  registerPullImport(images, cli);

  images
    .command("ls")
    .alias("list")
    .summary("list images")
    .description(
      "List the images in the namespace, with the size and platform of the manifest that resolves " +
        "for this host (or --platform).",
    )
    .option("-q, --quiet", "print only the names")
    .option("--platform <os/arch>", "resolve for this platform (default: this host's)")
    .option("--json", "print JSON")
    .addHelpText("after", examples(`${PROGRAM} images ls`, `${PROGRAM} -n wfe-test images ls -q`))
    .action(async (opts) => {
      await using client = await cli.connect();
      const { images: list } = await client.images.list({});
      list.sort((a, b) => a.name.localeCompare(b.name));
      if (opts.quiet) {
        out(list.map((i) => `${i.name}\n`).join(""));
        return;
      }
      const rows = await Promise.all(list.map(async (image) => {
        let resolved: ResolvedImage | undefined;
        let problem: string | undefined;
        try {
          resolved = await (await resolver()).resolveImage(client, image.name, {
            platform: opts.platform,
          });
        } catch (e) {
          problem = errorLine(e);
        }
        const size = resolved
          ? resolved.layers.reduce((sum, l) => sum + l.size, resolved.manifest.config.size)
          : undefined;
        const created = image.createdAt ? image.createdAt.seconds * 1000 : undefined;
        return { image, resolved, size, created, problem };
      }));
      if (opts.json) {
        out(
          JSON.stringify(
            rows.map(({ image, resolved, size, created, problem }) => ({
              name: image.name,
              digest: image.target?.digest ?? "",
              mediaType: image.target?.mediaType ?? "",
              manifestDigest: resolved?.manifestDigest,
              platform: resolved ? formatPlatform(resolved.platform) : undefined,
              size,
              chainId: resolved?.chainId,
              createdAt: created !== undefined ? new Date(created).toISOString() : undefined,
              error: problem,
            })),
            null,
            2,
          ) + "\n",
        );
        return;
      }
      const now = Date.now();
      out(table(
        ["NAME", "DIGEST", "SIZE", "PLATFORM", "CREATED"],
        rows.map(({ image, resolved, size, created }) => [
          image.name,
          shortDigest(image.target?.digest ?? ""),
          size !== undefined ? formatBytes(size) : "-",
          resolved ? formatPlatform(resolved.platform) : "-",
          created !== undefined ? `${formatAge(now - created)} ago` : "-",
        ]),
      ));
    });

  images
    .command("rm")
    .alias("remove")
    .summary("remove images")
    .description(
      "Remove image records (short names resolve as for run). Content and snapshots that nothing " +
        "else uses are removed by containerd's garbage collector.",
    )
    .argument("<ref...>", "image references")
    .addHelpText(
      "after",
      examples(`${PROGRAM} images rm alpine:3.18 docker.io/library/busybox:latest`),
    )
    .action(async (refs) => {
      await using client = await cli.connect();
      for (const ref of refs) {
        try {
          const name = await (await resolver()).imageExists(client, ref);
          if (!name) throw new CliError(`no image ${ref} in namespace ${client.namespace}`);
          await client.images.delete({ name });
          out(`removed ${name}\n`);
        } catch (e) {
          err(`error: ${errorLine(e)}\n`);
          cli.exitCode = 125;
        }
      }
    });

  program
    .command("chain-id")
    .summary("print an image's chain ID (the snapshot a container's rootfs starts from)")
    .description(
      "Print the chain ID of an image's layers for this host's platform (or --platform): the name " +
        "of the committed snapshot that containers of the image are prepared from.",
    )
    .argument("<image>", "image reference")
    .option("--platform <os/arch>", "resolve for this platform (default: this host's)")
    .addHelpText(
      "after",
      examples(
        `${PROGRAM} chain-id alpine:3.18`,
        `${PROGRAM} chain-id --platform linux/arm64 alpine:3.18`,
      ),
    )
    .action(async (ref, opts) => {
      await using client = await cli.connect();
      const image = await (await resolver()).resolveImage(client, ref, { platform: opts.platform });
      out(`${image.chainId}\n`);
    });

  program
    .command("manifest")
    .summary("print an image's manifest (or config) for a platform")
    .description(
      "Print the manifest that an image resolves to for this host's platform (or --platform), as " +
        "stored in the content store, indented; --config prints the image config instead.",
    )
    .argument("<image>", "image reference")
    .option("--platform <os/arch>", "resolve for this platform (default: this host's)")
    .option("--config", "print the image config instead of the manifest")
    .addHelpText(
      "after",
      examples(
        `${PROGRAM} manifest alpine:3.18`,
        `${PROGRAM} manifest --config alpine:3.18 | jq .config.Env`,
      ),
    )
    .action(async (ref, opts) => {
      await using client = await cli.connect();
      const image = await (await resolver()).resolveImage(client, ref, { platform: opts.platform });
      const digest = opts.config ? image.configDigest : image.manifestDigest;
      const bytes = await readAllContent(client, digest);
      out(JSON.stringify(JSON.parse(new TextDecoder().decode(bytes)), null, 2) + "\n");
    });
}
