"""Genres look different in every view: the palette's colours are far apart by CIEDE2000
(computed by coloraide, a colour library nobody here wrote), in true colour and as a
256-colour terminal draws them (rich's own approximation), and far from the grey of
silence and the backgrounds they are drawn on."""

from __future__ import annotations

import itertools

import pytest
from coloraide import Color
from rich.color import Color as TerminalColor
from rich.color import ColorSystem

from streamer.analysis.model import DEFAULT_MODEL
from streamer.cli.options import model_labels
from streamer.outlets.palette import PALETTE, SILENCE_COLOR

SHIPPED = model_labels(DEFAULT_MODEL)
APART = 20.0
"""Smallest CIEDE2000 difference between two genres, or a genre and a grey or background
(about 2.3 is a just-noticeable difference; tab10's blue and cyan, 12.9 in 256 colours,
read as two similar blues)."""
BACKGROUNDS = {"overlay": "#101317", "plot": "#ffffff", "silence": SILENCE_COLOR}


def difference(a: str, b: str) -> float:
    return float(Color(a).delta_e(Color(b), method="2000"))


def as_256(color: str) -> str:
    """The colour a 256-colour terminal shows for `color`, by rich's approximation."""
    red, green, blue = TerminalColor.parse(color).downgrade(ColorSystem.EIGHT_BIT).get_truecolor()
    return f"#{red:02x}{green:02x}{blue:02x}"


@pytest.mark.parametrize("terminal", [False, True], ids=["true-colour", "256-colour"])
def test_the_shipped_genres_are_far_apart_and_far_from_grey_and_the_backgrounds(
    terminal: bool,
) -> None:
    assert SHIPPED is not None and len(SHIPPED) <= len(PALETTE)
    colors = [as_256(c) if terminal else c for c in PALETTE[: len(SHIPPED)]]
    closest = min(
        (difference(a, b), SHIPPED[i], SHIPPED[j])
        for (i, a), (j, b) in itertools.combinations(enumerate(colors), 2)
    )
    assert closest[0] >= APART, closest
    for name, background in BACKGROUNDS.items():
        nearest = min((difference(c, background), g) for c, g in zip(colors, SHIPPED, strict=True))
        assert nearest[0] >= APART, (name, nearest)


def test_a_terminal_of_256_colours_draws_the_palette_exactly() -> None:
    assert [as_256(color) for color in PALETTE] == list(PALETTE)


def test_every_colour_of_the_palette_is_its_own() -> None:
    """Past the shipped genres too (a model with up to 16 labels): no two alike."""
    closest = min(difference(a, b) for a, b in itertools.combinations(PALETTE, 2))
    assert closest >= 15.0, closest
