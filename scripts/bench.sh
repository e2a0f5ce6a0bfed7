#!/usr/bin/env bash
# make bench-*: release build, the testbed components the benchmark needs, one benchmark; afterwards stops only the
# components this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:?usage: bench.sh ssh|submit|agent [apf-bench options]}
case $what in
    ssh) components=(ssh) ;;
    submit) components=(ssh slurm) ;;
    agent) components=() ;;  # simulated targets: no testbed
    *) echo "bench.sh: unknown benchmark '$what' (ssh|submit|agent)" >&2; exit 2 ;;
esac
started=()
stop_started() {
    local i
    for ((i = ${#started[@]} - 1; i >= 0; i--)); do testbed/tb down "${started[i]}"; done
}
trap stop_started EXIT
for c in "${components[@]}"; do
    testbed/tb install "$c"
    if ! testbed/tb status "$c" >/dev/null 2>&1; then
        testbed/tb up "$c"
        started+=("$c")
    fi
done
bash scripts/swift.sh build -c release --product apf-bench
.build/release/apf-bench "$what" "${@:2}"
