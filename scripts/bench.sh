#!/usr/bin/env bash
# make bench-*: release build, testbed up, one benchmark; stops the testbed if it started it.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:?usage: bench.sh ssh}
testbed/tb install ssh
if ! testbed/tb status ssh >/dev/null 2>&1; then
    trap 'testbed/tb down ssh' EXIT
    testbed/tb up ssh
fi
bash scripts/swift.sh build -c release --product apf-bench
.build/release/apf-bench "$what" "${@:2}"
