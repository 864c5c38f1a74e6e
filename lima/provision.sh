#!/usr/bin/env bash
# Idempotent provisioning for the real-containerd test harness.
#
# Used by tests/harness.ts (local runs and CI) and by a Lima VM. Installs, with apt, only what is
# missing:
#   containerd runc socat busybox-static   (commands checked: containerd runc socat ctr busybox,
#                                           plus the busybox-static package itself, because the
#                                           test images need a statically linked busybox)
#
# Extra packages:
#   --with-proto-dev                 also install golang-github-containerd-containerd-dev (the
#                                    containerd .proto sources, for the proto conformance test)
#   WFE_PROVISION_EXTRA="pkg ..."    any further Debian packages (space separated)
#   WFE_PROVISION_PROTO_DEV=1        same as --with-proto-dev
#   --crun-hybrid-cgroups            on a host with hybrid cgroups (v1 hierarchies plus cgroup2
#                                    at /sys/fs/cgroup/unified), mount each controller cgroup2
#                                    still holds as a v1 hierarchy, because crun refuses to run
#                                    while cgroup2 has controllers in hybrid mode (runc does not
#                                    care); does nothing on a pure v1 or v2 host
#
# It never starts the system containerd and never touches /run/containerd: a temporary
# /usr/sbin/policy-rc.d (exit 101) stops the package's service from being started during the
# install, and is removed afterwards (an existing policy-rc.d is left as it is).
#
# Exit status: 0 when everything is present or was installed; 1 when not root, or when apt-get
# is missing while something needs installing; apt-get's status when apt fails.
set -euo pipefail

log() { printf 'provision: %s\n' "$*" >&2; }
die() {
  printf 'provision: error: %s\n' "$*" >&2
  exit 1
}

with_proto_dev="${WFE_PROVISION_PROTO_DEV:-0}"
crun_hybrid=0
for arg in "$@"; do
  case "$arg" in
    --with-proto-dev) with_proto_dev=1 ;;
    --crun-hybrid-cgroups) crun_hybrid=1 ;;
    -h | --help)
      sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument: $arg (see --help)" ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  die "must run as root (it installs Debian packages with apt-get)"
fi

# Make sbin directories visible even to a non-login root shell.
export PATH="${PATH:-/usr/bin:/bin}:/usr/local/sbin:/usr/sbin:/sbin"

# Hybrid cgroups: give each controller cgroup2 holds (and no task uses there) its own v1
# hierarchy, so that crun accepts the host.
crun_hybrid_cgroups() {
  local unified=/sys/fs/cgroup/unified c
  [ "$crun_hybrid" = "1" ] || return 0
  [ "$(stat -f -c %T "$unified" 2>/dev/null || true)" = "cgroup2fs" ] || return 0
  for c in $(cat "$unified/cgroup.controllers"); do
    mkdir -p "/sys/fs/cgroup/$c"
    if mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c"; then
      log "hybrid cgroups: mounted the $c controller as a v1 hierarchy (for crun)"
    else
      log "hybrid cgroups: could not move $c to v1; crun will refuse this host"
    fi
  done
}

pkg_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

missing=()
for cmd in containerd runc socat ctr busybox; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    missing+=("$cmd")
  fi
done
if command -v dpkg-query >/dev/null 2>&1 && ! pkg_installed busybox-static; then
  missing+=("busybox-static")
fi

packages=()
if [ "${#missing[@]}" -gt 0 ]; then
  packages+=(containerd runc socat busybox-static)
fi
extra=()
if [ "$with_proto_dev" = "1" ]; then
  extra+=(golang-github-containerd-containerd-dev)
fi
# shellcheck disable=SC2206 # word splitting of the package list is intended
extra+=(${WFE_PROVISION_EXTRA:-})
for p in "${extra[@]}"; do
  if ! pkg_installed "$p"; then
    packages+=("$p")
  fi
done

if [ "${#packages[@]}" -eq 0 ]; then
  log "nothing to install (containerd, runc, socat, ctr, busybox-static present)"
  crun_hybrid_cgroups
  exit 0
fi

if [ "${#missing[@]}" -gt 0 ]; then
  log "missing: ${missing[*]}"
fi
if ! command -v apt-get >/dev/null 2>&1; then
  die "apt-get not found; install these by hand: ${packages[*]}"
fi

policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# wfe provision: do not start services during install\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  created_policy=1
fi
cleanup() {
  if [ "$created_policy" = "1" ]; then
    rm -f "$policy"
  fi
}
trap cleanup EXIT

log "apt-get update"
apt-get update -q
log "apt-get install ${packages[*]}"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}"

for cmd in containerd runc socat ctr busybox; do
  command -v "$cmd" >/dev/null 2>&1 || die "still missing after install: $cmd"
done
crun_hybrid_cgroups
log "done"
