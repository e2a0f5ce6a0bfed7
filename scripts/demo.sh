#!/usr/bin/env bash
# make demo: bring up the testbed's sshd and run commands on it through apf-agent's pooled libssh2 transport.
set -euo pipefail
cd "$(dirname "$0")/.."

testbed/tb install ssh
started=0
if ! testbed/tb status ssh >/dev/null 2>&1; then
    testbed/tb up ssh
    started=1
fi
bash scripts/swift.sh build --product apf-agent
source /var/tmp/apf-testbed/env

agent=.build/debug/apf-agent
args=(--host "$APF_TB_SSH_HOST" --port "$APF_TB_SSH_PORT" --user "$APF_TB_USER"
      --identity-file "$APF_TB_KEY_ED25519" --known-hosts "$APF_TB_KNOWN_HOSTS")

echo "== one command, arguments passed byte-exact (quotes, \$, backticks, newline):"
"$agent" ssh exec "${args[@]}" -- printf '[%s]\n' "it's" '$HOME `id`' "$(printf 'two\nlines')"
echo "== 50 commands through one pooled connection:"
time "$agent" ssh exec "${args[@]}" --count 50 -- true
echo "== an unknown host key is refused, with the fingerprint to check:"
empty=$(mktemp)
"$agent" ssh exec "${args[@]}" --known-hosts "$empty" -- true || true
rm -f "$empty"

if [ "$started" = 1 ] && [ "${KEEP:-0}" != 1 ]; then
    testbed/tb down ssh
else
    echo "testbed left running; stop it with: testbed/tb down all"
fi
