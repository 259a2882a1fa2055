#!/usr/bin/env bash
# Runs every check WrenMQ has: formatting, lints, unit/property/integration tests, and the
# conformance suite with real third-party clients. Installs what the checks need (Python
# venv, npm packages, Chromium) on a fresh machine. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --locked

echo "== conformance"
bash conformance/run.sh
