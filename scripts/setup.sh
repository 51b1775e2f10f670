#!/usr/bin/env bash
# Idempotent set-up on Debian/Ubuntu: the apt packages, a virtual environment in .venv and
# this package in it. Sourced by scripts/listen.sh, scripts/test.sh and
# scripts/train-default-model.sh.
#   usage: source scripts/setup.sh [runtime|test|train]
#     runtime  streamer itself
#     test     + the training stack, Ray, a PulseAudio null sink, MMA and one small soundfont
#     train    + every soundfont the default model's corpus is rendered with
set -euo pipefail

STREAMER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STREAMER_VENV="$STREAMER_ROOT/.venv"
profile="${1:-runtime}"

apt_packages=(libportaudio2)                        # sounddevice's PortAudio
if [ "$profile" != runtime ]; then
    apt_packages+=(pulseaudio pulseaudio-utils)     # a real input device without a sound card
    apt_packages+=(mma timgm6mb-soundfont)          # the synthetic corpus: grooves, a GM font
    apt_packages+=(chromium)                        # the overlay's test, a real browser
    apt_packages+=(espeak-ng)                       # speech for the not-music detector
fi
if [ "$profile" = train ]; then
    apt_packages+=(fluid-soundfont-gm musescore-general-soundfont-small fluidr3mono-gm-soundfont)
    apt_packages+=(csound-soundfont opl3-soundfont)
fi
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    apt_packages+=(python3-venv)
fi

missing=()
for package in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]} with apt-get" >&2
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x "$STREAMER_VENV/bin/python" ]; then
    echo "setup: creating the virtual environment $STREAMER_VENV" >&2
    python3 -m venv "$STREAMER_VENV"
fi

# Reinstall only when pyproject.toml or the wanted extras changed.
extras=""
[ "$profile" != runtime ] && extras="[train,test,cluster]"
stamp="$STREAMER_VENV/.streamer-installed"
wanted="$(sha256sum "$STREAMER_ROOT/pyproject.toml" | cut -d' ' -f1) $extras"
if [ ! -f "$stamp" ] || ! grep -qxF "$wanted" "$stamp"; then
    echo "setup: installing streamer$extras into $STREAMER_VENV" >&2
    "$STREAMER_VENV/bin/python" -m pip install -q --upgrade pip
    "$STREAMER_VENV/bin/python" -m pip install -q -e "$STREAMER_ROOT$extras"
    if [ -n "$extras" ]; then
        # tinysoundfont declares pyaudio, which does not build and is not used: no deps.
        "$STREAMER_VENV/bin/python" -m pip install -q --no-deps "tinysoundfont==0.3.7"
        # musicnn's metadata pins numpy<1.17; only its checkpoints and tag lists are used,
        # by `streamer-train musicnn` (training/musicnn.py): no deps.
        "$STREAMER_VENV/bin/python" -m pip install -q --no-deps "musicnn==0.1.0"
    fi
    echo "$wanted" >> "$stamp"
fi
