#!/bin/bash
# testbed/selftest.sh: check a running testbed with real `ssh` commands.
#
#   testbed/selftest.sh           checks against the running testbed (tb up all)
#   testbed/selftest.sh --cycle   also `tb down all` (checks nothing of ours is
#                                 left), `tb down all` again, `tb up all`, and
#                                 checks that keys and host keys were kept
#
# Prints one line per check with rc and wall time; exits 1 if any failed.
# Leaves the testbed up.
set -uo pipefail

TB_HOME=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TB=$TB_HOME/tb
DIR=${APF_TESTBED_DIR:-/var/tmp/apf-testbed}
fails=0
out=$(mktemp); trap 'rm -f "$out"' EXIT

now_ms() { local t; t=$(date +%s%N); echo $((t / 1000000)); }

# check NAME EXPECT(ok|fail) [GREP] -- CMD...: run CMD, compare its rc (0 or
# not) and optionally require GREP in its combined output.
check() {
    local name=$1 expect=$2 pat=$3; shift 4
    local t0 rc ms verdict=PASS
    t0=$(now_ms)
    "$@" >"$out" 2>&1 </dev/null; rc=$?
    ms=$(( $(now_ms) - t0 ))
    if [[ $expect == ok && $rc != 0 ]] || [[ $expect == fail && $rc == 0 ]]; then verdict=FAIL; fi
    if [[ -n $pat ]] && ! grep -qE -- "$pat" "$out"; then verdict=FAIL; fi
    printf '%-4s %-58s rc=%-3s %6d ms  %s\n' "$verdict" "$name" "$rc" "$ms" \
        "$(tr '\n' ' ' <"$out" | cut -c1-90)"
    [[ $verdict == PASS ]] || fails=$((fails + 1))
}

# Wait up to LIMIT s for background PID to exit (bash reaps it, so kill -0
# fails once it is gone).
wait_exit() {
    local pid=$1 limit=$2 t=0
    while kill -0 "$pid" 2>/dev/null; do
        ((t++ < limit * 10)) || return 1
        sleep 0.1
    done
    wait "$pid" 2>/dev/null
    return 0
}
wait_cat() { wait "$1" 2>/dev/null; cat "$2"; }

