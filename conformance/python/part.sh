#!/usr/bin/env bash
# Conformance part "python": stomp.py against the broker, under pytest.
# Contract with ../run.sh (same for every part):
#   env WRENMQ_BIN          the built broker binary
#   env CONFORMANCE_COUNTS  file to write "PASSED FAILED SKIPPED" into
#   env CONFORMANCE_PYTHON  the venv's python (set up by run.sh from ../requirements.txt)
#   exit status             0 only if nothing failed
set -u
cd "$(dirname "$0")"
exec "$CONFORMANCE_PYTHON" -m pytest -v "$@"
