#!/usr/bin/env bash
# Approximates CI (a fresh clone on a fresh machine) on a developer machine that already has the testbed's
# packages and a running testbed: runs `make test` from a fresh clone of HEAD inside a throw-away copy of this
# machine's file system (overlayfs, private mount/PID/network namespaces), after removing the packages, the test
# user and the state the testbed leaves behind. Nothing outside the overlay changes; everything started inside
# dies with the PID namespace. Needs root. Usage: scripts/fresh-machine-test.sh [make target, default test]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
target=${1:-test}
work=$(mktemp -d /var/tmp/apf-fresh.XXXXXX)
mkdir -p "$work"/{upper,work,root}
cleanup() { rm -rf --one-file-system "$work"; }
trap cleanup EXIT
git -C "$repo" rev-parse HEAD >/dev/null

inner=$(cat <<'INNER'
set -euo pipefail
R=$1 REPO=$2 TARGET=$3
mount -t overlay overlay -o "lowerdir=/,upperdir=$R/../upper,workdir=$R/../work" "$R"
for d in proc sys dev dev/pts; do mount --rbind "/$d" "$R/$d" 2>/dev/null || true; done
mount -t tmpfs tmpfs "$R/run"; mkdir -p "$R/run/netns" "$R/run/lock"
mount -t tmpfs tmpfs "$R/tmp"
exec chroot "$R" /bin/bash -s "$REPO" "$TARGET" <<'CHROOT'
set -euo pipefail
REPO=$1 TARGET=$2
echo "## making this copy look like a fresh machine"
rm -rf /var/tmp/apf-testbed /var/lib/apf-testbed /var/tmp/apf-fresh.* /etc/slurm /var/lib/gridengine 2>/dev/null || true
userdel -r apftest 2>/dev/null || true
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq openssh-server libssh2-1-dev nftables pkg-config \
    slurm-wlm slurm-client slurmdbd munge mariadb-server gridengine-master gridengine-exec gridengine-client gridengine-common voms-clients libsqlite3-dev python3-venv libslurm-perl libslurmdb-perl libswitch-perl >/dev/null 2>&1 || true
echo "## fresh clone"
git clone -q "$REPO" /root/apf-fresh && cd /root/apf-fresh
echo "## tb install all (package registries reachable: host network)"
testbed/tb install all
echo "## make $TARGET in a private network namespace"
# A real machine has a non-loopback IPv4 address; without one, getaddrinfo(AI_ADDRCONFIG) (getent ahostsv4, which
# SLURM's address check uses) resolves nothing. A veth end with an address stands in for the NIC.
unshare --net bash -c "ip link set lo up; ip link add apfnic0 type veth peer name apfnic1; \
    ip addr add 10.254.0.1/30 dev apfnic0; ip link set apfnic0 up; ip link set apfnic1 up; make $TARGET"
CHROOT
INNER
)
start=$(date +%s)
unshare --mount --pid --uts --fork --mount-proc bash -c "$inner" _ "$work/root" "$repo" "$target"
echo "## fresh-machine make $target passed in $(( $(date +%s) - start )) s"
