#!/usr/bin/env bash
# Runs every check WrenMQ has: formatting, lints, unit/property/integration tests, and the
# conformance suite with real third-party clients. Installs what the checks need (Python
# venv, npm packages, Chromium) on a fresh machine. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# The packaging and terminal tests need systemd-analyze (Debian's systemd) and `script`
# (bsdutils); under CI they fail rather than skip when these are missing.
missing=()
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v script >/dev/null 2>&1 || missing+=(bsdutils)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "== installing ${missing[*]}"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}") >/dev/null
    else
        echo "tests/all.sh: ${missing[*]} missing and not root; their tests skip outside CI" >&2
    fi
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --locked

echo "== conformance"
bash conformance/run.sh
