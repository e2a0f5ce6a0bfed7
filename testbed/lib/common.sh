# shellcheck shell=bash
# Shared constants and helpers for testbed/tb. Sourced, never executed.
#
# Process rules (TESTBED.md §1, §15): every daemon has a PID file; we stop only
# PIDs we recorded (and their descendants), never by name. A zombie
# (State: Z) counts as stopped, because PID 1 on this machine reaps late.

TB_DIR=${APF_TESTBED_DIR:-/var/tmp/apf-testbed}
TB_USER=apftest
TB_SSH_HOST=127.0.0.1
TB_SSH_HOST6=::1            # main also listens here when lo has ::1
TB_MAIN_PORT=2222
TB_JUMP_PORT=2224           # 2223 is reserved for a later PBS sshd
TB_NETNS_HOSTS=(apfh1 apfh2 apfh3)
TB_NETNS_NET=10.251.0.0/16  # leak-guard route covers all host subnets
SSHD=/usr/sbin/sshd         # absolute: sshd refuses to re-exec otherwise
TB_LOCK=/run/lock/apf-testbed.lock
READY_TIMEOUT=${APF_TB_READY_TIMEOUT:-10}   # seconds to wait for an sshd
STOP_TIMEOUT=10                              # seconds before kill -9

log()  { printf 'tb: %s\n' "$*" >&2; }
die()  { printf 'tb: ERROR: %s\n' "$*" >&2; exit 1; }
now_ms() { local t; t=$(date +%s%N); echo $((t / 1000000)); }

# Serialize all mutating subcommands: tests may call `tb fault` in parallel.
# The lock is machine-wide (not per state dir) because ports and namespace
# names are machine-wide too. fd 9 must be closed for every daemon we start,
# or the daemon would hold the lock forever.
take_lock() {
    mkdir -p "${TB_LOCK%/*}"
    exec 9>"$TB_LOCK"
    flock -w 600 9 || die "could not get $TB_LOCK within 600 s"
}

ensure_state_dir() {
    install -d -m 0700 -o root -g root "$TB_DIR"
    install -d -m 0700 "$TB_DIR/keys" "$TB_DIR/hostkeys" "$TB_DIR/conf" \
        "$TB_DIR/run" "$TB_DIR/log"
}

# Write stdin to FILE atomically (readers never see a half-written file).
write_atomic() {
    local file=$1 mode=${2:-0644} tmp
    tmp=$(mktemp "$file.XXXXXX")
    cat >"$tmp"
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$file"
}

# ---------------------------------------------------------------- processes

# True if PID exists and is not a zombie.
proc_alive() {
    local pid=$1 line
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/status ]] || return 1
    while IFS= read -r line; do
        if [[ $line == State:* ]]; then
            read -r _ line _ <<<"$line"     # "State:  S (sleeping)" -> S
            [[ $line != Z && $line != X ]]
            return
        fi
    done 2>/dev/null </proc/"$pid"/status
    return 1
}

# All descendants of PID (children, grandchildren, ...), from the ppid field
# of /proc/*/stat. The comm field may contain spaces and ')' so we cut after
# the last ") ".
proc_descendants() {
    local root=$1 st line rest pid ppid
    local -A kids=()
    for st in /proc/[0-9]*/stat; do
        IFS= read -r line 2>/dev/null <"$st" || continue
        rest=${line##*) }
        read -r _ ppid _ <<<"$rest"     # fields after comm: state ppid ...
        pid=${st#/proc/}; pid=${pid%/stat}
        kids[$ppid]+=" $pid"
    done
    local -a queue=("$root") out=()
    local p c
    while ((${#queue[@]})); do
        p=${queue[0]}; queue=("${queue[@]:1}")
        for c in ${kids[$p]:-}; do
            out+=("$c"); queue+=("$c")
        done
    done
    echo "${out[@]}"
}

# Wait until none of the PIDs is alive; returns 1 on timeout (seconds).
wait_gone() {
    local timeout=$1; shift
    local deadline=$(( $(now_ms) + timeout * 1000 )) p any
    while :; do
        any=0
        for p in "$@"; do proc_alive "$p" && { any=1; break; }; done
        ((any)) || return 0
        (( $(now_ms) >= deadline )) && return 1
        sleep 0.05
    done
}

# Kill PID and every descendant (for an sshd: its per-connection children
# and their sessions, so that every client connection dies).
# The tree is frozen with SIGSTOP first, so nothing can fork while we collect
# it and no child is re-parented to PID 1 (where we could no longer find it)
# before it gets its signal. Then TERM + CONT, poll, and kill -9 stragglers.
kill_tree() {
    local root=$1 round p
    proc_alive "$root" || return 0
    local -a pids=("$root")
    local -A seen=(["$root"]=1)
    kill -STOP "$root" 2>/dev/null || true
    for round in 1 2 3 4 5; do
        local new=0
        for p in $(proc_descendants "$root"); do
            [[ -n ${seen[$p]:-} ]] && continue
            seen[$p]=1; pids+=("$p"); new=1
            kill -STOP "$p" 2>/dev/null || true
        done
        ((new)) || break
    done
    kill -TERM "${pids[@]}" 2>/dev/null || true
    kill -CONT "${pids[@]}" 2>/dev/null || true
    if ! wait_gone "$STOP_TIMEOUT" "${pids[@]}"; then
        log "processes did not stop after ${STOP_TIMEOUT}s; sending SIGKILL"
        kill -KILL "${pids[@]}" 2>/dev/null || true
        wait_gone 5 "${pids[@]}" || log "WARNING: could not kill: ${pids[*]}"
    fi
}

# The PID recorded in PIDFILE if that process is alive AND its command line
# mentions MARKER (our config path), so a stale PID file whose number has
# been reused by an unrelated process is never trusted. Prints the PID.
pidfile_live() {
    local pidfile=$1 marker=$2 pid cmd
    [[ -s $pidfile ]] || return 1
    read -r pid <"$pidfile" || return 1
    proc_alive "$pid" || return 1
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
    [[ $cmd == *"$marker"* ]] || return 1
    echo "$pid"
}

# Does this machine have IPv6 loopback (::1 on lo)?
ipv6_loopback() { [[ $(ip -6 -o addr show dev lo 2>/dev/null) == *" ::1/128 "* ]]; }
