#!/usr/bin/env bash
# Runs the Swift toolchain, which lives in /opt/swift on the project's machines.
set -euo pipefail
command -v swift >/dev/null 2>&1 || export PATH="/opt/swift/usr/bin:$PATH"
exec swift "$@"