# The readiness command from the brief, parametrised.
sshx() {   # sshx KEY KNOWN_HOSTS PORT HOST [ssh options...] -- CMD
    local key=$1 kh=$2 port=$3 host=$4; shift 4
    local -a opts=()
    while (($#)) && [[ $1 != -- ]]; do opts+=("$1"); shift; done
    shift
    # Extra options first: for ssh the first value of an option wins.
    ssh -F /dev/null "${opts[@]}" -p "$port" -i "$key" -o BatchMode=yes -o IdentitiesOnly=yes \
        -o "UserKnownHostsFile=$kh" -o GlobalKnownHostsFile=/dev/null \
        -o StrictHostKeyChecking=yes -o ConnectTimeout=3 -o LogLevel=ERROR \
        "apftest@$host" "$@"
}

"$TB" status >/dev/null 2>&1 || { echo "testbed not up; run: testbed/tb up all"; exit 1; }
# shellcheck source=/dev/null
. "$DIR/env"
K=$DIR/keys
KH=$APF_TB_KNOWN_HOSTS
CFG=$APF_TB_SSH_CONFIG

echo "== keys and sshd main/jump"
check "main: ed25519 key"                      ok '' -- sshx "$K/id_ed25519" "$KH" 2222 127.0.0.1 -- hostname
check "main: ecdsa p256 key"                   ok '' -- sshx "$K/id_ecdsa" "$KH" 2222 127.0.0.1 -- true
check "main: ecdsa p384 PEM key"               ok '' -- sshx "$K/id_ecdsa_pem" "$KH" 2222 127.0.0.1 -- true
check "main: rsa key, rsa-sha2 (OpenSSH client)" ok '' -- sshx "$K/id_rsa" "$KH" 2222 127.0.0.1 -- true
check "main: rsa key, SHA-1 ssh-rsa refused"   fail 'Permission denied' -- \
    sshx "$K/id_rsa" "$KH" 2222 127.0.0.1 -o PubkeyAcceptedAlgorithms=ssh-rsa -- true
check "jump: rsa key, SHA-1 ssh-rsa accepted"  ok '' -- \
    sshx "$K/id_rsa" "$KH" 2224 127.0.0.1 -o PubkeyAcceptedAlgorithms=ssh-rsa -- true
check "jump: ssh-rsa host key accepted"        ok '' -- \
    sshx "$K/id_ed25519" "$KH" 2224 127.0.0.1 -o HostKeyAlgorithms=ssh-rsa -- true
check "main: ssh-rsa host key not offered"     fail 'no matching host key' -- \
    sshx "$K/id_ed25519" "$KH" 2222 127.0.0.1 -o HostKeyAlgorithms=ssh-rsa -o LogLevel=INFO -- true
check "main: unauthorized key refused"         fail 'Permission denied' -- \
    sshx "$K/id_unauthorized" "$KH" 2222 127.0.0.1 -- true
check "passphrase key: ssh-keygen -y -P"       ok '^ssh-ed25519 ' -- \
    ssh-keygen -y -P "$(cat "$K/passphrase")" -f "$K/id_ed25519_pass"
check "passphrase key: wrong passphrase fails" fail '' -- \
    ssh-keygen -y -P wrong -f "$K/id_ed25519_pass"
askpass=$(mktemp); printf '#!/bin/sh\ncat %q\n' "$K/passphrase" >"$askpass"; chmod 0700 "$askpass"
check "main: passphrase key via SSH_ASKPASS"   ok '' -- \
    env SSH_ASKPASS="$askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=none setsid -w \
    ssh -F /dev/null -p 2222 -i "$K/id_ed25519_pass" -o IdentitiesOnly=yes \
        -o "UserKnownHostsFile=$KH" -o GlobalKnownHostsFile=/dev/null \
        -o StrictHostKeyChecking=yes -o LogLevel=ERROR apftest@127.0.0.1 true
rm -f "$askpass"
check "passphrase file has no trailing newline" ok '' -- \
    bash -c '[[ $(tail -c1 "$1" | od -An -c) != *"\n"* ]]' _ "$K/passphrase"
check "main: hashed known_hosts"               ok '' -- sshx "$K/id_ed25519" "$APF_TB_KNOWN_HOSTS_HASHED" 2222 127.0.0.1 -- true
check "jump: hashed known_hosts"               ok '' -- sshx "$K/id_ed25519" "$APF_TB_KNOWN_HOSTS_HASHED" 2224 127.0.0.1 -- true
check "apfh1: hashed known_hosts (by address)" ok '' -- sshx "$K/id_ed25519" "$APF_TB_KNOWN_HOSTS_HASHED" 22 10.251.1.2 -- true
check "apfh1: hashed known_hosts (by name)"    ok '' -- \
    sshx "$K/id_ed25519" "$APF_TB_KNOWN_HOSTS_HASHED" 22 10.251.1.2 -o HostKeyAlias=apfh1 -- true
check "main: wrong host key (jump's) refused"  fail 'IDENTIFICATION HAS CHANGED' -- \
    sshx "$K/id_ed25519" "$KH" 2222 127.0.0.1 -o HostKeyAlias=[127.0.0.1]:2224 -- true
if [[ -n ${APF_TB_SSH_PORT_V6:-} ]]; then
    # shellcheck disable=SC2016  # $SSH_CONNECTION is for the remote shell
    check "main: IPv6 [::1]:$APF_TB_SSH_PORT_V6 (SSH_CONNECTION)" ok '^::1 ' -- \
        sshx "$K/id_ed25519" "$KH" "$APF_TB_SSH_PORT_V6" ::1 -- 'echo $SSH_CONNECTION'
else
    echo "SKIP main: IPv6 (no APF_TB_SSH_PORT_V6 in env)"
fi
check "main: sftp put + compare"              ok '^same$' -- bash -c '
    echo "put $2 /tmp/tb-selftest-sftp" | sftp -q -b - -F "$1" apf-main >/dev/null &&
    [[ $(ssh -F "$1" apf-main "md5sum </tmp/tb-selftest-sftp; rm -f /tmp/tb-selftest-sftp") == "$(md5sum <"$2")" ]] &&
    echo same' _ "$CFG" "$KH"

echo "== namespace hosts"
for h in ${APF_TB_NETNS_HOSTS//,/ }; do
    addr_var=APF_TB_NETNS_ADDR_$h
    check "$h: hostname over ${!addr_var}:22"  ok "^$h\$" -- sshx "$K/id_ed25519" "$KH" 22 "${!addr_var}" -- hostname
done
check "apfh2: not reachable from inside apfh1" fail '' -- \
    ip netns exec apfh1 ssh -F /dev/null -o ConnectTimeout=2 -o BatchMode=yes 10.251.2.2 true
check "ProxyJump apf-jump -> apfh1"            ok '^apfh1$' -- ssh -F "$CFG" -J apf-jump apfh1 hostname
check "ProxyJump apf-jump,apfh1 -> apfh1's 127.0.0.1:22" ok '^apfh1 127\.0\.0\.1' -- \
    ssh -F "$CFG" -J apf-jump,apfh1 -o HostKeyAlias=apfh1 -p 22 127.0.0.1 \
        'echo $(hostname) ${SSH_CONNECTION}'
check "apfh3-lo alias (ProxyJump apfh3)"       ok '^apfh3$' -- ssh -F "$CFG" apfh3-lo hostname
check "root ns 127.0.0.1:22 is not apfh1"      fail '' -- \
    ssh -F "$CFG" -o HostKeyAlias=apfh1 -p 22 127.0.0.1 true

echo "== faults on apfh1 (ConnectTimeout=3; apfh2 must stay fine)"
for mode in linkdown blackhole reject sshd-stop; do
    case $mode in
        linkdown)  pat='No route to host' ;;
        blackhole) pat='timed out' ;;
        reject|sshd-stop) pat='Connection refused' ;;
    esac
    check "tb fault apfh1 $mode"               ok '' -- "$TB" fault apfh1 "$mode"
    check "  apfh1 new connection -> $pat"     fail "$pat" -- sshx "$K/id_ed25519" "$KH" 22 10.251.1.2 -- true
    check "  apfh2 unaffected"                 ok '^apfh2$' -- sshx "$K/id_ed25519" "$KH" 22 10.251.2.2 -- hostname
    check "  tb fault apfh1 $mode (again: idempotent)" ok '' -- "$TB" fault apfh1 "$mode"
    check "  tb fault apfh1 clear"             ok '' -- "$TB" fault apfh1 clear
    check "  apfh1 back"                       ok '^apfh1$' -- sshx "$K/id_ed25519" "$KH" 22 10.251.1.2 -- hostname
