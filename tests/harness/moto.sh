#!/usr/bin/env bash
# Starts or stops a moto server (local mocks of DynamoDB, S3 and Cognito) on a free loopback port,
# for the AWS adapter tests (tests/tests/blackbox/aws.rs) and for `jhe` runs against local "AWS".
#
# Usage:  bash tests/harness/moto.sh start    # prints the URL; also writes test-output/moto.{url,pid,log}
#         JHE_TEST_MOTO_URL=$(cat test-output/moto.url) cargo test -p jhe-tests aws
#         bash tests/harness/moto.sh stop
#
# `start` is idempotent: when the recorded server still answers it only prints its URL.
# $MOTO_PORT picks the port (default: a free one).
#
# moto lives in its own virtualenv (.venv/moto, ignored by git with the rest of .venv), not in the
# test venv of tests/harness/pyenv.sh: moto and botocore require python-dateutil < 3, which conflicts
# with the python-dateutil==4.0.0 pin of tests/harness/requirements-test.txt (pip: ResolutionImpossible).
# $JHE_MOTO_VENV overrides the folder. Needs Python >= 3.9 and curl.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$REPO/test-output"
VENV="${JHE_MOTO_VENV:-$REPO/.venv/moto}"
MOTO_REQ='moto[server]==5.2.5'
URL_FILE="$OUT/moto.url"
PID_FILE="$OUT/moto.pid"
LOG_FILE="$OUT/moto.log"
# A private copy of url and pid beside the venv: test-output/ is wiped by tests/run.sh, and a
# server whose pid file was wiped would otherwise be orphaned (and a second one started).
STATE="$VENV/.server"

log() { printf 'moto: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

answers() { curl -sf -o /dev/null --max-time 2 "$1/moto-api/"; }
# True when pid "$1" is a live moto server (not a recycled pid of something else).
is_moto() { [[ -n "$1" ]] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q moto_server; }

ensure_venv() {
    if [[ -x "$VENV/bin/moto_server" && -f "$VENV/.moto-req" && "$(cat "$VENV/.moto-req")" == "$MOTO_REQ" ]]; then
        return
    fi
    local py="${PYTHON:-python3}"
    command -v "$py" >/dev/null 2>&1 || die "no $py; set \$PYTHON"
    log "installing $MOTO_REQ into $VENV (about a minute, once)"
    mkdir -p "$(dirname "$VENV")"
    rm -rf "$VENV"
    if ! "$py" -m venv "$VENV" >&2 2>/dev/null; then
        # No ensurepip (Debian without python3-venv): a pip-less venv filled by the system pip.
        rm -rf "$VENV"
        "$py" -m venv --without-pip "$VENV" >&2 || die "'$py -m venv' failed"
    fi
    local pip=("$VENV/bin/python" -m pip)
    "${pip[@]}" --version >/dev/null 2>&1 || pip=("$py" -m pip --python "$VENV/bin/python")
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 "${pip[@]}" install --quiet "$MOTO_REQ" >&2
    echo "$MOTO_REQ" >"$VENV/.moto-req"
}

free_port() {
    "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Prints "url pid" of the recorded server, if one is recorded.
recorded() {
    if [[ -f "$STATE" ]]; then cat "$STATE"; elif [[ -f "$URL_FILE" && -f "$PID_FILE" ]]; then
        echo "$(cat "$URL_FILE") $(cat "$PID_FILE")"
    fi
}

start() {
    mkdir -p "$OUT"
    local url pid
    read -r url pid <<<"$(recorded)" || true
    if is_moto "${pid:-}" && answers "$url"; then
        echo "$url" >"$URL_FILE"
        echo "$pid" >"$PID_FILE"
        echo "$url"
        return
    fi
    command -v curl >/dev/null 2>&1 || die "curl is needed"
    ensure_venv
    local port="${MOTO_PORT:-$(free_port)}"
    url="http://127.0.0.1:$port"
    # Detached from this shell (own session, no terminal), so it outlives the script.
    setsid nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" </dev/null >"$LOG_FILE" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"
    echo "$url $pid" >"$STATE"
    for _ in $(seq 1 150); do
        if answers "$url"; then
            echo "$url" >"$URL_FILE"
            log "moto server $url (pid $pid, log $LOG_FILE)"
            echo "$url"
            return
        fi
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$LOG_FILE" >&2; rm -f "$PID_FILE" "$STATE"; die "moto_server exited"; }
        sleep 0.2
    done
    kill "$pid" 2>/dev/null || true
    rm -f "$PID_FILE" "$STATE"
    die "moto_server did not answer on $url/moto-api/ within 30 s (log: $LOG_FILE)"
}

stop() {
    local url pid
    read -r url pid <<<"$(recorded)" || true
    if is_moto "${pid:-}"; then
        if kill "$pid" 2>/dev/null; then
            for _ in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -9 "$pid" 2>/dev/null || true
            log "stopped pid $pid"
        fi
    fi
    rm -f "$PID_FILE" "$URL_FILE" "$STATE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) die "usage: $0 start|stop" ;;
esac
