"""`--plot`: a picture of a tagged set, readable at a glance.

On top a strip of the segments (one coloured span each, silence grey, the genre written
in spans wide enough for it), underneath the model's probabilities over time as a stacked
area in the same colours (left out when the timeline has none, as for a record file), on a
shared time axis labelled M:SS or H:MM:SS. A hop's probabilities sum to 1, so the stack
fills the panel and each genre's band is as thick as its share: which genre holds, and
what it is mixed with, reads at a glance, where ten lines crossed one another. Silence and
not-music cover the stack in the strip's grey (the tracker takes no genre from them). Over
a long set each band is the mean of runs of hops (at most `MAX_POINTS` points), which keeps
the bands smooth.

A genre's colour is fixed by its position in the labels, from the palette the terminal view
and the overlay use too (`streamer.outlets.palette`), so the same genre has the same colour
in every plot and on every screen with the same model.

matplotlib is imported inside `plot_timeline` only: it is a runtime dependency, but its
import takes about 0.4 s (measured) and only `--plot` needs it. The figure is drawn with
the Agg canvas directly, without pyplot, so no GUI backend is touched and no global figure
is left open.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from streamer.errors import StreamerError
from streamer.files import write_atomically
from streamer.offline.exports import Timeline, clock
from streamer.outlets.palette import SILENCE_COLOR, genre_colors

DPI = 120
WIDTH_INCHES = 14.0
HEIGHT_INCHES = 6.0  # with the probability panel
STRIP_HEIGHT_INCHES = 2.4  # the strip alone
_TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600)
_MOST_TICKS = 12
MAX_POINTS = 300
"""Most points drawn per probability band (see `binned`): one per about 4 pixels of the
axes. With 800, a 14-minute mix (`training.mixes`) drew the bands as spikes 2 pixels apart."""
_LABEL_POINTS = 8
_PLOT_FRACTION = 0.8  # of the figure width, left to the axes by labels and the legend


def tick_step(seconds: float) -> int:
    """Seconds between time ticks: the smallest round step giving at most 12 ticks.

    >>> tick_step(45), tick_step(600), tick_step(7300)
    (5, 60, 900)
    """
    for step in _TICK_STEPS:
        if seconds / step <= _MOST_TICKS:
            return step
    return 3600 * -(-int(seconds) // (3600 * _MOST_TICKS))  # whole hours


def plot_timeline(timeline: Timeline, path: Path, *, colors: dict[str, str] | None = None) -> Path:
    """Draw `timeline` as a PNG at `path` (written atomically); return `path`.

    `colors` overrides the colour of some genres (matplotlib colour strings). Raises
    `StreamerError` when the file cannot be written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    foreign = sorted(
        {s.genre for s in timeline.segments if s.genre is not None} - set(timeline.labels)
    )  # not in the labels given: coloured after them
    palette = genre_colors([*timeline.labels, *foreign]) | dict(colors or {})
    hops = len(timeline.times) > 0
    end = max(
        [timeline.duration, 1.0]
        + [segment.end for segment in timeline.segments[-1:]]
        + ([float(timeline.times[-1])] if hops else [])
    )
    figure = Figure(
        figsize=(WIDTH_INCHES, HEIGHT_INCHES if hops else STRIP_HEIGHT_INCHES),
        layout="constrained",
    )
    FigureCanvasAgg(figure)
    if hops:
        strip, stack = figure.subplots(2, 1, sharex=True, height_ratios=[1, 4])
    else:
        strip, stack = figure.subplots(1, 1), None

    _draw_strip(strip, timeline, palette, end)
    if stack is not None:
        _draw_probabilities(stack, timeline, palette)
    bottom = strip if stack is None else stack
    bottom.set_xlim(0, end)
    bottom.xaxis.set_major_locator(MultipleLocator(tick_step(end)))
    bottom.xaxis.set_major_formatter(FuncFormatter(lambda value, _: clock(max(value, 0.0))))
    bottom.set_xlabel("time (H:MM:SS)" if end >= 3600 else "time (M:SS)")

    handles = [Patch(color=palette[label], label=label) for label in [*timeline.labels, *foreign]]
    states = sorted({segment.state for segment in timeline.segments} - {"music"})
    if states:
        handles.append(Patch(color=SILENCE_COLOR, label=", ".join(states)))
    if handles:
        figure.legend(handles=handles, loc="outside right upper", frameon=False)
    figure.suptitle(f"{Path(timeline.source).name} ({clock(timeline.duration)})")

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, buffer.getvalue())
    except OSError as error:
        raise StreamerError(
            f"cannot write {path} ({error.strerror}): choose a writable folder with --out"
        ) from None
    return path


