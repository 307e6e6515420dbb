#!/usr/bin/env bash
# Browser tests of the web UI (static-site/): headless Chromium driven by playwright-core against
# a freshly started `jhe serve` with the demo seed. Installs what is missing on a fresh Debian
# machine (chromium, Node.js, the pinned npm packages), saves screenshots under
# ${TEST_OUTPUT:-test-output}/screenshots and ends with one line: "browser: N passed, M failed".
# Needs target/debug/jhe (cargo build -p jhe-local).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$(pwd)"
OUT="${TEST_OUTPUT:-test-output}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
SHOTS="$OUT/screenshots"
SITE="$ROOT/static-site"
BIN="$ROOT/target/debug/jhe"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

fail() {
    echo "spa-e2e: $*" >&2
    echo "browser: 0 passed, 1 failed"
    exit 1
}

[ -x "$BIN" ] || fail "$BIN is missing: build it first with 'cargo build -p jhe-local'"

APT_UPDATED=0
apt_install() {
    [ "$APT_UPDATED" = 1 ] || { apt-get update -qq && APT_UPDATED=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
if [ ! -x "$CHROMIUM" ]; then
    echo "spa-e2e: installing chromium"
    apt_install chromium || fail "could not install chromium"
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "spa-e2e: installing nodejs and npm"
    apt_install nodejs npm || fail "could not install Node.js"
fi

# The test tools (playwright-core, axe-core) and the pinned packages, redone only when
# package-lock.json changed. The UI itself needs no npm: its libraries are committed under
# vendor/ and built into `jhe`.
LOCK_HASH="$(sha256sum "$SITE/package-lock.json" | cut -d' ' -f1)"
STAMP="$SITE/node_modules/.lock-hash"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$LOCK_HASH" ] || [ ! -d "$SITE/node_modules/playwright-core" ]; then
    (cd "$SITE" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci failed"
    echo "$LOCK_HASH" >"$STAMP"
fi

# The committed vendor/ and precompiled templates are what the pinned packages (installed by npm
# with package-lock.json's integrity hashes) and templates/ make.
FRESH="$(mktemp -d)"
node "$SITE/scripts/vendor.mjs" --check "$FRESH" || fail "vendoring failed"
if diff -r "$FRESH/vendor" "$SITE/vendor" >"$OUT/vendor-diff.log" && diff "$FRESH/js/templates.gen.js" "$SITE/js/templates.gen.js" >>"$OUT/vendor-diff.log"; then
    echo "vendored files match package-lock.json and templates/: 1 passed, 0 failed"
    VENDOR_OK=1
else
    echo "vendored files differ from what package-lock.json and templates/ make (run node tests/harness/vendor.mjs; see $OUT/vendor-diff.log): 0 passed, 1 failed"
    VENDOR_OK=0
fi
rm -rf "$FRESH"

PORT="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
DATA="$(mktemp -d)"
LOG="$(mktemp)"
# Started as a newcomer starts it: from an empty folder, no --static-dir, no npm step for the UI.
(cd "$DATA" && exec "$BIN" serve --addr "127.0.0.1:$PORT") >"$OUT/spa-serve.log" 2>&1 &
SERVER=$!
cleanup() {
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    rm -rf "$DATA" "$LOG"
}
trap cleanup EXIT
BASE="http://127.0.0.1:$PORT"
node -e '
const url = process.argv[1] + "/health";
const until = Date.now() + 30000;
(async function poll() {
  try { if ((await fetch(url)).ok) return; } catch {}
  if (Date.now() > until) { console.error("spa-e2e: the server did not answer " + url); process.exit(1); }
  setTimeout(poll, 100);
})();' "$BASE" || { cat "$OUT/spa-serve.log" >&2; fail "the server did not start"; }

rm -rf "$SHOTS" && mkdir -p "$SHOTS"
CONCURRENCY=""
node --test-concurrency=1 -e 0 2>/dev/null && CONCURRENCY="--test-concurrency=1"
set +e
JHE_BASE_URL="$BASE" SCREENSHOT_DIR="$SHOTS" CHROMIUM="$CHROMIUM" \
    node --test $CONCURRENCY --test-reporter=spec "$SITE/tests/" 2>&1 | tee "$LOG"
RC=${PIPESTATUS[0]}
set -e

cp "$LOG" "$OUT/browser-tests.log" 2>/dev/null || true
# node's summary: "ℹ pass N" / "ℹ fail N" (spec reporter) or "# pass N" (tap).
PASS="$( (grep -Eo '^(ℹ|#) pass [0-9]+' "$LOG" || true) | tail -n 1 | grep -Eo '[0-9]+$' || echo 0)"
FAIL="$( (grep -Eo '^(ℹ|#) fail [0-9]+' "$LOG" || true) | tail -n 1 | grep -Eo '[0-9]+$' || echo 0)"
PASS="${PASS:-0}"
FAIL="${FAIL:-0}"
# The vendoring check counts as one test.
if [ "$VENDOR_OK" = 1 ]; then PASS=$((PASS + 1)); else FAIL=$((FAIL + 1)); RC=1; fi
# A run that failed, or that reported no test at all, counts as one failure.
if { [ "$RC" -ne 0 ] || [ "$PASS" -eq 0 ]; } && [ "$FAIL" -eq 0 ]; then FAIL=1; fi
echo "screenshots: $(find "$SHOTS" -name '*.png' 2>/dev/null | wc -l) in $SHOTS"
echo "browser: $PASS passed, $FAIL failed"
[ "$RC" -eq 0 ] && [ "$FAIL" -eq 0 ] && [ "$PASS" -gt 0 ]
