#!/usr/bin/env bash
# make demo: the agent end to end on this machine. The testbed's real sshd and real SLURM 22.05 stand in for a
# remote cluster; everything else is the real apf-agent CLI and daemon:
#   a tenant, an SSH profile (imported from the testbed's key), a target whose host key is pinned by fingerprint,
#   a queue whose demand (20) comes from a command printing JSON, the daemon submitting pilots (squeue shows them),
#   `apf-agent status`, a drop of demand (queued pilots cancelled first), then SIGTERM. Stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

started=()
for c in ssh slurm; do
    testbed/tb install "$c" >/dev/null
    if ! testbed/tb status "$c" >/dev/null 2>&1; then
        testbed/tb up "$c" >/dev/null
        started+=("$c")
    fi
done
bash scripts/swift.sh build --product apf-agent 2>&1 | tail -1
# shellcheck source=/dev/null
source /var/tmp/apf-testbed/env

agent=$PWD/.build/debug/apf-agent
work=$(mktemp -d /tmp/apf-demo.XXXXXX)
export APF_HOME=$work/home
tag=demo
pid=
ssh_slurm() { ssh -F "$APF_TB_SSH_CONFIG" apf-main "$@"; }
# This demo's pilots as SLURM lists them: `<job id> <name> <state>` for names starting with the demo's tag.
pilots() { ssh_slurm "squeue -h -r --me -o '%i %j %T'" | awk -v t="$tag-" 'index($2, t) == 1'; }

cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
    # Whatever pilots are left (e.g. after an interrupted demo) are removed; the demo leaves SLURM as it found it.
    ids=$(pilots | awk '{print $1}' | tr '\n' ' ')
    if [ -n "${ids// /}" ]; then ssh_slurm "scancel $ids" || true; fi
    rm -rf "$work"
    local i
    for ((i = ${#started[@]} - 1; i >= 0; i--)); do testbed/tb down "${started[i]}" >/dev/null; done
}
trap cleanup EXIT

step "an installation: tenant, SSH profile (the testbed's Ed25519 key), target"
run "$agent" tenant add demo --description "make demo"
run "$agent" profile add demo-ssh --tenant demo --kind ssh --key-file "$APF_TB_KEY_ED25519" | sed -n 1p
run "$agent" target add slurm1 --tenant demo --host "$APF_TB_SSH_HOST" --port "$APF_TB_SSH_PORT" --user "$APF_TB_USER" \
    --batch slurm --profile demo-ssh --partition "${APF_TB_SLURM_PARTITION:-debug}"

step "pin the login node's host key (the fingerprint a site publishes; unknown keys are refused)"
fp=$(ssh-keygen -lf "$APF_TB_HOSTKEYS_DIR/main/ssh_host_ed25519_key.pub" | awk '{print $2}')
run "$agent" target trust slurm1 --key-type ssh-ed25519 --fingerprint "$fp" | tail -1
run "$agent" target check slurm1

step "the factory's configuration: APF's format, demand of 20 from a command that prints JSON"
mkdir -p "$work/conf"
cat >"$work/pilot.sh" <<'EOF'
#!/bin/sh
echo "pilot $APF_CLIENT_ID of queue $FACTORYQUEUE (factory $APFFID) on $(hostname)"
sleep "$1"
EOF
chmod 755 "$work/pilot.sh"
echo '{"queues": {"DEMO": {"ready": 20}}}' >"$work/demand.json"
cat >"$work/conf/factory.conf" <<EOF
[Factory]
factoryId = demo-factory
tag = $tag
journal = $work/journal.sqlite

[target:slurm1]
status.ttl = 2
EOF
cat >"$work/conf/queues.conf" <<EOF
[DEMO-SLURM]
enabled = True
tenant = demo
wmsqueue = DEMO
wmsstatusplugin = Command
wmsstatus.command.run = /bin/cat $work/demand.json
wmsstatus.command.sleep = 2
; total pilots follow demand: WeightedActivated (pending weight 0) gives the demand, KeepNRunning the difference
schedplugin = WeightedActivated, KeepNRunning, MaxPerCycle
sched.weightedactivated.pending = 0
sched.maxpercycle.maximum = 20
retire.policy = cancel
batchsubmitplugin = SSH
target = slurm1
executable = $work/pilot.sh
executable.arguments = 300
apfqueue.sleep = 3
pilot.walltime = 600
EOF
sed 's/^/    /' "$work/conf/queues.conf"
run "$agent" config check "$work/conf"

step "the daemon: apf-agent run --config $work/conf (logs on stderr → $work/agent.log)"
"$agent" run --config "$work/conf" 2>"$work/agent.log" &
pid=$!
for _ in $(seq 1 120); do
    [ "$(pilots | wc -l)" -ge 20 ] && break
    sleep 0.5
done
head -4 "$work/agent.log" | cut -c1-220

step "the pilots in SLURM (squeue on the login node)"
printf '$ squeue -h -r --me -o "%%i %%j %%T"  (this demo'"'"'s %s pilots)\n' "$(pilots | wc -l)"
pilots | sed 's/^/    /'

step "apf-agent status"
sleep 3
run "$agent" status --config "$work/conf"

step "demand drops to 5: queued pilots are cancelled first (newest first), then running ones"
echo '{"queues": {"DEMO": {"ready": 5}}}' >"$work/demand.json"
for _ in $(seq 1 60); do
    [ "$(pilots | grep -cv CANCELLED || true)" -le 5 ] && break
    sleep 0.5
done
sleep 3
run "$agent" status --config "$work/conf"
run "$agent" queue show DEMO-SLURM --config "$work/conf" --cycles 2

step "SIGTERM: cycles in flight finish, the journal stays consistent, the daemon exits"
t=$SECONDS
kill -TERM "$pid"
wait "$pid" && echo "apf-agent exited 0 after $((SECONDS - t)) s"
pid=
tail -2 "$work/agent.log" | cut -c1-160
echo
echo "demo done in $((SECONDS - t0)) s; removing its pilots and files, stopping what it started"
