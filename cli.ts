/**
 * Command line of @wfe/containerd. Until the full CLI lands it prints the
 * client and server versions:
 *
 * ```sh
 * deno run -A cli.ts [--address ADDR] [--namespace NS] [version]
 * ```
 *
 * @module
 */

import denoJson from "./deno.json" with { type: "json" };
import { connect, defaultAddress } from "./mod.ts";

/** Runs the command line with `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let address = defaultAddress();
  let namespace: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--address" || arg === "-a") address = args[++i] ?? "";
    else if (arg.startsWith("--address=")) address = arg.slice("--address=".length);
    else if (arg === "--namespace" || arg === "-n") namespace = args[++i];
    else if (arg === "--help" || arg === "-h") {
      console.log(
        "Usage: deno run -A cli.ts [--address ADDR] [--namespace NS] version\n\n" +
          "Prints the client and containerd server versions.\n\n" +
          "Example:\n  deno run -A cli.ts --address unix:///run/containerd/containerd.sock version",
      );
      return 0;
    } else rest.push(arg);
  }
  const command = rest[0] ?? "version";
  if (command !== "version") {
    console.error(`error: unknown command '${command}' (available: version)`);
    return 125;
  }
  console.log(`Client:\n  Version: ${denoJson.version}\n  Deno:    ${Deno.version.deno}`);
  try {
    await using client = await connect(address, { namespace });
    console.log(
      `Server:\n  Address:  ${address}\n  Version:  ${client.serverVersion.version}\n` +
        `  Revision: ${client.serverVersion.revision}`,
    );
    return 0;
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    return 125;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
