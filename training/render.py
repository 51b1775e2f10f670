"""Render MIDI through a General MIDI soundfont with tinysoundfont, with per-clip mix changes.

We drive tinysoundfont's SoundFont object directly rather than its ``Synth``/``Sequencer``
helpers: only ``SoundFont.reset()`` stops every voice at once, and a full reset between clips is
what makes a clip's audio independent of whatever its worker rendered before (so a corpus is
byte-identical whatever the worker count). Loading a soundfont costs 0.02-4 s (sf3 files are
Vorbis-decoded), so each worker keeps the ones it has loaded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tinysoundfont import _tinysoundfont as tsf
from tinysoundfont.midi import ControlChange, Event, NoteOff, NoteOn, PitchBend, ProgramChange
from tinysoundfont.midi import load_memory as _load_memory

DRUM_CHANNEL = 9
_VOLUME_CC = 7
_BANK_SELECT_CCS = (0, 32)  # ignored: every channel plays GM bank 0 (drums: bank 128)
_DEFAULT_VOLUME = 100


@dataclass(frozen=True)
class Mix:
    """How one clip departs from its MIDI: sounds, levels, key, tempo and excerpt."""

    programs: Mapping[int, int] = field(default_factory=dict)  # GM program swaps, old -> new
    voices: Mapping[int, int] = field(default_factory=dict)  # channel -> program, overriding all
    gains_db: Mapping[int, float] = field(default_factory=dict)  # per MIDI channel
    drum_kit: int = 0
    drop_drums: bool = False
    transpose: int = 0  # semitones, melodic channels only
    time_scale: float = 1.0  # > 1 plays slower
    offset: float = 0.0  # seconds of (scaled) music skipped at the start
    loop: bool = False  # repeat the piece when it is shorter than the clip


def load_midi(data: bytes) -> list[Event]:
    """Parse a Standard MIDI File into timed events (seconds, tempo map applied)."""
    return _load_memory(data, persistent=False)


def channel_programs(events: Sequence[Event]) -> dict[int, list[int]]:
    """Programs each melodic channel selects, in order of first use."""
    found: dict[int, list[int]] = defaultdict(list)
    for ev in events:
        if isinstance(ev.action, ProgramChange) and ev.channel != DRUM_CHANNEL:
            programs = found[ev.channel]
            if ev.action.program not in programs:
                programs.append(ev.action.program)
    return dict(found)


def duration(events: Sequence[Event]) -> float:
    """Time of the last event, i.e. the piece's length before any release tail."""
    return max((ev.t for ev in events), default=0.0)


def _volume(value: int, gain_db: float) -> int:
    # CC7 follows the GM curve, attenuation = 40*log10(v/127) dB, so dB gain scales v by 10^(g/40).
    return int(np.clip(round(value * 10 ** (gain_db / 40)), 0, 127))


def _timeline(events: Sequence[Event], mix: Mix, seconds: float) -> Iterator[tuple[float, Event]]:
    """Events in clip time (scaled, offset and looped), ending past the clip's end."""
    period = duration(events) * mix.time_scale + 0.5
    start = -mix.offset
    while True:
        for ev in events:
            t = start + ev.t * mix.time_scale
            if t >= seconds:
                return
            yield t, ev
        if not mix.loop or period <= 0.5:
            return
        start += period


class SoundFontBank:
    """Soundfonts loaded once per process, rendered into mono float32 clips."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._loaded: dict[Path, tsf.SoundFont] = {}

    def _get(self, path: Path) -> tsf.SoundFont:
        if path not in self._loaded:
            sf = tsf.SoundFont(str(path))
            sf.set_output(tsf.OutputMode.Mono, self.sample_rate, 0.0)
            sf.set_max_voices(256)
            self._loaded[path] = sf
        return self._loaded[path]

    def render(
        self, events: Sequence[Event], soundfont: Path, *, seconds: float, mix: Mix
    ) -> np.ndarray:
        """Play ``events`` with ``mix`` applied for exactly ``seconds`` of mono audio."""
        sf = self._get(soundfont)
        self._silence(sf)
        for ch in range(16):
            drums = ch == DRUM_CHANNEL
            sf.channel_set_preset_number(
                ch, mix.drum_kit if drums else mix.voices.get(ch, 0), drums
            )
            sf.channel_midi_control(
                ch, _VOLUME_CC, _volume(_DEFAULT_VOLUME, mix.gains_db.get(ch, 0))
            )
        out = np.zeros(round(seconds * self.sample_rate), dtype=np.float32)
        pos = 0
        for t, ev in _timeline(events, mix, seconds):
            if ev.channel == DRUM_CHANNEL and mix.drop_drums:
                continue
            at = min(max(round(t * self.sample_rate), 0), len(out))
            if at > pos:
                sf.render(out[pos:at].view(np.uint8))
                pos = at
            self._send(sf, ev, mix, sounding=t >= 0)
        if pos < len(out):
            sf.render(out[pos:].view(np.uint8))
        return out

    @staticmethod
    def _silence(sf: tsf.SoundFont) -> None:
        """Reset channels and let the previous clip's voices finish.

        ``reset()`` only starts a quick release of sounding voices; rendering until the output
        is exactly zero retires them, so no clip carries over into the next.
        """
        sf.reset()
        scratch = np.empty(1024, dtype=np.float32)
        for _ in range(64):
            sf.render(scratch.view(np.uint8))
            if not scratch.any():
                return
        raise RuntimeError("soundfont voices did not stop after reset")

    @staticmethod
    def _send(sf: tsf.SoundFont, ev: Event, mix: Mix, *, sounding: bool) -> None:
        ch, action = ev.channel, ev.action
        melodic = ch != DRUM_CHANNEL
        match action:
            case NoteOn(key=key, velocity=velocity) if sounding and velocity > 0:
                key += mix.transpose if melodic else 0
                if 0 <= key < 128:
                    sf.channel_note_on(ch, key, velocity / 127)
            case NoteOn(key=key) | NoteOff(key=key):
                key += mix.transpose if melodic else 0
                if 0 <= key < 128:
                    sf.channel_note_off(ch, key)
            case ProgramChange(program=program) if melodic:
                program = mix.voices.get(ch, mix.programs.get(program, program))
                sf.channel_set_preset_number(ch, program, False)
            case ControlChange(control=_VOLUME_CC, control_value=value):
                sf.channel_midi_control(ch, _VOLUME_CC, _volume(value, mix.gains_db.get(ch, 0)))
            case ControlChange(control=control, control_value=value) if (
                control not in _BANK_SELECT_CCS
            ):
                sf.channel_midi_control(ch, control, value)
            case PitchBend(pitch_bend=bend):
                sf.channel_set_pitch_wheel(ch, bend)
