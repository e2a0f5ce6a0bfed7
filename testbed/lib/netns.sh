# shellcheck shell=bash
# Network-namespace SSH hosts apfh1..3 and fault injection. TESTBED.md §4.
#
#   root namespace                 namespace apfhN
#   apfhN-r 10.251.N.1/24  <-veth->  eth0 10.251.N.2/24, lo up
#                                    sshd on 10.251.N.2:22 and 127.0.0.1:22
#
# The leak guard `unreachable 10.251.0.0/16` in the root namespace is
# mandatory: when a link goes down its connected route disappears and,
# without the guard, packets to 10.251.N.2 leave via the default route (an
# upstream box accepted them: "Connection timed out during banner exchange").

FAULT_TABLE=apffault          # nft table (family inet) inside the namespace

netns_num()  { echo "${1#apfh}"; }
netns_addr() { echo "10.251.$(netns_num "$1").2"; }
netns_peer() { echo "10.251.$(netns_num "$1").1"; }
netns_veth() { echo "$1-r"; }

# Is sshd PID running in the namespace that currently carries NS's name?
netns_sshd_in_place() {
    local a b
    a=$(stat -L -c %i "/proc/$2/ns/net" 2>/dev/null) || return 1
    b=$(stat -L -c %i "/run/netns/$1" 2>/dev/null) || return 1
    [[ $a == "$b" ]]
}

# Host NS fully up: namespace, veth pair, sshd running inside it.
netns_host_up() {
    local pid
    netns_exists "$1" && ip link show dev "$(netns_veth "$1")" >/dev/null 2>&1 \
        && pid=$(sshd_pid "$1") && netns_sshd_in_place "$1" "$pid"
}

netns_exists() { [[ -e /run/netns/$1 ]] && ip netns exec "$1" true 2>/dev/null; }

valid_netns_name() {
    local h
    for h in "${TB_NETNS_HOSTS[@]}"; do [[ $1 == "$h" ]] && return 0; done
    return 1
}

guard_route_present() {
    [[ -n $(ip route show type unreachable "$TB_NETNS_NET" 2>/dev/null) ]]
}

link_up() {   # link_up IFNAME -> admin state up?
    local flags
    flags=$(ip -o link show dev "$1" 2>/dev/null) || return 1
    [[ $flags == *"<"*UP*">"* ]]
}

fault_table_present() {
    ip netns exec "$1" nft list table inet "$FAULT_TABLE" >/dev/null 2>&1
}

# The rule set of the active nft fault (first rule line), for status.
fault_table_kind() {
    local rules
    rules=$(ip netns exec "$1" nft list table inet "$FAULT_TABLE" 2>/dev/null) || return 1
    case $rules in
        *reject*)  echo reject ;;
        *numgen*)  echo loss ;;
        *drop*)    echo blackhole ;;
        *)         echo nft ;;
    esac
}

rate_present() {
    [[ $(tc qdisc show dev "$(netns_veth "$1")" 2>/dev/null) == *tbf* ]]
}

# Any fault that would make the eth0 path unusable.
netns_faulted() {
    ! link_up "$(netns_veth "$1")" || fault_table_present "$1"
}

# Create namespace, veth pair, addresses (each step only if missing) and
# bring everything up. Clears link-down / nft / rate faults: `up` means a
# healthy host.
netns_setup() {
    local ns=$1 veth addr peer
    veth=$(netns_veth "$ns"); addr=$(netns_addr "$ns"); peer=$(netns_peer "$ns")
    netns_exists "$ns" || ip netns add "$ns"
    # The pair must be whole: our end here AND eth0 in this namespace. A
    # root-side end whose peer sits in an older namespace of the same name
    # (deleted behind our back) is removed and the pair re-created.
    if ! ip link show dev "$veth" >/dev/null 2>&1 \
        || ! ip -n "$ns" link show dev eth0 >/dev/null 2>&1; then
        ip link del "$veth" 2>/dev/null || true
        ip -n "$ns" link del eth0 2>/dev/null || true
        ip link add "$veth" type veth peer name eth0 netns "$ns"
    fi
    [[ $(ip -o addr show dev "$veth") == *" $peer/24 "* ]] \
        || ip addr add "$peer/24" dev "$veth"
    [[ $(ip -n "$ns" -o addr show dev eth0) == *" $addr/24 "* ]] \
        || ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
    ip link set "$veth" up
    netns_clear_net_faults "$ns"
}

netns_clear_net_faults() {
    local ns=$1
    if fault_table_present "$ns"; then
        ip netns exec "$ns" nft delete table inet "$FAULT_TABLE"
    fi
    tc qdisc del dev "$(netns_veth "$ns")" root 2>/dev/null || true
    ip netns exec "$ns" tc qdisc del dev eth0 root 2>/dev/null || true
    ip link set "$(netns_veth "$ns")" up 2>/dev/null || true
}

