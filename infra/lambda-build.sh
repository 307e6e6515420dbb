#!/usr/bin/env bash
# Builds the release Lambda functions for arm64 (Graviton, provided.al2023) with cargo-lambda, as
# `sam build` does, zips each bootstrap as Lambda takes it, and prints each zip's size.
#
#   bash infra/lambda-build.sh [--x86-64]
#
# Installs cargo-lambda from PyPI into .venv-lambda on first use (infra/requirements-lambda.txt;
# it brings zig for cross-compiling) and the Rust std for the target with rustup. Output:
# target/lambda/jhe-<group>/bootstrap and bootstrap.zip (what jhe-bench --lambda-dir reads).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv-lambda"
req="infra/requirements-lambda.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/cargo-lambda" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "lambda-build: installing $req into .venv-lambda" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"

arch="--arm64"; triple="aarch64-unknown-linux-gnu"
if [[ "${1:-}" == "--x86-64" ]]; then arch="--x86-64"; triple="x86_64-unknown-linux-gnu"; fi
rustup target list --installed 2>/dev/null | grep -qx "$triple" || rustup target add "$triple"

groups=(discovery auth admin-orgs admin-patients admin-studies admin-catalog fhir-read fhir-ingest)
pkgs=()
for g in "${groups[@]}"; do pkgs+=(-p "jhe-$g"); done
cargo lambda build --release "$arch" "${pkgs[@]}"

printf '%-22s %12s %12s\n' function bootstrap zip
for g in "${groups[@]}"; do
  dir="target/lambda/jhe-$g"
  rm -f "$dir/bootstrap.zip"
  (cd "$dir" && zip -q -9 bootstrap.zip bootstrap)
  printf '%-22s %12s %12s\n' "jhe-$g" "$(stat -c %s "$dir/bootstrap")" "$(stat -c %s "$dir/bootstrap.zip")"
done
