import assert from "node:assert/strict";
import { defaultSeccompProfile } from "../../lib/oci/seccomp.ts";
import { defaultSpec } from "../../lib/oci/spec.ts";

function allowed(profile: ReturnType<typeof defaultSeccompProfile>, name: string): boolean {
  return profile.syscalls.some((r) =>
    r.action === "SCMP_ACT_ALLOW" && r.names.includes(name) && !r.args
  );
}

Deno.test("defaultSeccompProfile() allows the common syscalls and refuses keyrings, unshare, mount and namespace clones", () => {
  const profile = defaultSeccompProfile(defaultSpec("ns", "id"), "x86_64");
  assert.equal(profile.defaultAction, "SCMP_ACT_ERRNO");
  assert.deepEqual(profile.architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
  for (
    const name of ["read", "write", "openat", "execve", "clock_gettime", "arch_prctl", "chroot"]
  ) {
    assert.ok(allowed(profile, name), `${name} should be allowed`);
  }
  for (
    const name of ["keyctl", "add_key", "request_key", "unshare", "mount", "bpf", "setns", "reboot"]
  ) {
    assert.ok(!profile.syscalls.some((r) => r.names.includes(name)), `${name} should be refused`);
  }
  const clone = profile.syscalls.find((r) => r.names.includes("clone"));
  assert.deepEqual(clone?.args, [{
    index: 0,
    value: 0x7e020000,
    valueTwo: 0,
    op: "SCMP_CMP_MASKED_EQ",
  }]);
  const clone3 = profile.syscalls.find((r) => r.names.includes("clone3"));
  assert.deepEqual(clone3, { names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: 38 });
  const personalities = profile.syscalls.filter((r) => r.names.includes("personality"));
  assert.deepEqual(personalities.map((r) => r.args?.[0].value), [
    0,
    8,
    0x20000,
    0x20008,
    0xffffffff,
  ]);
});

Deno.test("defaultSeccompProfile() follows the bounding capabilities (CAP_SYS_ADMIN unlocks unshare and clone)", () => {
  const spec = defaultSpec("ns", "id");
  spec.process.capabilities.bounding = [...spec.process.capabilities.bounding, "CAP_SYS_ADMIN"];
  const admin = defaultSeccompProfile(spec, "aarch64");
  assert.deepEqual(admin.architectures, ["SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"]);
  for (const name of ["unshare", "mount", "setns", "clone", "clone3", "set_tls"]) {
    assert.ok(allowed(admin, name), `${name} should be allowed with CAP_SYS_ADMIN`);
  }
  assert.ok(!admin.syscalls.some((r) => r.names.includes("clone") && r.args), "no clone mask");
  const noChroot = defaultSpec("ns", "id");
  noChroot.process.capabilities.bounding = noChroot.process.capabilities.bounding.filter((c) =>
    c !== "CAP_SYS_CHROOT"
  );
  assert.ok(!allowed(defaultSeccompProfile(noChroot, "x86_64"), "chroot"));
});
