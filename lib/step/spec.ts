/**
 * A step's runtime spec from resolved parts (image config, user), without I/O.
 *
 * @module
 */

import { defaultSeccompProfile, kernelAtLeast } from "../oci/seccomp.ts";
import {
  buildSpec,
  type ImageProcessConfig,
  type OciSpec,
  type SpecOpt,
  withArgs,
  withBindMounts,
  withCpus,
  withCwd,
  withEnv,
  withImageConfig,
  withMemoryLimit,
  withNetwork,
  withUser,
} from "../oci/spec.ts";
import type { ValidatedStep } from "./config.ts";

/** The largest spec sent: containerd's 16 MiB message limit, less room for the rest of the request. */
const MAX_SPEC_BYTES = 15 * 1024 * 1024;

/**
 * Builds a step's runtime spec from resolved parts, without I/O: containerd's
 * default spec, the image config, then the step (run, entrypoint or command, env,
 * working dir, user and capabilities, volumes, network, limits).
 *
 * @throws {TypeError} When neither the step nor the image gives a command.
 */
export function buildStepSpec(
  step: ValidatedStep,
  imageConfig: ImageProcessConfig | undefined,
  user: { uid: number; gid: number; additionalGids?: number[] },
  namespace: string,
  containerId: string,
): OciSpec {
  const opts: SpecOpt[] = [withImageConfig(imageConfig)];
  if (step.run !== undefined) opts.push(withArgs(["/bin/sh", "-c", step.run]));
  else if (step.entrypoint !== undefined) {
    opts.push(withArgs([...step.entrypoint, ...step.command ?? []]));
  } else if (step.command !== undefined) {
    opts.push(withArgs([...(imageConfig?.Entrypoint ?? []), ...step.command]));
  }
  opts.push(withEnv(step.envEntries));
  if (step.workingDir !== undefined) opts.push(withCwd(step.workingDir));
  opts.push(withUser(user.uid, user.gid, user.additionalGids));
  if (step.volumes?.length) {
    opts.push(withBindMounts(step.volumes, { recursiveReadonly: kernelAtLeast(5, 12) }));
  }
  opts.push(withNetwork(step.network, step.network === "host" ? hostName() : undefined));
  if (step.memoryBytes !== undefined) opts.push(withMemoryLimit(step.memoryBytes));
  if (step.cpus !== undefined) opts.push(withCpus(step.cpus));
  const spec = buildSpec(namespace, containerId, opts);
  if (step.seccompProfile === "default") spec.linux.seccomp = defaultSeccompProfile(spec);
  else if (step.seccompProfile) spec.linux.seccomp = step.seccompProfile;
  const specBytes = new TextEncoder().encode(JSON.stringify(spec)).length;
  if (specBytes > MAX_SPEC_BYTES) {
    throw new RangeError(
      `Cannot run image '${step.image}': the runtime spec would be ${specBytes} bytes, more than ` +
        `the ${MAX_SPEC_BYTES} bytes a containerd message may carry (is 'run', 'command' or 'env' ` +
        "that large?)",
    );
  }
  if (spec.process.args.length === 0) {
    throw new TypeError(
      `Cannot run image '${step.image}': it has no Entrypoint or Cmd and the step gives no ` +
        "'run' or 'command'",
    );
  }
  return spec;
}

function hostName(): string | undefined {
  try {
    return Deno.hostname();
  } catch {
    return undefined;
  }
}
