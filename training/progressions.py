"""Genre-typical chord progressions, written in Roman numerals and spelled in any key.

Numerals keep a progression key-free, so a clip's key is drawn independently of its
progression. A token is one bar; ``a:b`` splits a bar in two. Upper case is major, lower case
minor; a suffix adds the quality (``7``, ``maj7``, ``5`` for a power chord, ``m7b5``, ``dim``...)
and a leading ``b``/``#`` alters the root. A progression whose first chord is minor is in a
minor key.
"""

from __future__ import annotations

import re

PROGRESSIONS: dict[str, tuple[str, ...]] = {
    "blues": (
        "I7 I7 I7 I7 IV7 IV7 I7 I7 V7 IV7 I7 V7",  # 12-bar
        "I7 IV7 I7 I7 IV7 IV7 I7 I7 V7 IV7 I7 I7:V7",  # quick change, turnaround
        "i7 i7 i7 i7 iv7 iv7 i7 i7 bVI7 V7 i7 V7",  # minor blues
        "I7 V7 IV7 IV7 I7 V7 I7 V7",  # 8-bar
        "I9 IV9 I9 I9 IV9 IV9 I9 I9 V9 IV9 I9 V9",
    ),
    "classical": (
        "I IV V I",
        "I vi ii V7 I IV V7 I",
        "I V vi iii IV I IV V",  # Pachelbel
        "I IV viidim iii vi ii V7 I",  # circle of fifths
        "i iv V7 i",
        "i VI iv V7 i iv V i",
    ),
    "country": (
        "I I IV IV V V I I",
        "I IV I V",
        "I I IV I V V I I",
        "I V IV I",
        "I I IV IV I V I I",
        "I IV I I V7 V7 I I",
    ),
    "disco": (
        "i7 i7 iv7 iv7",
        "ii7 ii7 V7 V7",
        "Imaj7 Imaj7 IVmaj7 IVmaj7",
        "i7 bVII i7 bVII",
        "vi7 ii7 V7 Imaj7",
        "i9 i9 bVII9 bVII9",
    ),
    "hiphop": (
        "i7 i7 iv7 iv7",
        "i bVI bVII i",
        "ii7 V7 Imaj7 vi7",
        "i i v v",
        "i bVII bVI V7",
        "i9 i9 bVImaj7 bVImaj7",
    ),
    "jazz": (
        "ii7 V7 Imaj7 Imaj7",
        "Imaj7 vi7 ii7 V7",
        "iii7 vi7 ii7 V7",
        "Imaj7:vi7 ii7:V7 Imaj7:vi7 ii7:V7 I7 IV7 ii7:V7 Imaj7",  # rhythm changes A
        "iim7b5 V7 i6 i6",  # minor ii-V-i
        "ii7 V7 Imaj7 IV7 viim7b5 III7 vi7 vi7",  # Autumn-Leaves-like cycle
    ),
    "metal": (
        "i5 i5 bVI5 bVII5",
        "i5 bII5 i5 bII5",  # phrygian
        "i5 bVII5 bVI5 bVII5",
        "i5 iv5 bVI5 V5",
        "i5 i5 bV5 iv5",  # tritone
        "i5 bIII5 iv5 bVI5",
    ),
    "pop": (
        "I V vi IV",
        "vi IV I V",
        "I vi IV V",
        "IV I V vi",
        "I IV vi V",
        "I iii IV V",
    ),
    "reggae": (
        "I I IV IV",
        "I V I V",
        "i7 iv7 i7 iv7",
        "I IV V IV",
        "ii7 V7 ii7 V7",
        "I vi IV V",
    ),
    "rock": (
        "I IV V IV",
        "I bVII IV I",
        "I IV I V",
        "i bVI bVII i",
        "I V vi IV",
        "I bIII IV I",
        "I I IV IV I I V IV",
    ),
    "electronic": (
        "i7 i7 i7 i7",  # one-chord techno vamp
        "i bVI bVII i",
        "i bVI bIII bVII",  # the "epic" trance loop, in minor
        "i iv i iv",
        "i9 i9 iv9 iv9",  # deep house
        "i bVII bVI bVII",
    ),
}

_NOTE_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_DEGREES = {"i": 0, "ii": 2, "iii": 4, "iv": 5, "v": 7, "vi": 9, "vii": 11}
_TOKEN = re.compile(r"^(b|#)?(vii|vi|v|iv|iii|ii|i)(.*)$", re.IGNORECASE)
# Suffixes that already say what a minor-numeral chord is, so no "m" is prepended.
_SELF_QUALIFIED = ("m7b5", "dim", "5")


def is_minor(progression: str) -> bool:
    """A progression is in a minor key when its tonic chord is minor (``i``, not ``I``).

    Not its first chord: "ii7 V7 Imaj7" and "vi IV I V" are in the major key of their
    ``I`` (in C, C minor would share no chord with them). A chart without a tonic chord
    (a ii-V vamp) counts as major.

    Examples
    --------
    >>> is_minor("i iv v i"), is_minor("ii7 V7 Imaj7"), is_minor("vi IV I V")
    (True, False, False)
    """
    for token in re.split(r"[\s:]+", progression.strip()):
        match = _TOKEN.match(token)
        if match and not match.group(1) and match.group(2) in ("i", "I"):
            return match.group(2) == "i"
    return False


def key_name(tonic: int, *, minor: bool) -> str:
    """Human-readable key, e.g. "Eb minor", as recorded in the manifest."""
    return f"{_NOTE_NAMES[tonic % 12]} {'minor' if minor else 'major'}"


def chord_name(token: str, tonic: int) -> str:
    """Spell one numeral token as an MMA chord name in the key whose tonic is ``tonic``."""
    match = _TOKEN.match(token)
    if match is None:
        raise ValueError(f"not a chord numeral: {token!r}")
    accidental, numeral, suffix = match.groups()
    root = tonic + _DEGREES[numeral.lower()] + {"b": -1, "#": 1, None: 0}[accidental]
    if numeral.islower() and not suffix.startswith(_SELF_QUALIFIED):
        suffix = "m" + suffix
    return _NOTE_NAMES[root % 12] + suffix


def bar_line(token: str, tonic: int, *, beats: int) -> str:
    """One MMA chart line; a split bar gives its first chord the first half (rounded up)."""
    chords = [chord_name(t, tonic) for t in token.split(":")]
    if len(chords) == 1 or beats < 2:
        return chords[0]
    first = -(-beats // 2)
    return " ".join([chords[0], *["/"] * (first - 1), chords[1], *["/"] * (beats - first - 1)])


def chart(progression: str, tonic: int, *, bars: int, beats: int) -> list[str]:
    """The progression repeated to ``bars`` chart lines."""
    tokens = progression.split()
    return [bar_line(tokens[i % len(tokens)], tonic, beats=beats) for i in range(bars)]
