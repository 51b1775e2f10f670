"""The genre colours, one palette for the terminal view, the browser overlay and the plot.

A genre's colour is fixed by its position in the model's labels, so the same genre has the
same colour on every screen and in every picture of a set. Hex colours: rich draws them on
any terminal (approximated where it has fewer colours), the overlay and matplotlib take
them as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#393b79", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
    "#c49c94", "#f7b6d2", "#9c9ede", "#dbdb8d", "#9edae5",
)  # fmt: skip
"""Genre colours by label position: tab10 with navy for its grey, then tab20's light
shades; more than 20 labels repeat them."""
SILENCE_COLOR = "#c8c8c8"


def genre_colors(labels: Sequence[str]) -> dict[str, str]:
    """The colour of each label, by its position.

    >>> genre_colors(["jazz", "rock"])
    {'jazz': '#1f77b4', 'rock': '#ff7f0e'}
    """
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}
