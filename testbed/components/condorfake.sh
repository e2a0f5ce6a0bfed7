# shellcheck shell=bash
# Component `condorfake`: a FAKE HTCondor (not HTCondor; TESTBED.md §8: no HTCondor daemons can be installed on
# Debian 12 here). A stateful stand-in for condor_submit, condor_q, condor_history and condor_rm, plus a fake
# schedd daemon that moves jobs idle(1) -> running(2) -> completed(4) and really runs their executables. All of
# it is components/condorfake.py; output formats follow the recorded real outputs in
# /work/shared/fixtures/batch-outputs/htcondor (see the header of condorfake.py for what is unverified).
#
# It is a login node of its own: an sshd on 127.0.0.1:2225 with the main sshd's settings, keys and
# authorized_keys, whose sessions get PATH=<fake bin>:/usr/bin:/bin, so `ssh -p 2225 apftest@127.0.0.1 condor_q`
# runs the fake. The fake schedd runs as apftest (it runs the jobs), with its spool under $TBC_PUB/condorfake.
#
# Knobs, read at `tb up` (a change restarts the fake schedd):
#   APF_TB_CONDOR_IDLE_SECONDS     a job stays idle at least this long (default 2)
#   APF_TB_CONDOR_MIN_RUN_SECONDS  a job stays running at least this long, even if it exits earlier (default 2)
#   APF_TB_CONDOR_SLOTS            jobs running at once (default 8); the rest stay idle
# Per job, in the submit description: +FakeIdleSeconds = N, +FakeMinRunSeconds = N; `hold = true` submits held.
# shellcheck source=batchlib.sh
. "$TB_HOME/components/batchlib.sh"

TB_CONDOR_PORT=2225
tbc_register_sshd condor "$TB_CONDOR_PORT"

condorfake_home() { echo "$TBC_PUB/condorfake"; }
condorfake_bin() { echo "$(condorfake_home)/bin"; }
condorfake_spool() { echo "$(condorfake_home)/spool"; }
condorfake_py() { echo "$(condorfake_bin)/condorfake.py"; }
condorfake_pidfile() { echo "$TB_DIR/run/condorfake-schedd.pid"; }
condorfake_log() { echo "$TB_DIR/log/condorfake-schedd.log"; }
condorfake_idle() { echo "${APF_TB_CONDOR_IDLE_SECONDS:-2}"; }
condorfake_min_run() { echo "${APF_TB_CONDOR_MIN_RUN_SECONDS:-2}"; }
condorfake_slots() { echo "${APF_TB_CONDOR_SLOTS:-8}"; }

condorfake_packages() { echo python3; }

condorfake_schedd_pid() { tbc_pid_cmd "$(condorfake_pidfile)" "$(condorfake_py) schedd"; }

# The knobs the running fake schedd was started with (its environment), to restart it when they change.
condorfake_knobs() {
    printf 'CONDORFAKE_SPOOL=%s CONDORFAKE_IDLE_SECONDS=%s CONDORFAKE_MIN_RUN_SECONDS=%s CONDORFAKE_SLOTS=%s' \
        "$(condorfake_spool)" "$(condorfake_idle)" "$(condorfake_min_run)" "$(condorfake_slots)"
}

# Install the commands: condorfake.py with its spool path filled in, and one symlink per command name.
condorfake_install() {
    local bin tmp c grp
    bin=$(condorfake_bin)
    grp=$(id -gn "$TB_USER")
    install -d -m 0755 "$TBC_PUB" "$(condorfake_home)" "$bin"
    install -d -m 0755 -o "$TB_USER" -g "$grp" "$(condorfake_spool)"
    # The user's uid may have changed since (a re-created apftest): the spool is the user's.
    chown -R "$TB_USER:$grp" "$(condorfake_spool)"
    tmp=$(mktemp "$bin/.condorfake.XXXXXX")
    sed -e "s|@SPOOL@|$(condorfake_spool)|" "$TB_HOME/components/condorfake.py" >"$tmp"
    chmod 0755 "$tmp"
    if cmp -s "$tmp" "$(condorfake_py)"; then rm -f "$tmp"; else mv -f "$tmp" "$(condorfake_py)"; fi
    for c in condor_submit condor_q condor_history condor_rm condor_version; do
        ln -sfn condorfake.py "$bin/$c"
    done
}

