#!/usr/bin/env bash
# Reproduce the shipped default model from a clean clone: set up, generate the synthetic
# corpus, train, evaluate, export to models/genre.onnx (+ models/genre.json).
# Takes about two hours on 2 cores; see models/README.md for the figures.
#   usage: scripts/train-default-model.sh [WORK_DIR]   (default: ./work, git-ignored)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh" train
cd "$STREAMER_ROOT"
work="${1:-work}"
train="$STREAMER_VENV/bin/streamer-train"

"$train" corpus "$work/corpus" --clips-per-genre 150 --seconds 15 --seed 2026 \
    --held-out-soundfont /usr/share/sounds/sf2/TimGM6mb.sf2 --held-out-fraction 0.2
"$train" fit "$work/corpus/manifest.csv" --run "$work/run" --cache "$work/cache" \
    --test-only held_out=1 --seed 2026 --epochs 30 --max-minutes 80 \
    --filters 16 32 32 64 --room-variants 1 --train-hop 130
"$train" evaluate --run "$work/run" --cache "$work/cache"
"$train" export --run "$work/run" --out models/genre.onnx --card
