#!/usr/bin/env bash
# Reproduce the shipped default model from a clean clone: set up, generate the synthetic
# corpus, train, evaluate, export to models/genre.onnx (+ models/genre.json).
# Two stages, as the model was made: a base model trained 40 epochs on a corpus of three
# soundfonts (run on a GPU: 5 minutes; about 7 hours on 2 CPU cores), then 16 more epochs on
# a broader corpus of five soundfonts, started from the base model's weights (about 2 hours
# on 2 CPU cores). Both corpora hold out the same groove families, rendered only with
# TimGM6mb. Set KERAS_BACKEND=jax where jax sees a GPU; README.md shows how to train a
# prepared run folder on another machine. See models/README.md for the figures.
#   usage: scripts/train-default-model.sh [WORK_DIR]   (default: ./work, git-ignored)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh" train
cd "$STREAMER_ROOT"
work="${1:-work}"
train="$STREAMER_VENV/bin/streamer-train"
fonts=/usr/share/sounds
held_out=(--held-out-soundfont "$fonts/sf2/TimGM6mb.sf2" --held-out-fraction 0.2)
model=(--test-only held_out=1 --seed 2026 --filters 16 32 32 64 --room-variants 1 --workers 4)

# Stage 1: the base model.
"$train" corpus "$work/corpus" --clips-per-genre 150 --seconds 15 --seed 2026 "${held_out[@]}" \
    --soundfont "$fonts/sf2/FluidR3_GM.sf2" --soundfont "$fonts/sf3/MuseScore_General.sf3" \
    --soundfont "$fonts/sf3/FluidR3Mono_GM.sf3"
"$train" fit "$work/corpus/manifest.csv" --run "$work/run3" --cache "$work/cache" "${model[@]}" \
    --epochs 40 --train-hop 32 --prepare-only
"$train" train --run "$work/run3"

# Stage 2: every installed Debian GM soundfont (csound's bank and OPL3 FM added), more clips.
"$train" corpus "$work/corpus5" --clips-per-genre 200 --seconds 15 --seed 2026 "${held_out[@]}"
"$train" fit "$work/corpus5/manifest.csv" --run "$work/run5" --cache "$work/cache" "${model[@]}" \
    --epochs 16 --learning-rate 3e-4 --train-hop 64 --max-minutes 110 --prepare-only
"$train" train --run "$work/run5" --init-from "$work/run3"

"$train" evaluate --run "$work/run5" --cache "$work/cache"
"$train" export --run "$work/run5" --out models/genre.onnx --card
