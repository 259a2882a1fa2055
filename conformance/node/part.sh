#!/usr/bin/env bash
# Conformance part "node": @stomp/stompjs over WebSocket and TCP, handshake refusals, and the
# web console in Chromium (playwright-core) with stomp.py on the other end. See run.sh.
# Contract with ../run.sh: WRENMQ_BIN, CONFORMANCE_COUNTS and CONFORMANCE_PYTHON come from the
# environment; run.mjs (or run.sh on a setup failure) writes "PASSED FAILED SKIPPED" to
# CONFORMANCE_COUNTS; the exit status is 0 only if nothing failed. The pytest-style arguments
# run.sh passes to every part do not apply here and are ignored.
set -u
cd "$(dirname "$0")"
exec bash ./run.sh
