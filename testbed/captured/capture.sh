#!/bin/bash
# testbed/captured/capture.sh: record REAL outputs of the testbed's batch systems as parser fixtures.
#
# Run as root after `testbed/tb up all`. Every command runs as apftest over the testbed's sshds, exactly as the
# drivers run them: SLURM and SGE on the main sshd (127.0.0.1:2222), the Torque wrappers on the PBS login
# node (127.0.0.1:2223). For each capture NAME it writes
#   <system>-<version>/NAME.txt          stdout, byte for byte
#   <system>-<version>/NAME.stderr.txt   stderr, only when not empty
# and one row per capture (command, exit status) in <system>-<version>/INDEX.md. It submits its own jobs
# (names apfcap-*), cancels what it leaves running and takes about 2 minutes (one job must hit its time limit).
# The condor fake is not captured: its outputs are not real.
set -euo pipefail
HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
TB_ENV=${APF_TESTBED_DIR:-/var/tmp/apf-testbed}/env
[[ -f $TB_ENV ]] || { echo "no $TB_ENV: run testbed/tb up all" >&2; exit 1; }
# shellcheck source=/dev/null
. "$TB_ENV"
[[ ${APF_TB_SLURM:-} == 1 && ${APF_TB_SGE:-} == 1 && ${APF_TB_PBS:-} == 1 ]] \
    || { echo "slurm, sge and pbs must be up (tb up all)" >&2; exit 1; }

# remote PORT CMD: CMD is one string for the remote shell (as ssh sends it anyway).
remote() {
    local port=$1; shift
    ssh -F "$APF_TB_SSH_CONFIG" -p "$port" -o LogLevel=ERROR "$APF_TB_USER@$APF_TB_SSH_HOST" "$1"
}
main() { remote "$APF_TB_SSH_PORT" "$1"; }
pbs() { remote "$APF_TB_PBS_PORT" "$1"; }

DIR=""
# cap NAME PORT CMD [NOTE]: run, store stdout/stderr, add an INDEX row. Never fails.
cap() {
    local name=$1 port=$2 cmd=$3 note=${4:-} rc=0
    remote "$port" "$cmd" >"$DIR/$name.txt" 2>"$DIR/$name.stderr.txt" || rc=$?
    [[ -s $DIR/$name.stderr.txt ]] || rm -f "$DIR/$name.stderr.txt"
    # shellcheck disable=SC2016  # literal backquotes (Markdown)
    printf '| `%s.txt` | `%s` | %s | %s |\n' "$name" "${cmd//|/\\|}" "$rc" "$note" >>"$DIR/INDEX.md"
    echo "captured $DIR/$name.txt (rc $rc)"
}
begin() {   # begin DIR TITLE
    DIR=$HERE/$1
    rm -rf "$DIR"; mkdir -p "$DIR"
    {
        echo "# $2"
        echo
        echo "Captured by \`testbed/captured/capture.sh\` on $(date -u +%Y-%m-%d) (Debian 12, the apf-agent testbed)."
        echo "Commands ran as \`$APF_TB_USER\` over ssh (port in the command column's system: see ../README.md)."
        echo "\`NAME.stderr.txt\` holds stderr when there was any."
        echo
        echo "| file | command | exit | notes |"
        echo "|---|---|---|---|"
    } >"$DIR/INDEX.md"
}

