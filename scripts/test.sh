#!/usr/bin/env bash
# Set everything up (idempotent), then run the whole test suite: lint, format check, types
# (mypy --strict on streamer/, configured in pyproject.toml), pytest.
# The tests start their own PulseAudio daemon with a null sink as the input device.
#   usage: scripts/test.sh [pytest arguments]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh" test
cd "$STREAMER_ROOT"
"$STREAMER_VENV/bin/ruff" check .
"$STREAMER_VENV/bin/ruff" format --check .
"$STREAMER_VENV/bin/mypy"
exec "$STREAMER_VENV/bin/python" -m pytest "$@"
