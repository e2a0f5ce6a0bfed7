# shellcheck shell=bash
# moto: a real EC2 Query API (moto server 5.2.x) on loopback, with SigV4 checking switched on (TESTBED.md §9).
#
# moto routes by the SigV4 credential scope and, by default, accepts any credentials. With
# INITIAL_NO_AUTH_ACTION_COUNT=3 only the first three API calls are free: we spend them on creating the IAM user
# apf-test, its inline ec2:* policy and its access key. From then on every request must carry a valid signature of
# a known key: a wrong secret gets "AuthFailure: AWS was not able to validate the provided access credentials".
# State is in memory only; a restart recreates the user and a new key.
#
# Python: the first of $APF_TB_PYTHON, python3, /usr/bin/python3 that imports moto 5.x with its server extras
# (the base image's python has moto 5.2.1); otherwise a venv in the state dir with `pip install 'moto[server]'`.

MOTO_DIR=$TB_DIR/moto
MOTO_VENV=$TB_DIR/moto-venv
MOTO_PIDFILE=$TB_DIR/run/moto.pid
MOTO_LOG=$TB_DIR/log/moto.log
MOTO_PORT_FILE=$MOTO_DIR/port
MOTO_CREDS=$MOTO_DIR/credentials     # 0600: line 1 access key id, line 2 secret access key (IAM user apf-test)
MOTO_FREE_CALLS=3                    # create-user, put-user-policy, create-access-key
MOTO_REGION=us-east-1

moto_packages() { echo python3 python3-venv curl iproute2; }

# Prints the interpreter (sys.executable) of a python that can run moto's server.
moto_python() {
    local c
    for c in ${APF_TB_PYTHON:-} python3 "${HOME:-/root}/.pyenv/shims/python3" /usr/local/bin/python3 /usr/bin/python3 \
        "$MOTO_VENV/bin/python"; do
        command -v "$c" >/dev/null 2>&1 || continue
        "$c" -c 'import moto, moto.server, flask, flask_cors, boto3; assert moto.__version__.startswith("5.")' \
            >/dev/null 2>&1 || continue
        "$c" -c 'import sys; print(sys.executable)'
        return 0
    done
    return 1
}

moto_ensure_python() {
    moto_python && return 0
    log "moto: no python with moto[server]; creating $MOTO_VENV (pip install, ~40 s)"
    /usr/bin/python3 -m venv "$MOTO_VENV" >&2 || return 1
    "$MOTO_VENV/bin/pip" install -q 'moto[server]>=5.2,<5.3' boto3 >&2 9>&- || return 1
    moto_python
}

moto_pid() { pidfile_live "$MOTO_PIDFILE" "moto.server"; }
moto_port() { [[ -s $MOTO_PORT_FILE ]] && cat "$MOTO_PORT_FILE"; }

moto_answers() {   # moto_answers PORT: the management API answers 200 (does not count as an API call)
    [[ $(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$1/moto-api/" 2>/dev/null) == 200 ]]
}

moto_free_port() {
    local p
    for p in $(seq 5000 5099); do
        [[ -z $(ss -Hltn "sport = :$p" 2>/dev/null) ]] && { echo "$p"; return 0; }
    done
    return 1
}

moto_is_up() { moto_pid >/dev/null && [[ -s $MOTO_CREDS ]]; }

moto_up() {
    local pid py port i
    if pid=$(moto_pid); then
        if [[ -s $MOTO_CREDS ]] && port=$(moto_port) && moto_answers "$port"; then
            log "moto already running (pid $pid, port $port)"
            return 0
        fi
        log "moto (pid $pid) has no IAM key or does not answer; restarting it"
        moto_down
    fi
    py=$(moto_ensure_python) || die "moto: cannot find or install moto[server] (python3-venv, PyPI)"
    port=$(moto_free_port) || die "moto: no free port in 5000-5099"
    install -d -m 0700 "$MOTO_DIR"
    rm -f "$MOTO_CREDS" "$MOTO_PORT_FILE"
    INITIAL_NO_AUTH_ACTION_COUNT=$MOTO_FREE_CALLS setsid "$py" -m moto.server -H 127.0.0.1 -p "$port" \
        </dev/null >"$MOTO_LOG" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$MOTO_PIDFILE"
    for ((i = 0; i < 200; i++)); do
        moto_answers "$port" && break
        proc_alive "$pid" || die "moto exited at start; see $MOTO_LOG"
        sleep 0.1
    done
    moto_answers "$port" || die "moto did not answer on 127.0.0.1:$port within 20 s; see $MOTO_LOG"
    echo "$port" | write_atomic "$MOTO_PORT_FILE" 0600
    echo "$py" | write_atomic "$MOTO_DIR/python" 0600
    # The three free calls: an IAM user with an inline ec2:* policy and an access key for the tests.
    MOTO_URL="http://127.0.0.1:$port" MOTO_CREDS_OUT="$MOTO_CREDS" "$py" - <<'PY' 9>&- || die "moto: IAM set-up failed; see $MOTO_LOG"
import json, os, boto3
url = os.environ["MOTO_URL"]
iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1",
                   aws_access_key_id="testbed-bootstrap", aws_secret_access_key="testbed-bootstrap")
iam.create_user(UserName="apf-test")
iam.put_user_policy(UserName="apf-test", PolicyName="ec2-all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="apf-test")["AccessKey"]
out = os.environ["MOTO_CREDS_OUT"]
tmp = out + ".tmp"
fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f:
    f.write(key["AccessKeyId"] + "\n" + key["SecretAccessKey"] + "\n")
os.rename(tmp, out)
PY
    log "moto up (pid $pid) on http://127.0.0.1:$port, SigV4 enforced, IAM user apf-test"
}

moto_down() {
    local pid
    if pid=$(moto_pid); then
        kill_tree "$pid"
        log "moto stopped (pid $pid)"
    fi
    rm -f "$MOTO_PIDFILE" "$MOTO_CREDS" "$MOTO_PORT_FILE" "$MOTO_DIR/python"
}

moto_status() {
    local pid
    if pid=$(moto_pid); then
        echo "  moto pid $pid  http://127.0.0.1:$(moto_port)  SigV4 enforced; key for IAM user apf-test in $MOTO_CREDS"
    else
        echo "  moto not running"
    fi
}

moto_env() {
    echo "APF_TB_MOTO_URL=http://127.0.0.1:$(moto_port)"
    echo "APF_TB_MOTO_REGION=$MOTO_REGION"
    echo "APF_TB_MOTO_CREDENTIALS=$MOTO_CREDS"
    # The interpreter running moto (it has boto3/botocore, used as an independent SigV4 reference).
    [[ -s $MOTO_DIR/python ]] && echo "APF_TB_MOTO_PYTHON=$(cat "$MOTO_DIR/python")"
}
