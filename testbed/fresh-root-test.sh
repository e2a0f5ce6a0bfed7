#!/bin/bash
# testbed/fresh-root-test.sh: prove `tb install all && tb up all` works on a
# FRESH Debian 12: debootstrap a minbase root (no openssh, no iproute2, no
# policy-rc.d), then in private mount/PID/UTS namespaces run
#   tb install all                 (host network: it needs the Debian archive)
#   tb up all; selftest.sh --cycle; tb down all; tb clean
#                                  (in a private network namespace, so ports
#                                   2222/2224 and the apfh* names cannot clash
#                                   with a testbed running on this machine)
# Everything started inside dies with the PID namespace; the root is deleted
# at the end. Needs root, debootstrap (apt-get install debootstrap) and
# about 450 MB in /var/tmp. Took 1-2 min here (debootstrap 30-60 s, apt 14-28 s).
set -euo pipefail

TB_SRC=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
command -v debootstrap >/dev/null || { echo "needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }
R=$(mktemp -d /var/tmp/tb-fresh-root.XXXXXX)
chmod 0755 "$R"        # it becomes "/": apftest must be able to traverse it
cleanup() {
    # The mounts live only in the child mount namespace; nothing to unmount.
    rm -rf --one-file-system "$R"
}
trap cleanup EXIT

t0=$(date +%s)
echo "## debootstrap --variant=minbase bookworm $R"
debootstrap --variant=minbase bookworm "$R" http://deb.debian.org/debian >"$R.debootstrap.log" 2>&1 \
    || { tail -20 "$R.debootstrap.log"; exit 1; }
rm -f "$R.debootstrap.log"
mkdir -p "$R/work"
cp -a "$TB_SRC" "$R/work/testbed"
cp /etc/resolv.conf "$R/etc/resolv.conf"

# What runs inside the chroot, in the private network namespace.
cat >"$R/work/steps.sh" <<'EOF'
set -euo pipefail
echo "## tb up all"; /work/testbed/tb up all
echo "## selftest.sh --cycle"; /work/testbed/selftest.sh --cycle
echo "## tb down all; tb clean"; /work/testbed/tb down all; /work/testbed/tb clean
echo "## namespaces left: [$(ip netns list)]  guard route left: [$(ip route show type unreachable)]"
EOF

# shellcheck disable=SC2016  # the inner scripts get R as $1
unshare --mount --pid --fork --uts bash -c '
set -euo pipefail
R=$1
run() { chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }
mount --bind "$R" "$R"             # `ip netns add` needs / to be a mount point
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount -t tmpfs tmpfs "$R/run"
mount -t tmpfs tmpfs "$R/tmp"
hostname fresh
echo "## policy-rc.d in the fresh root: $(ls "$R/usr/sbin/policy-rc.d" 2>&1)"
echo "## tb install all (apt output in $R/root/install.log)"
s=$(date +%s)
run /work/testbed/tb install all >"$R/root/install.log" 2>&1 || { tail -30 "$R/root/install.log"; exit 1; }
grep -E "^tb: |policy-rc.d" "$R/root/install.log"
echo "install took $(( $(date +%s) - s )) s"
echo "## policy-rc.d afterwards (must be gone): $(ls "$R/usr/sbin/policy-rc.d" 2>&1)"
echo "## tb install all (again: no-op)"
run /work/testbed/tb install all
export -f run
unshare --net bash -c "mount -t sysfs sysfs \"\$1/sys\" && ip link set lo up && R=\$1 run bash /work/steps.sh" _ "$R"
' _ "$R"
echo "## fresh-root test passed in $(( $(date +%s) - t0 )) s"
