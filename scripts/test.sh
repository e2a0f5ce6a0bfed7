#!/usr/bin/env bash
# make test: install the Debian packages the tests need, start the testbed, run all tests (unit and integration
# against the real components), and stop what this script started, even when the tests fail.
set -euo pipefail
cd "$(dirname "$0")/.."

testbed/tb install all

# Leave alone a testbed someone else started; stop only one started here.
if testbed/tb status all >/dev/null 2>&1; then
    echo "test: testbed already up; leaving it up afterwards"
else
    trap 'echo "test: stopping the testbed"; testbed/tb down all' EXIT
    testbed/tb up all
fi

bash scripts/swift.sh build --build-tests
mkdir -p .build
log=.build/test.log
start=$(date +%s)
rc=0
# A hung test must not eat the whole CI budget: stop after 25 minutes and say which tests never finished.
APF_INTEGRATION=1 timeout --signal=TERM --kill-after=30s 25m bash scripts/swift.sh test --skip-build 2>&1 \
    | tee "$log" || rc=$?
echo "test: swift test exited $rc after $(( $(date +%s) - start )) s (full log: $log)"
if [ "$rc" != 0 ]; then
    echo "test: tests that started but did not finish:"
    grep -o '◇ Test [^ ]*' "$log" | grep -vE '◇ Test (case|run)$' | sed 's/◇ Test //' | sort -u >"$log.started" || true
    grep -oE '[✔✘] Test [^ ]*' "$log" | grep -vE 'Test (case|run)$' | sed -E 's/[✔✘] Test //' | sort -u >"$log.ended" || true
    comm -23 "$log.started" "$log.ended" | sed 's/^/  /'
fi
exit "$rc"
