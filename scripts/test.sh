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
APF_INTEGRATION=1 bash scripts/swift.sh test --skip-build
