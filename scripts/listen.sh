#!/usr/bin/env bash
# Set everything up (idempotent), then run `streamer listen` with any arguments given.
#   usage: scripts/listen.sh [--device NAME | --file PATH] [...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh" runtime
exec "$STREAMER_VENV/bin/streamer" listen "$@"