def _draw_strip(axes: Any, timeline: Timeline, palette: dict[str, str], end: float) -> None:
    """One span per segment, named where the name fits; spans of a colour drawn at once."""
    spans: dict[str, list[tuple[float, float]]] = {}
    pixels_per_second = WIDTH_INCHES * DPI * _PLOT_FRACTION / end
    char_pixels = 0.6 * _LABEL_POINTS * DPI / 72
    for segment in timeline.segments:
        color = _color(segment.genre, palette)
        width = segment.end - segment.start
        spans.setdefault(color, []).append((segment.start, width))
        name = segment.genre or segment.state
        if width * pixels_per_second > (len(name) + 2) * char_pixels:
            axes.text(
                segment.start + width / 2, 0.5, name,
                ha="center", va="center", fontsize=_LABEL_POINTS, color=_ink(color),
                clip_on=True, in_layout=False,
            )  # fmt: skip
    for color, ranges in spans.items():
        axes.broken_barh(ranges, (0, 1), facecolors=color, edgecolor="white", linewidth=0.5)
    axes.set_ylim(0, 1)
    axes.set_yticks([])
    axes.set_ylabel("genre")
    for side in ("left", "right", "top"):
        axes.spines[side].set_visible(False)


def _draw_probabilities(axes: Any, timeline: Timeline, palette: dict[str, str]) -> None:
    """The probabilities stacked, the first label on top (as in the legend), under the
    grey of silence and not-music."""
    times, probabilities = binned(timeline.times, timeline.probabilities)
    order = list(reversed(range(len(timeline.labels))))
    axes.stackplot(
        times,
        probabilities[:, order].T,
        colors=[palette[timeline.labels[column]] for column in order],
        linewidth=0,
    )
    silences = [(s.start, s.end - s.start) for s in timeline.segments if s.state != "music"]
    if silences:
        axes.broken_barh(silences, (0, 1), facecolors=SILENCE_COLOR, zorder=2)
    axes.set_ylim(0, 1)
    axes.set_ylabel("genre probability")
    for side in ("right", "top"):
        axes.spines[side].set_visible(False)


def binned(
    times: np.ndarray, probabilities: np.ndarray, *, most: int = MAX_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """Means over runs of consecutive hops, so that at most `most` points are left.

    A two-hour set has 14 400 hops for about 1 300 pixels: drawn as they are, the bands
    would be a jagged noise; the mean of each run of hops shows where a genre held.

    >>> times, values = binned(np.arange(10.0), np.arange(20.0).reshape(10, 2), most=4)
    >>> times.tolist(), values[:, 0].tolist()
    ([1.0, 4.0, 7.0, 9.0], [2.0, 8.0, 14.0, 18.0])
    """
    size = -(-len(times) // most)  # hops per point, rounded up
    if size <= 1:
        return times, probabilities
    starts = np.arange(0, len(times), size)
    counts = np.diff(np.append(starts, len(times)))
    return (
        np.add.reduceat(times, starts) / counts,
        np.add.reduceat(probabilities, starts, axis=0) / counts[:, None],
    )


def _color(genre: str | None, palette: dict[str, str]) -> str:
    return SILENCE_COLOR if genre is None else palette[genre]


def _ink(color: str) -> str:
    """Black or white text, whichever reads better on `color` (a ``#rrggbb`` colour)."""
    if not (color.startswith("#") and len(color) == 7):
        return "black"
    red, green, blue = (int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.55 else "white"
