#!/usr/bin/env bash
# Checks the SAM template offline: `sam validate --lint`, `cfn-lint`, tests/harness/template_check.py
# (the template against the route table of target/debug/jhe, the events and the function crates),
# then checkov (framework cloudformation) with the accepted findings of infra/checkov-skips.yaml.
#
#   bash tests/harness/sam-check.sh [template_check.py options]
#
# Creates two venvs on first use, each reinstalled when its pinned requirements change: .venv-sam
# at the repository root (tests/harness/requirements-sam.txt: the SAM CLI, cfn-lint) and .venv-sam/checkov
# (infra/requirements-checkov.txt: checkov pins a boto3 that the SAM CLI cannot share).
# Needs no AWS account, credentials or network beyond PyPI. Arguments go to template_check.py.
# Prints `checkov: N passed, M failed` for checkov, and ends with `template: N passed, M failed`
# (one per stage); exits non-zero if a stage failed.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root" || exit 2
venv="$root/.venv-sam"
# Inside .venv-sam, so that it is ignored and removed with it.
ckv_venv="$root/.venv-sam/checkov"
template="infra/template.yaml"
skips="infra/checkov-skips.yaml"

ensure_venv() {  # ensure_venv DIR REQUIREMENTS
  local dir="$1" req="$2" stamp="$1/.requirements.sha256" want
  want="$(sha256sum "$req" | cut -d' ' -f1)"
  if [[ -x "$dir/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  echo "sam-check: installing $req into ${dir#"$root"/}" >&2
  if [[ ! -x "$dir/bin/python" ]]; then
    python3 -m venv "$dir" || return 1
  fi
  if ! "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"; then
    echo "sam-check: pip install of $req failed" >&2
    return 1
  fi
  echo "$want" > "$stamp"
}

if ! ensure_venv "$venv" tests/harness/requirements-sam.txt || ! ensure_venv "$ckv_venv" infra/requirements-checkov.txt; then
  echo "template: 0 passed, 1 failed"
  exit 2
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

# checkov runs every check; a failure that infra/checkov-skips.yaml lists (check id, and the
# logical ids when given) counts as skipped, with its reason printed. A skip entry that matches
# no failure counts as a failure (the finding is gone: remove the entry). Offline: no guideline
# download (BC_SKIP_MAPPING, --skip-download), no API key.
checkov_stage() {
  BC_SKIP_MAPPING=TRUE CHECKOV_TEMPLATE="$template" CHECKOV_SKIPS="$skips" CHECKOV_BIN="$ckv_venv/bin/checkov" \
    "$ckv_venv/bin/python" - <<'PY'
import json, os, subprocess, sys
import yaml

template, skips_file, binary = os.environ["CHECKOV_TEMPLATE"], os.environ["CHECKOV_SKIPS"], os.environ["CHECKOV_BIN"]
skips = (yaml.safe_load(open(skips_file, encoding="utf-8")) or {}).get("skips") or []
for s in skips:
    if not s.get("id") or not str(s.get("reason", "")).strip():
        print(f"checkov: {skips_file}: every skip needs an id and a reason: {s}")
        print("checkov: 0 passed, 1 failed")
        sys.exit(1)
run = subprocess.run([binary, "-f", template, "--framework", "cloudformation", "--skip-download",
                      "-o", "json"], capture_output=True, text=True)
try:
    out = json.loads(run.stdout)
except ValueError:
    sys.stderr.write(run.stderr[-4000:])
    print(f"checkov: no JSON report (exit {run.returncode})")
    print("checkov: 0 passed, 1 failed")
    sys.exit(1)
reports = out if isinstance(out, list) else [out]
passed = sum(len(r.get("results", {}).get("passed_checks", [])) for r in reports)
failures = [c for r in reports for c in r.get("results", {}).get("failed_checks", [])]
parse_errors = sum(r.get("summary", {}).get("parsing_errors", 0) for r in reports)

def skip_for(check):
    lid = check["resource"].rsplit(".", 1)[-1]
    for s in skips:
        if s["id"] == check["check_id"] and (not s.get("resources") or lid in s["resources"]):
            return s
    return None

failed, used = 0, {}
for c in failures:
    s = skip_for(c)
    if s is None:
        failed += 1
        lines = c.get("file_line_range") or ["?"]
        print(f"FAIL checkov {c['check_id']} {c['resource']} (line {lines[0]}): {c['check_name']}")
    else:
        used.setdefault(id(s), []).append(c["resource"].rsplit(".", 1)[-1])
for s in skips:
    hits = used.get(id(s))
    scope = ", ".join(s.get("resources") or ["every resource"])
    if hits:
        print(f"SKIP checkov {s['id']} ({len(hits)}: {', '.join(sorted(hits))}): {' '.join(str(s['reason']).split())}")
    else:
        failed += 1
        print(f"FAIL checkov skip {s['id']} ({scope}) matches no finding: remove it from {skips_file}")
if parse_errors:
    failed += parse_errors
    print(f"FAIL checkov: {parse_errors} parsing error(s)")
print(f"checkov: {sum(len(v) for v in used.values())} skipped ({skips_file})")
print(f"checkov: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
}

stage "sam validate --lint" "$venv/bin/sam" validate --lint --template-file "$template"
stage "cfn-lint" "$venv/bin/cfn-lint" "$template"
stage "template_check" "$venv/bin/python" tests/harness/template_check.py "$@"
stage "checkov" checkov_stage

echo "template: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