netns_up() {
    local h t0; t0=$(now_ms)
    guard_route_present || ip route add unreachable "$TB_NETNS_NET"
    local pid
    for h in "${TB_NETNS_HOSTS[@]}"; do
        # An sshd of ours left in an older namespace of the same name (the
        # name was deleted behind our back) serves nobody; stopping it also
        # frees that namespace and its veth pair.
        if pid=$(sshd_pid "$h") && ! netns_sshd_in_place "$h" "$pid"; then
            log "sshd $h (pid $pid) runs in a stale namespace; restarting it"
            stop_sshd "$h"
        fi
        netns_setup "$h"
        start_sshd "$h"
    done
    log "netns up (${TB_NETNS_HOSTS[*]}) in $(( $(now_ms) - t0 )) ms"
}

# Live (non-zombie) processes still inside namespace NS, as "PID(comm)".
netns_pids() {
    local pid out=()
    for pid in $(ip netns pids "$1" 2>/dev/null); do
        proc_alive "$pid" && out+=("$pid($(cat "/proc/$pid/comm" 2>/dev/null))")
    done
    echo "${out[@]}"
}

netns_teardown() {
    local ns=$1 left
    stop_sshd "$ns"
    ip link del "$(netns_veth "$ns")" 2>/dev/null || true
    if [[ -e /run/netns/$ns ]]; then
        left=$(netns_pids "$ns")
        # Not ours to kill (we only kill by our PID files); the namespace
        # lives on in them after its name is deleted.
        [[ -z $left ]] || log "WARNING: processes still in $ns (not killed): $left"
        ip netns del "$ns"
    fi
}

netns_down() {
    local h ns t0; t0=$(now_ms)
    for h in "${TB_NETNS_HOSTS[@]}"; do netns_teardown "$h"; done
    # Sweep leftovers with our prefix (e.g. from a run with more hosts).
    for ns in $(ip netns list 2>/dev/null | cut -d' ' -f1); do
        if [[ $ns =~ ^apfh[0-9]+$ ]]; then
            netns_teardown "$ns"      # stops its sshd if we have a PID file
        fi
    done
    if guard_route_present; then ip route del unreachable "$TB_NETNS_NET"; fi
    log "netns down in $(( $(now_ms) - t0 )) ms"
}

# Load an nft fault table into NS, replacing any previous one atomically
# (the leading `table` line makes the `delete` valid when none exists).
load_fault_table() {
    local ns=$1 in_rule=$2 out_rule=$3
    ip netns exec "$ns" nft -f - <<EOF
table inet $FAULT_TABLE
delete table inet $FAULT_TABLE
table inet $FAULT_TABLE {
    chain input {
        type filter hook input priority 0; policy accept;
        $in_rule
    }
    chain output {
        type filter hook output priority 0; policy accept;
        $out_rule
    }
}
EOF
}

# tb fault apfhN MODE [ARG]
# Faults are additive (linkdown + sshd-stop can coexist); the nft modes
# blackhole, reject and loss replace each other. `clear` undoes everything.
cmd_fault() {
    local ns=${1:-} mode=${2:-} arg=${3:-}
    valid_netns_name "$ns" && [[ -n $mode ]] \
        || die "usage: tb fault apfhN linkdown|blackhole|reject|sshd-stop|loss [PCT]|rate [RATE]|clear"
    netns_exists "$ns" || die "namespace $ns does not exist; run: tb up netns"
    local veth; veth=$(netns_veth "$ns")
    case $mode in
        linkdown)
            ip link set "$veth" down ;;
        blackhole)
            load_fault_table "$ns" 'iifname "eth0" drop' 'oifname "eth0" drop' ;;
        reject)
            # New connections: RST -> "Connection refused"; open sessions:
            # their next segment is answered with RST.
            load_fault_table "$ns" 'iifname "eth0" meta l4proto tcp reject with tcp reset' '' ;;
        loss)
            arg=${arg:-10}
            [[ $arg =~ ^[0-9]+$ ]] && ((arg <= 100)) || die "loss PCT must be 0..100"
            load_fault_table "$ns" "iifname \"eth0\" numgen random mod 100 < $arg drop" \
                "oifname \"eth0\" numgen random mod 100 < $arg drop" ;;
        rate)
            # netem is not in this kernel; tbf is. Both ends, so both
            # directions are shaped.
            arg=${arg:-8mbit}
            tc qdisc replace dev "$veth" root tbf rate "$arg" burst 32kbit latency 400ms
            ip netns exec "$ns" tc qdisc replace dev eth0 root tbf rate "$arg" burst 32kbit latency 400ms ;;
        sshd-stop)
            stop_sshd "$ns" ;;
        clear)
            netns_clear_net_faults "$ns"
            # Either way we return only once the host answers over eth0
            # again (a link that was just set up can take a moment).
            if sshd_pid "$ns" >/dev/null; then
                wait_sshd_ready "$ns"
            else
                start_sshd "$ns"
            fi ;;
        *) die "unknown fault mode '$mode'" ;;
    esac
    if [[ $mode == clear ]]; then log "fault $ns cleared"
    else log "fault $ns $mode${arg:+ $arg} applied"; fi
}