done
check "tb fault apfh1 clear (nothing to clear)" ok '' -- "$TB" fault apfh1 clear

echo "== faults vs. an open session on apfh1"
# blackhole: an open session hangs; ServerAlive 1x3 ends it in ~4 s.
ssh -F "$CFG" -o ServerAliveInterval=1 -o ServerAliveCountMax=3 apfh1 'sleep 8' >/dev/null 2>&1 &
sp=$!; sleep 1
check "tb fault apfh1 blackhole (session open)" ok '' -- "$TB" fault apfh1 blackhole
check "  open session ends (ServerAlive 1x3)"  ok '' -- wait_exit "$sp" 10
check "  tb fault apfh1 clear"                 ok '' -- "$TB" fault apfh1 clear
# linkdown: an open session survives a short outage.
ssh -F "$CFG" apfh1 'sleep 4; echo survived' >"$out.ld" 2>&1 &
sp=$!; sleep 1
check "tb fault apfh1 linkdown (session open)" ok '' -- "$TB" fault apfh1 linkdown
sleep 2
check "  tb fault apfh1 clear"                 ok '' -- "$TB" fault apfh1 clear
check "  open session survived a 2 s link-down" ok 'survived' -- wait_cat "$sp" "$out.ld"
rm -f "$out.ld"

