#!/usr/bin/env bash
# Checks the SAM template offline: `sam validate --lint`, `cfn-lint`, then scripts/template_check.py
# (the template against the route table of target/debug/jhe, the events and the function crates).
#
#   bash scripts/sam-check.sh [template_check.py options]
#
# Creates .venv-sam at the repository root on first use (the pinned scripts/requirements-sam.txt;
# reinstalled when that file changes). Needs no AWS account, credentials or network beyond PyPI.
# Arguments go to template_check.py. Ends with `template: N passed, M failed` (one per stage);
# exits non-zero if a stage failed.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 2
venv="$root/.venv-sam"
req="scripts/requirements-sam.txt"
stamp="$venv/.requirements.sha256"

want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "sam-check: installing $req into .venv-sam" >&2
  if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv" || { echo "template: 0 passed, 1 failed"; exit 2; }
  fi
  if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"; then
    echo "sam-check: pip install failed" >&2
    echo "template: 0 passed, 1 failed"
    exit 2
  fi
  echo "$want" > "$stamp"
fi

# Offline and credential-free: a region for the SAM translator, no telemetry, no profile lookups.
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 SAM_CLI_TELEMETRY=0
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE

passed=0
failed=0
stage() {  # stage NAME COMMAND...
  local name="$1"; shift
  echo "== $name: $*"
  if "$@"; then
    echo "PASS $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name (exit $?)"
    failed=$((failed + 1))
  fi
}

stage "sam validate --lint" "$venv/bin/sam" validate --lint --template-file infra/template.yaml
stage "cfn-lint" "$venv/bin/cfn-lint" infra/template.yaml
stage "template_check" "$venv/bin/python" scripts/template_check.py "$@"

echo "template: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
