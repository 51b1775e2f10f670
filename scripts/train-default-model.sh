#!/usr/bin/env bash
# Reproduce the shipped default model from a clean clone: set up, generate the synthetic
# corpus, train, evaluate, export to models/genre.onnx (+ models/genre.json).
# Three stages, as the model was made: a base model trained 40 epochs on a corpus of three
# soundfonts (run on a GPU: 5 minutes; about 7 hours on 2 CPU cores), then up to 16 more
# epochs on a broader corpus of five soundfonts, then up to 7 on twice as many clips, each
# started from the previous model's weights (about 2 hours and 1 hour on 2 CPU cores). All
# corpora hold out the same groove families, rendered only with TimGM6mb. Set
# KERAS_BACKEND=jax where jax sees a GPU; README.md shows how to train a prepared run folder
# on another machine. See models/README.md for the figures.
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

# Stage 3: twice the clips per genre over the same families (a clip depends only on the
# seed, its genre and its index, so the first 200 are stage 2's). The new clips of held-out
# families are left out, so the test side stays stage 2's 419 clips.
"$train" corpus "$work/corpus6" --clips-per-genre 400 --seconds 15 --seed 2026 "${held_out[@]}"
"$STREAMER_VENV/bin/python" - "$work/corpus6" <<'PY'
import csv, sys
with open(f"{sys.argv[1]}/manifest.csv") as f, open(f"{sys.argv[1]}/manifest-test5.csv", "w") as out:
    rows = csv.DictReader(f)
    kept = csv.DictWriter(out, rows.fieldnames)
    kept.writeheader()
    kept.writerows(r for r in rows if r["held_out"] == "0" or int(r["index"]) < 200)
PY
"$train" fit "$work/corpus6/manifest-test5.csv" --run "$work/run6" --cache "$work/cache" \
    "${model[@]}" --epochs 7 --learning-rate 2e-4 --train-hop 128 --max-minutes 60 --prepare-only
"$train" train --run "$work/run6" --init-from "$work/run5"

"$train" evaluate --run "$work/run6" --cache "$work/cache"
"$train" export --run "$work/run6" --out models/genre.onnx --card
