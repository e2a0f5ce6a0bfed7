# shellcheck shell=bash
# `tb install [ssh|netns|all]`: Debian 12 packages, under policy-rc.d so that
# openssh-server's postinst does not start a system sshd on 0.0.0.0:22.

# Packages per component. util-linux (unshare, nsenter, flock), passwd
# (useradd) and hostname are Essential on Debian but listed so a minbase root
# that lacks one still works.
pkgs_ssh=(openssh-server openssh-client libssh2-1-dev pkg-config procps passwd util-linux iproute2)
pkgs_netns=(iproute2 nftables python3 procps openssh-client util-linux hostname)

pkg_installed() {
    local status
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) || return 1
    [[ $status == ii* ]]
}

apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 \
        install -y --no-install-recommends "$@"
}

apt_update() {
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 update
}

cmd_install() {
    local what=${1:-all} p c
    local -a want=() missing=()
    for c in $(components "$what"); do
        # shellcheck disable=SC2207
        want+=($("${c}_packages"))
    done
    [[ $(id -u) == 0 ]] || die "tb install must run as root"
    local -A dup=()
    for p in "${want[@]}"; do
        [[ -n ${dup[$p]:-} ]] && continue
        dup[$p]=1
        pkg_installed "$p" || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        log "install: all packages present (${!dup[*]})"
        return 0
    fi
    log "install: missing: ${missing[*]}"

    # Block service starts during the install, but only remove the file if we
    # created it (the image ships its own).
    local made_policy=0 rc=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        made_policy=1
        # Also on Ctrl-C / TERM: the EXIT trap runs when we exit through them.
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
        trap 'exit 130' INT TERM
    fi
    local t0; t0=$(now_ms)
    if ! { apt_update && apt_install "${missing[@]}"; }; then
        log "install: first attempt failed; apt-get update and retry once"
        { apt_update && apt_install "${missing[@]}"; } || rc=$?
    fi
    if ((made_policy)); then
        rm -f /usr/sbin/policy-rc.d
        trap - EXIT INT TERM
    fi
    ((rc == 0)) || die "install: apt-get failed (rc $rc)"
    log "install: done in $(( $(now_ms) - t0 )) ms"
}
