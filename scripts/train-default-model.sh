#!/usr/bin/env bash
# Reproduce the shipped default model from a clean clone: set up, generate the synthetic
# corpus, train, evaluate, export to models/genre.onnx (+ models/genre.json).
# Training is the long part: about 7 hours on 2 CPU cores, 5 minutes on one GPU (set
# KERAS_BACKEND=jax where jax sees it; README.md shows how to train a prepared run folder on
# another machine). See models/README.md for the figures.
#   usage: scripts/train-default-model.sh [WORK_DIR]   (default: ./work, git-ignored)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh" train
cd "$STREAMER_ROOT"
work="${1:-work}"
train="$STREAMER_VENV/bin/streamer-train"

"$train" corpus "$work/corpus" --clips-per-genre 150 --seconds 15 --seed 2026 \
    --held-out-soundfont /usr/share/sounds/sf2/TimGM6mb.sf2 --held-out-fraction 0.2
"$train" fit "$work/corpus/manifest.csv" --run "$work/run" --cache "$work/cache" \
    --test-only held_out=1 --seed 2026 --epochs 40 --filters 16 32 32 64 --room-variants 1 \
    --train-hop 32 --workers 4 --prepare-only
"$train" train --run "$work/run"
"$train" evaluate --run "$work/run" --cache "$work/cache"
"$train" export --run "$work/run" --out models/genre.onnx --card
