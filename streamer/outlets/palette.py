"""The genre colours, one palette for the terminal view, the browser overlay and the plot.

A genre's colour is fixed by its position in the model's labels, so the same genre has the
same colour on every screen and in every picture of a set. Hex colours: rich draws them on
any terminal (approximated where it has fewer colours), the overlay and matplotlib take
them as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

PALETTE = (
    "#0087ff", "#ffaf87", "#af8700", "#d700d7", "#5fd700", "#008787",
    "#ff0000", "#ff87af", "#5f8700", "#00d7af", "#00d7ff",
    "#afafff", "#ff005f", "#af5f87", "#ffaf00", "#afaf5f",
)  # fmt: skip
"""Genre colours by label position; more than 16 labels repeat them.

Chosen among the 216 colours of the 256-colour terminals' cube, so a terminal without
true colour draws them exactly (rich's nearest-colour approximation of the earlier tab10
colours made blues and rock two similar blues there), of CIELAB lightness 50 to 82 and
chroma from 30 (readable on the overlay's dark background and on the plot's white), by
a greedy search for the largest smallest CIEDE2000 difference: at least 22 between any
two of the first 11 (the shipped decision's genres) and against the silence grey, the
overlay's background and white (tests/test_palette.py). With the shipped labels: blues
blue, classical peach, country ochre, disco magenta, hiphop green, jazz teal, metal red,
pop pink, reggae olive, rock aquamarine, electronic cyan."""
SILENCE_COLOR = "#c8c8c8"


def genre_colors(labels: Sequence[str]) -> dict[str, str]:
    """The colour of each label, by its position.

    >>> genre_colors(["jazz", "rock"])
    {'jazz': '#0087ff', 'rock': '#ffaf87'}
    """
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}