condorfake_start_schedd() {
    local pid py
    py=$(condorfake_py)
    if pid=$(condorfake_schedd_pid); then
        local have want
        have=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep '^CONDORFAKE_' | sort)
        want=$(condorfake_knobs | tr ' ' '\n' | sort)
        if [[ $have == "$want" && $(stat -c %Y "$py") -le $(stat -c %Y "/proc/$pid") ]]; then
            log "condorfake schedd already running (pid $pid)"
            return 0
        fi
        log "condorfake schedd (pid $pid) runs with other knobs or an older condorfake.py; restarting it"
        kill_tree "$pid"
    fi
    rm -f "$(condorfake_pidfile)" "$(condorfake_spool)/schedd.pid"
    local home; home=$(getent passwd "$TB_USER" | cut -d: -f6)
    # setsid + setpriv exec in place (no fork: a background job is not a process-group leader), so $! is the
    # daemon's PID. Its jobs are its children (each in its own session): `tb down` kills the whole tree.
    # shellcheck disable=SC2046  # the knobs are KEY=value words without spaces
    setsid setpriv --reuid="$TB_USER" --regid="$(id -g "$TB_USER")" --init-groups \
        env -i PATH=/usr/bin:/bin HOME="$home" USER="$TB_USER" LOGNAME="$TB_USER" $(condorfake_knobs) \
        /usr/bin/python3 "$py" schedd </dev/null >>"$(condorfake_log)" 2>&1 9>&- &
    echo $! >"$(condorfake_pidfile)"
    # shellcheck disable=SC2016  # expanded by eval, inside tbc_wait
    tbc_wait "condorfake schedd ready" 10 \
        eval 'condorfake_schedd_pid && runuser -u "$TB_USER" -- "$(condorfake_bin)/condor_q" -af ClusterId' \
        || die "condorfake schedd did not start; see $(condorfake_log)"
}

condorfake_up() {
    command -v /usr/bin/python3 >/dev/null || die "python3 missing; run: testbed/tb install condorfake"
    condorfake_install
    condorfake_start_schedd
    tbc_start_sshd condor "SetEnv PATH=$(condorfake_bin):/usr/bin:/bin"
}

# The sshd first (no new submissions), then the fake schedd with its running jobs (descendants).
condorfake_down() {
    local pid
    stop_sshd condor
    if pid=$(condorfake_schedd_pid); then
        kill_tree "$pid"
        log "condorfake schedd stopped (pid $pid)"
    fi
    rm -f "$(condorfake_pidfile)"
}

condorfake_is_up() { condorfake_schedd_pid >/dev/null && sshd_pid condor >/dev/null; }

condorfake_status() {
    local pid
    if pid=$(sshd_pid condor); then echo "  sshd pid $pid  $TB_SSH_HOST:$TB_CONDOR_PORT  PATH=$(condorfake_bin):/usr/bin:/bin"
    else echo "  sshd not running"; fi
    if pid=$(condorfake_schedd_pid); then
        echo "  FAKE schedd pid $pid  spool $(condorfake_spool)  idle $(condorfake_running_knob CONDORFAKE_IDLE_SECONDS) s" \
            " min run $(condorfake_running_knob CONDORFAKE_MIN_RUN_SECONDS) s  slots $(condorfake_running_knob CONDORFAKE_SLOTS)"
    else
        echo "  FAKE schedd not running"
    fi
}

# The value of knob VAR in the running fake schedd's environment.
condorfake_running_knob() {
    local pid; pid=$(condorfake_schedd_pid) || return 1
    tr '\0' '\n' <"/proc/$pid/environ" | sed -n "s/^$1=//p"
}

condorfake_env() {
    echo "APF_TB_CONDOR_FAKE=1"
    echo "APF_TB_CONDOR_HOST=$TB_SSH_HOST"
    echo "APF_TB_CONDOR_PORT=$TB_CONDOR_PORT"
    echo "APF_TB_CONDOR_SPOOL=$(condorfake_spool)"
    echo "APF_TB_CONDOR_IDLE_SECONDS=$(condorfake_running_knob CONDORFAKE_IDLE_SECONDS)"
    echo "APF_TB_CONDOR_MIN_RUN_SECONDS=$(condorfake_running_knob CONDORFAKE_MIN_RUN_SECONDS)"
    echo "APF_TB_CONDOR_SLOTS=$(condorfake_running_knob CONDORFAKE_SLOTS)"
}
