# shellcheck shell=bash
# Component `pbs`: a PBS/Torque *login node* made of SLURM's Torque-compatible Perl wrappers (qsub, qstat, qdel,
# qhold, qrls, pbsnodes from Debian's slurm-wlm-torque) over the real SLURM of component `slurm`. There is no
# PBS, Torque or OpenPBS server on Debian 12 or PyPI (TESTBED.md §6): this is "Torque wrappers", not PBS.
#
# slurm-wlm-torque Conflicts with gridengine-client (both ship /usr/bin/qsub): it is never installed. `tb up pbs`
# downloads the .deb of the installed SLURM version once (apt-get download), unpacks it (dpkg-deb -x) under
# $TBC_PUB/pbs (world-readable: apftest runs the wrappers; $TB_DIR is 0700) and symlinks SLURM's client
# binaries next to the wrappers (qsub runs ${FindBin::Bin}/sbatch). A second sshd on 127.0.0.1:2223, with the
# main sshd's settings, keys and authorized_keys, sets PATH=<prefix>/usr/bin:/usr/bin:/bin for every session,
# so `qsub` there is the Torque wrapper while on :2222 it is SGE's.
# shellcheck source=batchlib.sh
. "$TB_HOME/components/batchlib.sh"

TB_PBS_PORT=2223
tbc_register_sshd pbs "$TB_PBS_PORT"

pbs_prefix() { echo "$TBC_PUB/pbs"; }
pbs_bin() { echo "$(pbs_prefix)/usr/bin"; }

# The wrappers' own dependencies, installed normally (they do not conflict with anything). This is also the
# install-time hook that fetches the slurm-wlm-torque .deb (never installed, only unpacked by pbs_up): `tb up`
# may run without network (e.g. in a private network namespace), `tb install` may not.
pbs_packages() {
    if [[ $(id -u) == 0 ]]; then pbs_fetch_deb "" >/dev/null 2>&1 || true; fi
    echo slurm-client libslurm-perl libslurmdb-perl libswitch-perl perl
}

pbs_want_version() { dpkg-query -W -f='${Version}' slurm-client 2>/dev/null; }
pbs_debdir() { echo "$TBC_PUB/pbs-deb"; }   # outside $TB_DIR: survives `tb clean`

# The cached .deb of version VER (empty: any version, e.g. at install time, before slurm-client is installed).
pbs_cached_deb() {
    local f v
    for f in "$(pbs_debdir)"/slurm-wlm-torque_*_all.deb; do
        [[ -s $f ]] || continue
        v=$(dpkg-deb -f "$f" Version 2>/dev/null) || continue
        if [[ -z $1 || $v == "$1" ]]; then echo "$f"; return 0; fi
    done
    return 1
}

# apt-get download slurm-wlm-torque[=VER] into the cache (apt-get update and retry once if that fails).
pbs_fetch_deb() {
    local ver=$1 d tmp spec=slurm-wlm-torque
    pbs_cached_deb "$ver" >/dev/null && return 0
    [[ -n $ver ]] && spec="slurm-wlm-torque=$ver"
    d=$(pbs_debdir)
    install -d -m 0755 "$TBC_PUB" "$d"
    tmp=$(mktemp -d "$d/dl.XXXXXX")
    chmod 0755 "$tmp"; chown _apt "$tmp" 2>/dev/null || true   # apt-get download drops to user _apt
    if ! (cd "$tmp" && apt-get -q download "$spec") >"$d/download.log" 2>&1; then
        apt_update >>"$d/download.log" 2>&1 || true
        if ! (cd "$tmp" && apt-get -q download "$spec") >>"$d/download.log" 2>&1; then
            rm -rf "$tmp"
            return 1
        fi
    fi
    mv -f "$tmp"/slurm-wlm-torque_*.deb "$d/"
    rm -rf "$tmp"
    log "pbs: downloaded $spec into $d"
}

pbs_unpacked_ok() {
    local b; b=$(pbs_bin)
    [[ -x $b/qsub && -x $b/qstat && -x $b/qdel && -L $b/sbatch && -f $(pbs_prefix)/VERSION ]] \
        && [[ $(cat "$(pbs_prefix)/VERSION") == "$(pbs_want_version)" ]]
}

pbs_unpack() {
    local ver deb tmp b c
    ver=$(pbs_want_version) || die "slurm-client not installed; run: testbed/tb install pbs"
    pbs_fetch_deb "$ver" || die "could not download slurm-wlm-torque=$ver (see $(pbs_debdir)/download.log);" \
        "run 'testbed/tb install pbs' where the Debian archive is reachable"
    deb=$(pbs_cached_deb "$ver")
    # Unpack into a fresh directory and swap it in, so a half-unpacked prefix never shows.
    tmp=$(mktemp -d "$TBC_PUB/pbs.new.XXXXXX")
    chmod 0755 "$tmp"
    dpkg-deb -x "$deb" "$tmp" || { rm -rf "$tmp"; die "dpkg-deb -x $deb failed"; }
    b=$tmp/usr/bin
    for c in sbatch salloc srun scontrol squeue scancel sinfo sacct; do ln -sfn "/usr/bin/$c" "$b/$c"; done
    echo "$ver" >"$tmp/VERSION"
    rm -rf "$(pbs_prefix).old"
    if [[ -e $(pbs_prefix) ]]; then mv -f "$(pbs_prefix)" "$(pbs_prefix).old"; fi
    mv -f "$tmp" "$(pbs_prefix)"
    rm -rf "$(pbs_prefix).old"
    log "pbs: unpacked slurm-wlm-torque $ver into $(pbs_prefix)"
}

pbs_sshd_setenv() { echo "SetEnv PATH=$(pbs_bin):/usr/bin:/bin"; }

pbs_up() {
    slurm_is_up || die "pbs needs the slurm component: tb up slurm"
    pbs_unpacked_ok || pbs_unpack
    tbc_start_sshd pbs "$(pbs_sshd_setenv)"
}

pbs_down() { stop_sshd pbs; }   # sessions die with it; jobs live in SLURM
pbs_is_up() { sshd_pid pbs >/dev/null; }
pbs_status() {
    local pid
    if pid=$(sshd_pid pbs); then echo "  sshd pid $pid  $TB_SSH_HOST:$TB_PBS_PORT  PATH=$(pbs_bin):/usr/bin:/bin"
    else echo "  sshd not running"; fi
    if [[ -f $(pbs_prefix)/VERSION ]]; then echo "  wrappers: slurm-wlm-torque $(cat "$(pbs_prefix)/VERSION") in $(pbs_prefix)"
    else echo "  wrappers: not unpacked"; fi
}
pbs_env() {
    echo "APF_TB_PBS=1"
    echo "APF_TB_PBS_HOST=$TB_SSH_HOST"
    echo "APF_TB_PBS_PORT=$TB_PBS_PORT"
    echo "APF_TB_PBS_FLAVOR=torque-wrappers-over-slurm"
    echo "APF_TB_PBS_QUEUE=$TB_SLURM_PARTITION"
}
