#!/usr/bin/env bash
# Creates (if missing) the Python virtualenv for the test tooling at <repo>/.venv and installs
# tests/harness/requirements-test.txt into it. Idempotent: pip runs only when the requirements (or the
# venv's Python) changed since the last successful install, recorded in a stamp file.
#
# Usage:  PY=$(bash tests/harness/pyenv.sh)      # progress goes to stderr, the venv's python to stdout
#         "$PY" tests/harness/fhir_validate.py DIR
#
# Needs Python >= 3.11 (the pinned pandas/numpy require it): $PYTHON if set, else the first of
# python3.13, python3.12, python3.11, python3 that is new enough. $JHE_VENV overrides the venv
# folder. Works with a bare python3: if the venv module has no ensurepip (Debian without
# python3-venv) it falls back to a pip-less venv filled by the system pip (`pip --python`).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${JHE_VENV:-$REPO/.venv}"
REQ="$REPO/tests/harness/requirements-test.txt"
STAMP="$VENV/.requirements-test.stamp"

log() { printf 'pyenv: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# True when "$1" runs and is Python >= 3.11.
python_ok() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}

pick_python() {
    if [[ -n "${PYTHON:-}" ]]; then
        python_ok "$PYTHON" || die "\$PYTHON=$PYTHON is not a working Python >= 3.11"
        echo "$PYTHON"
        return
    fi
    local candidate
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then
            echo "$candidate"
            return
        fi
    done
    die "no Python >= 3.11 found (tried python3.13, python3.12, python3.11, python3); set \$PYTHON"
}

create_venv() {
    local base_python="$1"
    log "creating virtualenv $VENV with $("$base_python" --version 2>&1)"
    rm -rf "$VENV"
    if "$base_python" -m venv "$VENV" >&2 2>/dev/null; then
        return
    fi
    # No ensurepip (e.g. Debian/Ubuntu without python3-venv): a venv without pip, filled later
    # by the base interpreter's own pip.
    rm -rf "$VENV"
    "$base_python" -m venv --without-pip "$VENV" >&2 \
        || die "'$base_python -m venv' failed; install the venv module (e.g. apt-get install python3-venv)"
    "$base_python" -m pip --version >/dev/null 2>&1 \
        || die "the venv has no pip and '$base_python -m pip' is missing; install python3-venv or python3-pip"
    echo "$base_python" >"$VENV/.base-python"
}

# The pip command that installs into the venv.
venv_pip() {
    if "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        "$VENV/bin/python" -m pip "$@"
    else
        "$(cat "$VENV/.base-python")" -m pip --python "$VENV/bin/python" "$@"
    fi
}

# Fingerprint of what is installed: the requirements file and the venv interpreter's version.
fingerprint() {
    "$VENV/bin/python" - "$REQ" <<'EOF'
import hashlib, sys
with open(sys.argv[1], "rb") as f:
    digest = hashlib.sha256(f.read())
digest.update(sys.version.encode())
print(digest.hexdigest())
EOF
}

main() {
    [[ -f "$REQ" ]] || die "missing $REQ"
    mkdir -p "$(dirname "$VENV")"

    # Serialize concurrent runs (two test suites starting at once) when flock exists. The lock
    # lives in the temp folder so the work tree stays clean.
    if command -v flock >/dev/null 2>&1; then
        local lock_name
        lock_name="jhe-pyenv-$(printf '%s' "$VENV" | cksum | cut -d' ' -f1).lock"
        exec 9>"${TMPDIR:-/tmp}/$lock_name"
        flock 9
    fi

    if [[ ! -x "$VENV/bin/python" ]] || ! python_ok "$VENV/bin/python"; then
        create_venv "$(pick_python)"
    fi

    local want
    want="$(fingerprint)"
    if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
        log "requirements up to date in $VENV"
    else
        log "installing $(basename "$REQ") into $VENV"
        rm -f "$STAMP"
        PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
            venv_pip install --quiet --requirement "$REQ" >&2
        echo "$want" >"$STAMP"
    fi

    echo "$VENV/bin/python"
}

main "$@"