echo "== restart-sshd main kills an open ControlMaster session"
cp=/tmp/tb-selftest-cm.$$
check "ControlMaster to apf-main"              ok '' -- \
    ssh -F "$CFG" -o ControlMaster=yes -o "ControlPath=$cp" -o ControlPersist=600 -fN apf-main
check "  ssh -O check"                         ok 'Master running' -- ssh -F "$CFG" -o "ControlPath=$cp" -O check apf-main
check "tb restart-sshd main"                   ok 'ready' -- "$TB" restart-sshd main
sleep 0.5
check "  ssh -O check after restart"           fail '' -- ssh -F "$CFG" -o "ControlPath=$cp" -O check apf-main
ssh -F "$CFG" -o "ControlPath=$cp" -O exit apf-main >/dev/null 2>&1
check "  new connection after restart"         ok '' -- sshx "$K/id_ed25519" "$KH" 2222 127.0.0.1 -- true
check "tb restart-sshd apfh2"                  ok 'ready' -- "$TB" restart-sshd apfh2
check "tb restart-sshd jump"                   ok 'ready' -- "$TB" restart-sshd jump

if [[ ${1:-} == --cycle ]]; then
    echo "== down / down / up cycle"
    fp_before=$(cat "$K"/*.pub "$DIR"/hostkeys/*/*.pub | md5sum)
    pids=$(cat "$DIR"/run/*.pid 2>/dev/null | tr '\n' ' ')
    check "tb down all"                        ok '' -- "$TB" down all
    check "  no sshd of ours left (pids $pids)" ok '' -- bash -c '
        for p in '"$pids"'; do
            [[ -r /proc/$p/status ]] || continue
            grep -q "^State:.*Z" /proc/$p/status || { echo "alive: $p"; exit 1; }
        done'
    check "  no sshd with our config running"  ok '' -- bash -c '
        for d in /proc/[0-9]*; do
            [[ $(readlink "$d/exe" 2>/dev/null) == /usr/sbin/sshd ]] || continue
            grep -q "^State:.*Z" "$d/status" 2>/dev/null && continue
            tr "\0" " " <"$d/cmdline" 2>/dev/null | grep -qF "$1/conf/" && { echo "$d"; exit 1; }
        done; exit 0' _ "$DIR"
    check "  no apfh* namespace"               ok '' -- bash -c '! ip netns list | grep -q "^apfh"'
    check "  no apfh*-r veth"                  ok '' -- bash -c '! ip -o link show | grep -q " apfh[0-9]*-r@"'
    check "  no guard route"                   ok '' -- bash -c '[[ -z $(ip route show type unreachable 10.251.0.0/16) ]]'
    check "  tb status says down (rc 1)"       fail 'DOWN' -- "$TB" status
    check "tb down all (again)"                ok '' -- "$TB" down all
    check "tb up all"                          ok 'up all done' -- "$TB" up all
    check "tb up all (again)"                  ok 'already running' -- "$TB" up all
    check "  keys and host keys kept"          ok '' -- bash -c \
        '[[ $(cat "$1"/*.pub "$2"/hostkeys/*/*.pub | md5sum) == "$3" ]]' _ "$K" "$DIR" "$fp_before"
    check "  old known_hosts still valid"      ok '^apfh2$' -- sshx "$K/id_ed25519" "$KH" 22 10.251.2.2 -- hostname
fi

check "tb status"                              ok 'netns: up' -- "$TB" status
echo "failures: $fails"
((fails == 0))