sq_state() { squeue -h -j "$1" -o %T 2>/dev/null | head -n 1; }
wait_until() {   # wait_until SECONDS CMD...
    local deadline=$(( $(date +%s) + $1 )); shift
    until "$@" >/dev/null 2>&1; do
        (( $(date +%s) >= deadline )) && { echo "timeout waiting for: $*" >&2; return 1; }
        sleep 0.5
    done
}
sacct_final() { [[ $(sacct -X -n -P -j "$1" -o State 2>/dev/null | head -n 1) =~ ^(COMPLETED|FAILED|CANCELLED|TIMEOUT) ]]; }
qacct_has() { SGE_ROOT=/var/lib/gridengine SGE_CELL=default qacct -j "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------------------------------------------- SLURM
slurm_capture() {
    local ver d1 f1 r1 h1 t1 arr
    ver=$(sinfo -V | awk '{ print $2 }')
    begin "slurm-$ver" "SLURM $ver (Debian slurm-wlm), single node, 8 CPUs, slurmdbd accounting, MinJobAge ${APF_TB_SLURM_MIN_JOB_AGE}"
    main 'printf "#!/bin/sh\nexit 3\n" >apfcap-fail.sh; chmod +x apfcap-fail.sh'
    d1=$(main 'sbatch --parsable -J apfcap-done -o /dev/null --wrap true')
    f1=$(main 'sbatch --parsable -J apfcap-fail -o /dev/null apfcap-fail.sh')
    cap sbatch-parsable "$APF_TB_SSH_PORT" 'sbatch --parsable -J apfcap-run -o /dev/null --wrap "sleep 300"' \
        'a job that runs 300 s'
    r1=$(cat "$DIR/sbatch-parsable.txt")
    h1=$(main 'sbatch --parsable -H -J apfcap-held -o /dev/null --wrap true')
    t1=$(main 'sbatch --parsable -J apfcap-timeout --time=1 -o /dev/null --wrap "sleep 300"')
    cap sbatch-parsable-array "$APF_TB_SSH_PORT" \
        'sbatch --parsable -J apfcap-arr --array=1-20 -o /dev/null --wrap "sleep 300"' \
        '20 tasks; with the jobs above, 6 run and 14 wait for CPUs'
    arr=$(cat "$DIR/sbatch-parsable-array.txt")
    cap sbatch-bad-partition "$APF_TB_SSH_PORT" 'sbatch --parsable -p nosuchpartition --wrap true' \
        'a permanent submit failure'
    cap sbatch-bad-option "$APF_TB_SSH_PORT" 'sbatch --parsable --no-such-option --wrap true' \
        'a permanent submit failure (usage)'
    wait_until 60 sacct_final "$d1"; wait_until 60 sacct_final "$f1"
    wait_until 60 bash -c "[[ \$(squeue -h -j $r1 -o %T) == RUNNING ]]"
    wait_until 60 bash -c "squeue -h -r -j $arr -o %T | grep -q RUNNING"
    sleep 1
    cap squeue-pipe "$APF_TB_SSH_PORT" "squeue -h -r -t all -u $APF_TB_USER -o '%i|%F|%K|%j|%T|%r|%u|%a|%P'" \
        'all states incl. COMPLETED/FAILED (within MinJobAge), array tasks one per line (-r); %a is the ACCOUNT'
    cap squeue-name-semicolon "$APF_TB_SSH_PORT" "squeue -h -r -t all --name=apfcap-arr -o '%i;%T;%r'" \
        'the LESSONS.md listing, by job name'
    cap squeue-pipe-folded "$APF_TB_SSH_PORT" "squeue -h -t all -u $APF_TB_USER -o '%i|%T|%r'" \
        'without -r pending array tasks fold into one line ID_[a-b]'
    cap squeue-json "$APF_TB_SSH_PORT" 'squeue --json' 'openapi v0.0.38 layout'
    cap squeue-unknown-id "$APF_TB_SSH_PORT" 'squeue -h -j 999999 -o %i' 'unknown id: rc 1'
    cap squeue-no-match "$APF_TB_SSH_PORT" "squeue -h -t all --name=no-such-job-name -o '%i|%T'" 'empty, rc 0'
    cap scontrol-show-job-oneliner "$APF_TB_SSH_PORT" "scontrol show job -o $r1" 'a running job'
    cap scancel-running "$APF_TB_SSH_PORT" "scancel $r1" 'silent on success'
    cap scancel-pending-array-task "$APF_TB_SSH_PORT" "scancel ${arr}_20" 'a pending task'
    cap scancel-held "$APF_TB_SSH_PORT" "scancel $h1" 'a held (pending) job'
    cap scancel-unknown-id "$APF_TB_SSH_PORT" 'scancel 999999' 'unknown id: silent AND rc 0 in 22.05'
    cap scancel-unknown-id-verbose "$APF_TB_SSH_PORT" 'scancel -v 999999' 'unknown id with -v: error on stderr, still rc 0'
    cap scancel-again "$APF_TB_SSH_PORT" "scancel $r1" 'cancel of an already cancelled job'
    cap scancel-array "$APF_TB_SSH_PORT" "scancel $arr" 'the rest of the array'
    wait_until 150 sacct_final "$t1"
    wait_until 30 sacct_final "$r1"; wait_until 30 sacct_final "$h1"
    sleep 2
    local ids="$d1,$f1,$r1,$h1,$t1,$arr"
    cap sacct-X-n-P "$APF_TB_SSH_PORT" "sacct -X -n -P -o JobIDRaw,JobName,State,ExitCode -j $ids" \
        'the LESSONS.md accounting query: COMPLETED, FAILED 3:0, CANCELLED by uid, TIMEOUT, array tasks'
    cap sacct-X-n-P-wide "$APF_TB_SSH_PORT" \
        "sacct -X -n -P -o JobIDRaw,JobID,JobName,User,Account,Partition,State,ExitCode,Reason,Submit,Start,End,Elapsed -j $ids" \
        'more fields; JobID shows ARRAY_TASK'
    cap sacct-n-P-steps "$APF_TB_SSH_PORT" "sacct -n -P -o JobIDRaw,JobID,State,ExitCode -j $f1,$r1" \
        'without -X: .batch and .extern steps'
    cap sacct-json "$APF_TB_SSH_PORT" "sacct --json -j $d1,$f1" 'needs slurmdbd'
    cap sacct-unknown-id "$APF_TB_SSH_PORT" 'sacct -X -n -P -o JobIDRaw,State -j 999999' 'empty, rc 0'
    echo "" >>"$DIR/INDEX.md"
    echo "Job ids: done $d1, fail $f1, run $r1, held $h1, timeout $t1, array $arr." >>"$DIR/INDEX.md"
}

# ---------------------------------------------------------------------------------------------------- SGE
sge_capture() {
    local ver s1 s2 s3 s4 s5 s6
    ver=$(SGE_ROOT=/var/lib/gridengine SGE_CELL=default qstat -help 2>&1 | awk 'NR == 1 { print $2 }')
    begin "sge-$ver" "Son of Grid Engine $ver (Debian gridengine), one host, all.q with 8 slots"
    main 'printf "#!/bin/sh\nexit 3\n" >apfcap-fail.sh; chmod +x apfcap-fail.sh'
    cap qsub-terse-bad-wd "$APF_TB_SSH_PORT" 'qsub -terse -b y -wd /nonexistent -N apfcap-eqw -o /dev/null -j y true' \
        'accepted; fails when it starts (Eqw)'
    s6=$(cat "$DIR/qsub-terse-bad-wd.txt")
    wait_until 60 bash -c "SGE_ROOT=/var/lib/gridengine SGE_CELL=default qstat -u '*' | grep -q ' Eqw '"
    cap qsub-terse "$APF_TB_SSH_PORT" 'qsub -terse -b y -N apfcap-done -o /dev/null -j y true' 'a job that exits 0'
    s1=$(cat "$DIR/qsub-terse.txt")
    s2=$(main 'qsub -terse -N apfcap-fail -o /dev/null -j y apfcap-fail.sh')
    s3=$(main 'qsub -terse -b y -N apfcap-run -o /dev/null -j y sleep 300')
    cap qsub-terse-held "$APF_TB_SSH_PORT" 'qsub -terse -h -b y -N apfcap-held -o /dev/null -j y true' 'held (hqw)'
    s4=$(cat "$DIR/qsub-terse-held.txt")
    cap qsub-terse-array "$APF_TB_SSH_PORT" 'qsub -terse -t 1-20 -b y -N apfcap-arr -o /dev/null -j y sleep 300' \
        '20 tasks: ID.first-last:step'
    s5=$(cut -d. -f1 "$DIR/qsub-terse-array.txt")
    cap qsub-no-such-queue "$APF_TB_SSH_PORT" 'qsub -terse -q nosuch.q -b y true' 'a permanent submit failure'
    wait_until 60 qacct_has "$s1"; wait_until 60 qacct_has "$s2"
    wait_until 60 bash -c "SGE_ROOT=/var/lib/gridengine SGE_CELL=default qstat -u '*' -s r | grep -q apfcap-arr"
    sleep 3
    cap qstat-xml "$APF_TB_SSH_PORT" 'qstat -xml' 'running (r), pending (qw, hqw, Eqw), array tasks'
    cap qstat-xml-u "$APF_TB_SSH_PORT" "qstat -xml -u $APF_TB_USER" 'the LESSONS.md listing'
    cap qstat-j-error "$APF_TB_SSH_PORT" "qstat -j $s6" 'the Eqw job: error reason'
    cap qstat-j-unknown "$APF_TB_SSH_PORT" 'qstat -j 999999' 'unknown id: rc 1'
    cap qacct-j-done "$APF_TB_SSH_PORT" "qacct -j $s1" 'exit_status 0'
    cap qacct-j-fail "$APF_TB_SSH_PORT" "qacct -j $s2" 'exit_status 3'
    cap qdel-running "$APF_TB_SSH_PORT" "qdel $s3" ''
    cap qdel-held "$APF_TB_SSH_PORT" "qdel $s4" ''
    cap qdel-array "$APF_TB_SSH_PORT" "qdel $s5" 'running and pending tasks'
    cap qdel-error-job "$APF_TB_SSH_PORT" "qdel $s6" ''
    cap qdel-unknown "$APF_TB_SSH_PORT" 'qdel 999999' 'unknown id: rc 1'
    cap qdel-again "$APF_TB_SSH_PORT" "qdel $s3" 'an already deleted job'
    wait_until 60 qacct_has "$s3"; wait_until 60 qacct_has "$s5"
    sleep 3
    cap qacct-j-deleted "$APF_TB_SSH_PORT" "qacct -j $s3" 'qdel of a running job: failed 100, exit_status 137'
    cap qacct-j-array "$APF_TB_SSH_PORT" "qacct -j $s5" 'one record per task that ran'
    cap qacct-j-unknown "$APF_TB_SSH_PORT" 'qacct -j 999999' 'unknown id'
    cap qacct-j-held-never-ran "$APF_TB_SSH_PORT" "qacct -j $s4" 'deleted before it ran: no record'
    wait_until 30 bash -c "! SGE_ROOT=/var/lib/gridengine SGE_CELL=default qstat -u $APF_TB_USER | grep -v ' Eqw ' | grep -q apfcap"
    cap qstat-xml-empty "$APF_TB_SSH_PORT" "qstat -xml -u $APF_TB_USER" 'no jobs'
    echo "" >>"$DIR/INDEX.md"
    echo "Job ids: done $s1, fail $s2, run $s3, held $s4, array $s5, bad wd $s6." >>"$DIR/INDEX.md"
}

# ---------------------------------------------------------------------------------------------------- PBS
pbs_capture() {
    local ver p1 p2 p3
    ver=$(sinfo -V | awk '{ print $2 }')
    begin "torque-wrappers-slurm-$ver" "Torque-compatible wrappers (Debian slurm-wlm-torque $ver) over SLURM $ver: NOT a PBS server"
    pbs 'printf "#!/bin/sh\n#PBS -N apfcap-pbs-run\nsleep 300\n" >apfcap-pbs-run.sh; printf "#!/bin/sh\n#PBS -N apfcap-pbs-done\nexit 3\n" >apfcap-pbs-done.sh'
    cap qsub "$APF_TB_PBS_PORT" 'qsub apfcap-pbs-run.sh' 'bare number, no .server suffix'
    p1=$(cat "$DIR/qsub.txt")
    p2=$(pbs 'qsub apfcap-pbs-done.sh')
    cap qsub-held "$APF_TB_PBS_PORT" 'qsub -h apfcap-pbs-run.sh' 'held: qstat shows Q'
    p3=$(cat "$DIR/qsub-held.txt")
    cap qsub-array "$APF_TB_PBS_PORT" 'qsub -t 1-3 apfcap-pbs-run.sh' '-t is passed as --array'
    cap qsub-stdin "$APF_TB_PBS_PORT" 'echo true | qsub' 'qsub does not read stdin'
    wait_until 60 sacct_final "$p2"
    wait_until 60 bash -c "[[ \$(squeue -h -j $p1 -o %T) == RUNNING ]]"
    cap qstat-f-running "$APF_TB_PBS_PORT" "qstat -f $p1" 'key = value blocks'
    cap qstat-f-done "$APF_TB_PBS_PORT" "qstat -f $p2" 'finished with exit 3: job_state C, no exit_status'
    cap qstat-f-held "$APF_TB_PBS_PORT" "qstat -f $p3" ''
    cap qstat "$APF_TB_PBS_PORT" 'qstat' 'the default table'
    cap qstat-f-all "$APF_TB_PBS_PORT" 'qstat -f' 'every job'
    cap qstat-x "$APF_TB_PBS_PORT" "qstat -x $p1" '-x (XML in Torque, finished jobs in PBS Pro) is not supported'
    cap qstat-unknown "$APF_TB_PBS_PORT" 'qstat 999999' 'unknown id: no output, rc 153'
    cap qstat-f-unknown "$APF_TB_PBS_PORT" 'qstat -f 999999' 'unknown id'
    cap qdel "$APF_TB_PBS_PORT" "qdel $p1" ''
    cap qdel-unknown "$APF_TB_PBS_PORT" 'qdel 999999' 'unknown id'
    cap qstat-Q "$APF_TB_PBS_PORT" 'qstat -Q' 'queues'
    cap pbsnodes-a "$APF_TB_PBS_PORT" 'pbsnodes -a' ''
    wait_until 30 sacct_final "$p1"
    cap qstat-f-cancelled "$APF_TB_PBS_PORT" "qstat -f $p1" 'after qdel: job_state C, like a finished job'
    pbs "scancel -u $APF_TB_USER -n apfcap-pbs-run" || true
    echo "" >>"$DIR/INDEX.md"
    echo "Job ids: running $p1, exit 3 $p2, held $p3." >>"$DIR/INDEX.md"
}

what=${1:-all}
case $what in
    slurm) slurm_capture ;;
    sge) sge_capture ;;
    pbs) pbs_capture ;;
    all) slurm_capture; sge_capture; pbs_capture ;;
    *) echo "usage: capture.sh [slurm|sge|pbs|all]" >&2; exit 2 ;;
esac
