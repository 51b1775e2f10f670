"""Curated genre knowledge for the synthetic corpus: groove families, tempi, sounds.

How the table was chosen (MMA 21.09 as packaged by Debian 12): every groove file in the
stdlib, casio, yamaha, kara, pflib, alexis and zoom libraries was read (its ``Doc`` text, its
``DefGroove`` names and descriptions, its time signature), and a file's base groove went to a
genre only when its own description or its origin (Casio/Yamaha style name, Zoom pattern code)
names that genre or a style GTZAN files under it (boogie-woogie and shuffles under blues,
bluegrass and western swing under country, funk and dance under disco, trip-hop under hip-hop,
big band and bebop under jazz, hard rock and thrash under metal, dance-pop and ballads under
pop, ska under reggae). Latin, ballroom, polka and march grooves fit no genre and are left out.

The eleventh genre, ``electronic`` (house, techno, trance, electronica, drum and bass), is not
one of GTZAN's and not among the shipped model's labels: the corpus renders it only when asked
(``--genres all`` or a list naming it), so the ten genres' recipe is unchanged. It takes the
grooves that no other genre uses and whose names or descriptions say techno, rave, trance,
ambient or house (Casio Techno, Rave, Trance1/2, Ambient1-3, LatinHouse; Alexis TeamTechno;
stdlib Trance; Zoom TECH, DnB and AMB patterns), and it sounds only synthesizers: every program
a groove or an accompaniment selects becomes a synth bass, lead, pad or effect
(``synth_class``), and its drums use the Electronic or TR-808 kit. The disco genre keeps Casio
House and the Zoom HOUS patterns; electronic house comes from LatinHouse and from the Zoom TECH
patterns, most of them four on the floor, drawn at 118-142 BPM (house, techno and trance
tempi). The DnB patterns play at 168-176 BPM, the ambient ones (electronica) at 80-115.

A *family* is one base groove with all its variants (``Swing``, ``Swing1``, ``SwingSus``,
``SwingWalkPlus``... are one family); the training side holds whole families out, so every
clip records its family. Each Zoom drum pattern (``REGG01``, ``REGG02``...) is a family of its
own: they are distinct drum grooves, but drums only, so clips built on them get a bass and a
chord part from this genre's ``ACCOMPANIMENTS`` (recorded per clip as ``accomp``).

Where the libraries run thin: reggae has one arranged groove (stdlib Ska) and otherwise only
Zoom drum patterns; hip-hop has three arranged grooves (Casio Hip-Hop and TripHop, Alexis
HipHop); metal has four (Casio HeavyMetal and DigitalRock, pflib metal1 and metal2). Classical
draws mostly on music21's corpus (one family per composer) plus drumless MMA grooves.
"""

from __future__ import annotations

from dataclasses import dataclass

# The shipped model's labels and the corpus's default; order fixes every clip's seed stream.
GTZAN_GENRES: tuple[str, ...] = (
    "blues", "classical", "country", "disco", "hiphop",
    "jazz", "metal", "pop", "reggae", "rock",
)  # fmt: skip
GENRES: tuple[str, ...] = (*GTZAN_GENRES, "electronic")  # appended: the ten keep their streams

# Genre tempo ranges in quarter notes per minute; a family may narrow or shift them.
TEMPO: dict[str, tuple[int, int]] = {
    "blues": (70, 130),
    "classical": (60, 132),
    "country": (85, 160),
    "disco": (110, 132),
    "hiphop": (78, 104),
    "jazz": (100, 200),
    "metal": (100, 190),
    "pop": (92, 132),
    "reggae": (66, 96),
    "rock": (100, 160),
    "electronic": (118, 142),  # house 118-128, techno 125-135, trance 132-142
}


@dataclass(frozen=True)
class MmaFamily:
    """One MMA base groove and its variants, found by name prefix in ``library``."""

    genre: str
    library: str  # MMA library file without extension, e.g. "casio/blues"
    base: str  # groove-name prefix shared by the family's variants
    tempo: tuple[int, int] | None = None  # None: the genre's range
    beats: int = 4  # beats per bar as MMA counts them (for chart length and split bars)
    drums_only: bool = False  # add one of the genre's accompaniments
    strip_drums: bool = False  # drop the drum channel (classical-ish grooves)

    @property
    def name(self) -> str:
        """Family id recorded as ``group``: library folder plus base groove."""
        return f"{self.library.split('/')[0]}/{self.base}"

    @property
    def tempo_range(self) -> tuple[int, int]:
        return self.tempo or TEMPO[self.genre]


@dataclass(frozen=True)
class ScoreFamily:
    """Works by one composer from music21's bundled corpus (classical only)."""

    composer: str
    works: tuple[str, ...]  # music21 corpus paths
    genre: str = "classical"

    @property
    def name(self) -> str:
        return f"music21/{self.composer}"


Family = MmaFamily | ScoreFamily


def _mma(genre: str, spec: str, **kw: object) -> list[MmaFamily]:
    """Families from "library:Base1,Base2" so the table below stays one line per file."""
    library, bases = spec.split(":")
    return [MmaFamily(genre, library, base, **kw) for base in bases.split(",")]  # type: ignore[arg-type]


def _zoom(genre: str, spec: str, **kw: object) -> list[MmaFamily]:
    """Zoom drum patterns: one family each, accompaniment added."""
    return _mma(genre, spec, drums_only=True, **kw)


def _composer(composer: str, *works: str) -> ScoreFamily:
    return ScoreFamily(composer, works)


_BACH_CHORALES = ("1.6", "10.7", "101.7", "102.7", "103.6", "104.6", "108.6", "11.6", "66.6")

MMA_FAMILIES: tuple[MmaFamily, ...] = (
    # blues
    *_mma("blues", "stdlib/blues:Blues"),
    *_mma("blues", "stdlib/slowblues:SlowBlues", tempo=(55, 80)),
    *_mma("blues", "stdlib/fastblues:FastBlues", tempo=(120, 170)),
    *_mma("blues", "stdlib/blues128:Blues128", tempo=(50, 75)),
    *_mma("blues", "stdlib/blues68:Blues68", beats=6, tempo=(100, 150)),
    *_mma("blues", "stdlib/boggiewoggie:BoggieWoggie", tempo=(100, 160)),
    *_mma("blues", "stdlib/shuffleboggie:ShuffleBoggie", tempo=(100, 150)),
    *_mma("blues", "stdlib/rb:R&B"),
    *_mma("blues", "casio/blues:Blues"),
    *_mma("blues", "casio/shuffleboogie:ShuffleBoogie", tempo=(100, 150)),
    *_zoom("blues", "zoom/blues:BLUS01,BLUS02,BLUS03,BLUS05,BLUS06"),
    *_zoom("blues", "zoom/shuffle:SHFL01,SHFL02,SHFL03,SHFL04,SHFL05"),
    # classical-ish MMA grooves, drums removed
    *_mma(
        "classical", "stdlib/vienesewaltz:VieneseWaltz", beats=3, strip_drums=True, tempo=(140, 190)
    ),
    *_mma("classical", "stdlib/showtune:ShowTune", strip_drums=True, tempo=(70, 110)),
    *_mma("classical", "stdlib/arpeggio44:Arpeggio", strip_drums=True, tempo=(60, 100)),
    *_mma(
        "classical",
        "stdlib/arpeggiowaltz:ArpeggioWaltz",
        beats=3,
        strip_drums=True,
        tempo=(80, 140),
    ),
    *_mma("classical", "stdlib/arpeggio68:Arpeggio68", beats=6, strip_drums=True, tempo=(90, 150)),
    *_mma("classical", "stdlib/hymn:Hymn", strip_drums=True, tempo=(60, 90)),
    # country
    *_mma("country", "stdlib/countryswing:CountrySwing"),
    *_mma("country", "stdlib/countrywaltz:CountryWaltz", beats=3, tempo=(90, 150)),
    *_mma("country", "stdlib/countryblues:CountryBlues"),
    *_mma("country", "stdlib/bluegrass:BlueGrass", tempo=(120, 180)),
    *_mma("country", "stdlib/slowcountry:SlowCountry", tempo=(60, 90)),
    *_mma("country", "stdlib/hillcountry:HillCountry"),
    *_mma("country", "stdlib/westernswing:WesternSwing"),
    *_mma("country", "stdlib/folk:Folk"),
    *_mma("country", "yamaha/western:Western"),
    *_mma("country", "yamaha/jazzcountry:JazzCountry", tempo=(60, 100)),
    *_mma("country", "kara/kwestballad:kwestballad", tempo=(65, 100)),
    *_zoom("country", "zoom/country:CNTR01,CNTR02,CNTR03,CNTR04"),
    *_zoom("country", "zoom/cntry:CNTRY"),
    # disco (and its funk/soul/dance neighbours)
    *_mma("disco", "stdlib/dsoul:DSoul"),
    *_mma("disco", "stdlib/boneym:BoneyM"),
    *_mma("disco", "stdlib/bvfunk:BVFunk", tempo=(100, 124)),
    *_mma("disco", "casio/discosoul:DiscoSoul"),
    *_mma("disco", "casio/8beatdance:8BeatDance"),
    *_mma("disco", "casio/dance1:Dance1"),
    *_mma("disco", "casio/dance2:Dance2"),
    *_mma("disco", "casio/funk1:Funk1", tempo=(100, 124)),
    *_mma("disco", "casio/funk2:Funk2", tempo=(100, 124)),
    *_mma("disco", "casio/house:House", tempo=(118, 128)),
    *_mma("disco", "kara/Kfunk1:Kfunk1", tempo=(100, 125)),
    *_zoom("disco", "zoom/dance:DANC01,DANC02,DANC03,DANC04,DANC05,DANC06,DANCE"),
    *_zoom("disco", "zoom/house:HOUS01,HOUS02,HOUS03,HOUS04", tempo=(118, 128)),
    # hip-hop
    *_mma("hiphop", "casio/hip-hop:Hip-Hop"),
    *_mma("hiphop", "casio/triphop:TripHop", tempo=(70, 95)),
    *_mma("hiphop", "alexis/hiphop:HipHop"),
    *_zoom("hiphop", "zoom/hiphop:" + ",".join(f"HIP{i:02d}" for i in range(1, 24))),
    *_zoom("hiphop", "zoom/trip:TRIP01,TRIP02,TRIP03,TRIP04", tempo=(70, 95)),
    # jazz
    *_mma("jazz", "stdlib/swing:Swing", tempo=(110, 180)),
    *_mma("jazz", "stdlib/fastswing:FastSwing", tempo=(200, 260)),
    *_mma("jazz", "stdlib/jazzcombo:JazzCombo", tempo=(120, 200)),
    *_mma("jazz", "stdlib/bebop:Bebop", tempo=(120, 160)),
    *_mma("jazz", "stdlib/modernjazz:ModernJazz"),
    *_mma("jazz", "stdlib/slowjazz:SlowJazz", tempo=(60, 95)),
    *_mma("jazz", "stdlib/mellowjazz:MellowJazz", tempo=(80, 130)),
    *_mma("jazz", "stdlib/nitejazz:NiteJazz", tempo=(80, 130)),
    *_mma("jazz", "stdlib/evansish:Evansish", tempo=(80, 140)),
    *_mma("jazz", "stdlib/jazzguitar:JazzGuitar", tempo=(70, 130)),
    *_mma("jazz", "stdlib/jazzwaltz:JazzWaltz", beats=3, tempo=(110, 180)),
    *_mma("jazz", "stdlib/bigband:BigBand", tempo=(120, 200)),
    *_mma("jazz", "stdlib/gypsyjazz:GypsyJazz", tempo=(140, 220)),
    *_mma("jazz", "stdlib/dixie:Dixie", tempo=(150, 220)),
    *_mma("jazz", "casio/swing:Swing", tempo=(110, 180)),
    *_mma("jazz", "casio/slowswing:SlowSwing", tempo=(70, 110)),
    *_mma("jazz", "casio/middlebigband:MiddleBigBand", tempo=(75, 110)),
    *_mma("jazz", "yamaha/jazzbasie:JazzBasie", tempo=(110, 170)),
    *_mma("jazz", "yamaha/jazzGrtrio:JazzGrTrio"),
    *_mma("jazz", "yamaha/jazzswing:JazzSwing", tempo=(110, 180)),
    *_mma("jazz", "yamaha/jazztrio:JazzTrio"),
    *_zoom("jazz", "zoom/jazz:JAZZ01,JAZZ02,JAZZ03,JAZZ04,JAZZ05,JAZZ06,JAZZ07"),
    # metal (hard rock and thrash included)
    *_mma("metal", "casio/heavymetal:HeavyMetal"),
    *_mma("metal", "casio/digitalrock:DigitalRock"),
    *_mma("metal", "pflib/metal1:metal1"),
    *_mma("metal", "pflib/metal2:metal2", tempo=(80, 140)),
    *_zoom("metal", "zoom/mtl:MTL01,MTL02,MTL03,MTL04"),
    *_zoom("metal", "zoom/thr:THRS01,THRS02", tempo=(140, 200)),
    *_zoom("metal", "zoom/hrk:HRK01,HRK02,HRK03,HRK04,HRK05,HRK06,HRK07", tempo=(100, 150)),
    # pop
    *_mma("pop", "stdlib/popballad:PopBallad", tempo=(66, 96)),
    *_mma("pop", "stdlib/8beat:8Beat"),
    *_mma("pop", "stdlib/bubblerock:BubbleRock"),
    *_mma("pop", "stdlib/guitarballad:GuitarBallad", tempo=(66, 96)),
    *_mma("pop", "stdlib/pianoballad:PianoBallad", tempo=(60, 90)),
    *_mma("pop", "casio/60spop:60sPop"),
    *_mma("pop", "casio/80spop:80sPop"),
    *_mma("pop", "casio/8beatpop1:8BeatPop1"),
    *_mma("pop", "casio/8beatpop2:8BeatPop2"),
    *_mma("pop", "casio/8beatpop3:8BeatPop3"),
    *_mma("pop", "casio/pop:Pop"),
    *_mma("pop", "casio/popballad:PopBallad", tempo=(66, 96)),
    *_mma("pop", "casio/popshuffle1:PopShuffle1"),
    *_mma("pop", "casio/soulpop:SoulPop"),
    *_mma("pop", "casio/electricpop:ElectricPop", tempo=(110, 130)),
    *_mma("pop", "casio/dancepop1:DancePop1", tempo=(110, 130)),
    *_mma("pop", "casio/dancepop2:DancePop2", tempo=(110, 130)),
    *_mma("pop", "casio/16beat1:16Beat1"),
    *_mma("pop", "casio/8beatballad1:8BeatBallad1", tempo=(66, 96)),
    *_mma("pop", "kara/8beatmotown:8beatmotown"),
    *_mma("pop", "pflib/16beat1:16beat1"),
    *_zoom("pop", "zoom/pop:" + ",".join(f"POP{i:02d}" for i in range(1, 13))),
    # reggae (and ska)
    *_mma("reggae", "stdlib/ska:Ska", tempo=(130, 170)),
    *_zoom("reggae", "zoom/reggae:REGG01,REGG02,REGG03,REGG04"),
    *_zoom("reggae", "zoom/ska:SKA01,SKA02,SKA03,SKA04", tempo=(120, 160)),
    # rock
    *_mma("rock", "stdlib/50srock:50sRock"),
    *_mma("rock", "stdlib/60srock:60sRock"),
    *_mma("rock", "stdlib/basicrock:BasicRock"),
    *_mma("rock", "stdlib/rock-128:Rock128", tempo=(50, 80)),
    *_mma("rock", "stdlib/folkrock:FolkRock"),
    *_mma("rock", "stdlib/softrock:SoftRock"),
    *_mma("rock", "stdlib/strut:Strut"),
    *_mma("rock", "stdlib/jazzrock:JazzRock"),
    *_mma("rock", "casio/60srock:60sRock"),
    *_mma("rock", "casio/rock1:Rock1"),
    *_mma("rock", "casio/rock2:Rock2"),
    *_mma("rock", "casio/poprock1:PopRock1"),
    *_mma("rock", "casio/poprock2:PopRock2"),
    *_mma("rock", "casio/shufflerock:ShuffleRock"),
    *_mma("rock", "casio/slowrock:SlowRock", tempo=(60, 90)),
    *_mma("rock", "kara/K50s_rock:50s_Rock"),
    *_mma("rock", "pflib/8beat1:8beat1"),
    *_mma("rock", "pflib/8beat2:8beat2"),
    *_mma("rock", "pflib/rock1:rock1"),
    *_mma("rock", "pflib/highfive:highfive"),
    *_mma("rock", "yamaha/w-rock:W-Rock"),
    *_zoom("rock", "zoom/rock:" + ",".join(f"ROCK{i:02d}" for i in range(1, 28))),
    *_zoom("rock", "zoom/punk:PUNK01,PUNK02", tempo=(150, 200)),
    # electronic: house, techno, trance, electronica, drum and bass (synthesizers only)
    *_mma("electronic", "casio/latinhouse:LatinHouse", tempo=(118, 128)),
    *_mma("electronic", "casio/techno:Techno", tempo=(125, 135)),
    *_mma("electronic", "alexis/teamtechno:TeamTechno", tempo=(122, 135)),
    *_mma("electronic", "casio/rave:Rave", tempo=(130, 145)),
    *_mma("electronic", "casio/trance1:Trance1", tempo=(132, 142)),
    *_mma("electronic", "casio/trance2:Trance2", tempo=(132, 142)),
    *_mma("electronic", "stdlib/trance:Trance", tempo=(128, 140)),
    *_mma("electronic", "casio/ambient1:Ambient1", tempo=(80, 110)),
    *_mma("electronic", "casio/ambient2:Ambient2", tempo=(80, 110)),
    *_mma("electronic", "casio/ambient3:Ambient3", tempo=(80, 110)),
    *_zoom("electronic", "zoom/techno:" + ",".join(f"TECH{i:02d}" for i in range(1, 11))),
    *_zoom("electronic", "zoom/dnb:DnB01,DnB02,DnB03,DnB04,DnB05,DnB06", tempo=(168, 176)),
    *_zoom("electronic", "zoom/ambient:AMB01,AMB02,AMB03,AMB04", tempo=(85, 115)),
)

# Parse times were measured once (music21 10.5): chorales about 1 s, quartet movements 3-20 s;
# works that took over 90 s or failed (Mozart K.458/1, Chopin's mazurka) are left out.
SCORE_FAMILIES: tuple[ScoreFamily, ...] = (
    _composer("bach", *(f"bach/bwv{n}" for n in _BACH_CHORALES)),
    _composer("beethoven", *(f"beethoven/opus18no1/movement{i}.mxl" for i in (1, 2, 3, 4))),
    _composer(
        "mozart",
        "mozart/k155/movement1.mxl",
        "mozart/k156/movement2.mxl",
        "mozart/k545/movement1_exposition.mxl",
        "mozart/k80/movement1.mxl",
    ),
    _composer("haydn", "haydn/opus1no1/movement1.mxl", "haydn/opus74no1/movement2.mxl"),
    _composer("monteverdi", *(f"monteverdi/madrigal.3.{i}.mxl" for i in (1, 2, 3, 4, 5))),
    _composer("palestrina", *(f"palestrina/Agnus_0{i}.krn" for i in (1, 2, 3, 4))),
    _composer(
        "schumann_robert",
        "schumann_robert/opus41no1/movement2.mxl",
        "schumann_robert/dichterliebe_no2.xml",
    ),
    _composer(
        "schumann_clara", "schumann_clara/polonaise_op1n1.mxl", "schumann_clara/polonaise_op1n2.mxl"
    ),
    _composer("josquin", "josquin/milleRegrets.abc", "josquin/laPlusDesPlus.abc"),
    _composer("corelli", "corelli/opus3no1/1grave.xml"),
    _composer("cpebach", "cpebach/h186.mxl"),
    _composer("handel", "handel/rinaldo/Lascia_chio_pianga.mxl"),
    _composer("schubert", "schubert/Lindenbaum.xml"),
    _composer("weber", "weber/concertino_clarinet.mxl"),
    _composer("beach", "beach/prayer_of_a_tired_child.musicxml"),
)


def families(genre: str) -> tuple[Family, ...]:
    """All families of one genre, in table order (stable: clip choices depend on it)."""
    found: list[Family] = [f for f in MMA_FAMILIES if f.genre == genre]
    found += [f for f in SCORE_FAMILIES if f.genre == genre]
    if not found:
        raise KeyError(f"unknown genre {genre!r}; known: {', '.join(GENRES)}")
    return tuple(found)


@dataclass(frozen=True)
class Part:
    """One added MMA track: its kind, one-bar sequence, octave and GM programs to pick from."""

    track: str  # MMA track type: Bass, Walk, Chord, Arpeggio
    sequence: str
    programs: tuple[int, ...]
    octave: int
    volume: str = "mf"  # MMA dynamic; distorted guitars sit above the band in metal and rock


@dataclass(frozen=True)
class Accompaniment:
    """Bass and harmony laid over a drums-only groove, in the genre's idiom."""

    name: str
    parts: tuple[Part, ...]


def _every_beat(hits: tuple[tuple[str, int], ...], *, length: int, note: str = "") -> str:
    """An MMA sequence repeating ``hits`` (offset after the beat, velocity) on each of the
    four beats; ``note`` (a chord degree) for Bass tracks."""
    return (
        "{" + "; ".join(f"{b}{at} {length} {note}{v}" for b in range(1, 5) for at, v in hits) + "}"
    )


_STRAIGHT_EIGHTHS = (("", 95), (".5", 85))  # downbeats accented
_EIGHTHS = _every_beat(_STRAIGHT_EIGHTHS, length=8)
_EIGHTH_ROOTS = _every_beat(_STRAIGHT_EIGHTHS, length=8, note="1 ")
_OCTAVE_BASS = (
    "{"
    + "; ".join(f"{b}{h} 8 {n} 90" for b in range(1, 5) for h, n in (("", 1), (".5", "1+")))
    + "}"
)
_WALK = "{1 4 90; 2 4 85; 3 4 88; 4 4 85}"
_PAD = "{1 1 60}"
# Psytrance: a bass rolling three sixteenths after every kick, and a sixteenth arpeggio.
_ROLLING_BASS = _every_beat(((".25", 90), (".5", 80), (".75", 85)), length=16, note="1 ")
_SIXTEENTHS = _every_beat((("", 90), (".25", 65), (".5", 80), (".75", 65)), length=16)

# The synthesizer programs (0-based GM) that electronic clips are voiced with.
SYNTH_BASSES = (38, 39)
SYNTH_LEADS = tuple(range(80, 88))  # square, saw, calliope, chiff, charang, voice, fifths...
SYNTH_PADS = tuple(range(88, 96))
SYNTH_EFFECTS = tuple(range(96, 104))  # rain, soundtrack, crystal, atmosphere... sci-fi
SYNTH_GENRES = frozenset({"electronic"})
_SUSTAINED = frozenset((*range(16, 24), *range(40, 80)))  # organs, strings, brass, reeds, pipes


def synth_class(program: int) -> tuple[int, ...]:
    """The synthesizers that play a part written for ``program`` in an electronic clip: a bass
    stays a bass, a held sound becomes a pad, an effect an effect, anything else a lead."""
    if 32 <= program < 40:
        return SYNTH_BASSES
    if program in SYNTH_EFFECTS:
        return SYNTH_EFFECTS
    if program in SYNTH_PADS or program in _SUSTAINED:
        return SYNTH_PADS
    return SYNTH_LEADS


ACCOMPANIMENTS: dict[str, tuple[Accompaniment, ...]] = {
    "blues": (
        Accompaniment(
            "boogie",
            (
                Part("Bass", "{1 4 1 90; 2 4 3 80; 3 4 5 85; 4 4 6 80}", (32, 33, 34), 3),
                Part("Chord", "{1 4 80; 2.66 8 65; 3 4 80; 4.66 8 65}", (0, 3, 16, 26), 5),
            ),
        ),
        Accompaniment(
            "walk-organ",
            (
                Part("Walk", _WALK, (32, 33), 3),
                Part("Chord", "{1 2 75; 3 2 70}", (16, 17, 18), 5),
            ),
        ),
        Accompaniment(
            "shuffle-guitar",
            (
                Part("Bass", "{1 4 1 90; 2.66 8 1 70; 3 4 5 85; 4.66 8 5 70}", (33, 34), 3),
                Part("Chord", "{2 8 85; 4 8 85}", (26, 27, 29), 5),
            ),
        ),
    ),
    "country": (
        Accompaniment(
            "boom-chick",
            (
                Part("Bass", "{1 4 1 90; 3 4 5 85}", (32, 33), 3),
                Part("Chord", "{2 8 80; 2.5 8 60; 4 8 80; 4.5 8 60}", (25, 24), 5),
            ),
        ),
        Accompaniment(
            "strum-honky",
            (
                Part("Bass", "{1 4 1 90; 2 4 5 70; 3 4 1 85; 4 4 5 70}", (32, 33), 3),
                Part("Chord", "{1 8 80; 2 8 70; 2.5 8 60; 3 8 75; 4 8 70; 4.5 8 60}", (25, 27), 5),
                Part("Chord", "{2 4 65; 4 4 65}", (3, 0), 5),
            ),
        ),
        Accompaniment(
            "banjo-fiddle",
            (
                Part("Bass", "{1 4 1 90; 3 4 5 85}", (32, 33), 3),
                Part("Chord", _EIGHTHS, (105, 25), 5),
                Part("Chord", "{1 2 60; 3 2 55}", (110, 40), 6),
            ),
        ),
    ),
    "disco": (
        Accompaniment(
            "octave-stabs",
            (
                Part("Bass", _OCTAVE_BASS, (33, 34, 38, 36), 3),
                Part("Chord", "{1.5 8 80; 2.5 8 80; 3.5 8 80; 4.5 8 80}", (27, 28, 4, 7), 5),
            ),
        ),
        Accompaniment(
            "octave-strings",
            (
                Part("Bass", _OCTAVE_BASS, (33, 36, 37, 38), 3),
                Part("Chord", _PAD, (48, 49, 50), 5),
                Part("Chord", "{2 16 75; 2.75 16 60; 4 16 75; 4.75 16 60}", (28, 27), 5),
            ),
        ),
        Accompaniment(
            "funk",
            (
                Part(
                    "Bass", "{1 8 1 95; 1.75 16 1 70; 2.5 8 5 80; 3 8 1+ 85; 4 8 7 80}", (36, 33), 3
                ),
                Part("Chord", "{1 16 80; 1.5 16 60; 2.25 16 70; 3 16 80; 3.75 16 70}", (28, 7), 5),
                Part("Chord", "{2 8 80; 4 8 80}", (61, 62), 5),
            ),
        ),
    ),
    "hiphop": (
        Accompaniment(
            "sub-keys",
            (
                Part("Bass", "{1 4 1 95; 2.75 8 1 85; 3.5 8 5 80}", (38, 39, 33), 2),
                Part("Chord", "{1 2 70; 3 2 65}", (4, 5, 0), 5),
            ),
        ),
        Accompaniment(
            "pad-pluck",
            (
                Part("Bass", "{1 2 1 95; 3.5 8 1 80}", (38, 39), 2),
                Part("Chord", _PAD, (89, 88, 48, 91), 5),
                Part("Chord", "{1.5 16 70; 3 16 65; 4.5 16 60}", (45, 11, 10), 6),
            ),
        ),
        Accompaniment(
            "soul-loop",
            (
                Part("Bass", "{1 4. 1 95; 2.5 8 1 75; 3.25 8 3 80; 4 4 5 80}", (33, 38), 2),
                Part("Chord", "{1 8 75; 2.5 8 70; 3.5 8 70}", (4, 0, 48), 5),
            ),
        ),
    ),
    "jazz": (
        Accompaniment(
            "walk-comp",
            (
                Part("Walk", _WALK, (32,), 3),
                Part("Chord", "{1.66 8 70; 3 4 75}", (0, 1, 26), 5),
            ),
        ),
        Accompaniment(
            "walk-guitar",
            (
                Part("Walk", _WALK, (32, 33), 3),
                Part("Chord", "{1 4 65; 2 4 60; 3 4 65; 4 4 60}", (26, 27), 5),
            ),
        ),
        Accompaniment(
            "ballad",
            (
                Part("Bass", "{1 2 1 85; 3 2 5 80}", (32, 35), 3),
                Part("Chord", "{1 2 70; 2.66 8 60; 4 4 60}", (4, 0, 11), 5),
            ),
        ),
    ),
    "metal": (
        Accompaniment(
            "chug",
            (
                Part("Bass", _EIGHTH_ROOTS, (33, 34), 3),
                Part("Chord", _EIGHTHS, (30, 29), 4, "ff"),
            ),
        ),
        Accompaniment(
            "gallop",
            (
                Part(
                    "Bass",
                    "{1 8 1 95; 1.5 16 1 85; 1.75 16 1 85; 2 8 1 95; 2.5 16 1 85; "
                    "2.75 16 1 85; 3 8 1 95; 3.5 16 1 85; 3.75 16 1 85; 4 4 1 90}",
                    (34, 33),
                    3,
                ),
                Part(
                    "Chord",
                    "{1 8 95; 1.5 16 85; 1.75 16 85; 2 8 95; 2.5 16 85; 2.75 16 85; "
                    "3 8 95; 3.5 16 85; 3.75 16 85; 4 4 90}",
                    (30,),
                    4,
                    "ff",
                ),
            ),
        ),
        Accompaniment(
            "sustain-lead",
            (
                Part("Bass", _EIGHTH_ROOTS, (34, 33), 3),
                Part("Chord", "{1 2 95; 3 2 90}", (30, 29), 4, "ff"),
                Part("Chord", "{1 1 60}", (81, 19, 48), 5),
            ),
        ),
    ),
    "pop": (
        Accompaniment(
            "piano-eights",
            (
                Part("Bass", "{1 4 1 90; 2.5 8 1 75; 3 4 5 85; 4.5 8 1 75}", (33, 34, 38), 3),
                Part("Chord", _EIGHTHS, (0, 1, 4), 5),
            ),
        ),
        Accompaniment(
            "strum-pad",
            (
                Part("Bass", "{1 4. 1 90; 2.5 8 1 75; 3 2 5 85}", (33, 34), 3),
                Part(
                    "Chord", "{1 8 80; 2 8 70; 2.5 8 65; 3.5 8 70; 4 8 70; 4.5 8 65}", (25, 27), 5
                ),
                Part("Chord", _PAD, (48, 88, 89, 90), 5),
            ),
        ),
        Accompaniment(
            "synth-pop",
            (
                Part("Bass", _EIGHTH_ROOTS, (38, 39), 3),
                Part("Chord", "{1 4 75; 2.5 8 70; 4 4 70}", (90, 81, 62), 5),
            ),
        ),
    ),
    "reggae": (
        Accompaniment(
            "one-drop",
            (
                Part("Bass", "{1 4. 1 95; 2.5 8 5 80; 3.5 8 3 80; 4 4 1 85}", (33, 34, 38), 2),
                Part("Chord", "{2 8 85; 4 8 85}", (27, 28, 0), 5),
                Part("Chord", "{1.5 16 55; 2.5 16 55; 3.5 16 55; 4.5 16 55}", (16, 17), 5),
            ),
        ),
        Accompaniment(
            "rockers",
            (
                Part(
                    "Bass",
                    "{1 8 1 95; 1.5 8 1 80; 2.5 8 5 80; 3 8 1 90; 3.5 8 3 80; 4.5 8 5 80}",
                    (33, 38),
                    2,
                ),
                Part("Chord", "{2 8 85; 4 8 85}", (28, 27), 5),
            ),
        ),
        Accompaniment(
            "ska-upstroke",
            (
                Part("Walk", _WALK, (32, 33), 3),
                Part("Chord", "{1.5 8 85; 2.5 8 85; 3.5 8 85; 4.5 8 85}", (27, 0, 16), 5),
                Part("Chord", "{1 2 60; 3 2 55}", (61, 56, 65), 5),
            ),
        ),
    ),
    "rock": (
        Accompaniment(
            "driving",
            (
                Part("Bass", _EIGHTH_ROOTS, (33, 34), 2),
                Part("Chord", "{1 4 85; 2 4 80; 3 4 85; 4 4 80}", (29, 30), 4, "f"),
            ),
        ),
        Accompaniment(
            "open-strum",
            (
                Part("Bass", "{1 4 1 90; 2.5 8 1 75; 3 4 5 85; 4 4 1 80}", (33, 34), 2),
                Part(
                    "Chord",
                    "{1 8 85; 2 8 70; 2.5 8 70; 3 8 80; 3.5 8 65; 4.5 8 70}",
                    (25, 27, 29),
                    5,
                ),
            ),
        ),
        Accompaniment(
            "organ-rock",
            (
                Part("Bass", _EIGHTH_ROOTS, (34, 33), 2),
                Part("Chord", "{1 2 70; 3 2 65}", (18, 16), 5),
                Part("Chord", "{1 8 85; 2.5 8 80; 3 4 85}", (29, 30), 4, "f"),
            ),
        ),
    ),
    "electronic": (
        Accompaniment(
            "offbeat-pad",  # house and trance: the bass between the kicks under a held pad
            (
                Part("Bass", "{1.5 8 1 95; 2.5 8 1 90; 3.5 8 1 95; 4.5 8 1 90}", SYNTH_BASSES, 2),
                Part("Chord", _PAD, SYNTH_PADS, 5),
            ),
        ),
        Accompaniment(
            "rolling-arp",  # psytrance: a rolling bass and an arpeggiated lead
            (
                Part("Bass", _ROLLING_BASS, SYNTH_BASSES, 2),
                Part("Arpeggio", _SIXTEENTHS, SYNTH_LEADS, 5),
            ),
        ),
        Accompaniment(
            "reese-stabs",  # techno and drum and bass: a long bass, lead stabs, an atmosphere
            (
                Part("Bass", "{1 2 1 95; 3 2 1 90}", SYNTH_BASSES, 2),
                Part("Chord", "{1.5 16 85; 2.75 16 75; 4 16 80}", (80, 81, 86), 5),
                Part("Chord", "{1 1 55}", SYNTH_EFFECTS, 6),
            ),
        ),
    ),
}

# GM drum kits (bank 128 presets) that fit a genre; the soundfont falls back to kit 0 if it
# lacks one. 0 standard, 8 room, 16 power, 24 electronic, 25 TR-808, 32 jazz, 40 brush.
DRUM_KITS: dict[str, tuple[int, ...]] = {
    "blues": (0, 8, 32),
    "classical": (0,),
    "country": (0, 8, 40),
    "disco": (0, 8, 24),
    "hiphop": (0, 24, 25),
    "jazz": (0, 32, 40),
    "metal": (0, 8, 16),
    "pop": (0, 8, 24),
    "reggae": (0, 8),
    "rock": (0, 8, 16),
    "electronic": (24, 25),
}

# Timbre classes whose members stand in for one another (0-based GM programs). A swap stays
# inside the class the groove's author chose, so it stays genre-plausible by construction.
SWAP_CLASSES: tuple[tuple[int, ...], ...] = (
    (0, 1, 2),  # acoustic and electric grand pianos
    (4, 5),  # electric pianos
    (16, 17, 18),  # drawbar, percussive, rock organ
    (24, 25),  # nylon and steel acoustic guitars
    (26, 27, 28),  # jazz, clean, muted electric guitars
    (29, 30),  # overdriven and distorted guitars
    (33, 34, 35),  # fingered, picked, fretless electric basses
    (36, 37, 38, 39),  # slap and synth basses
    (40, 41, 42),  # solo bowed strings
    (48, 49, 50, 51),  # string ensembles
    (56, 59),  # trumpet, muted trumpet
    (61, 62, 63),  # brass sections
    (64, 65, 66, 67),  # saxophones
    (88, 89, 90, 91, 94),  # pads
    (80, 81, 87),  # synth leads
)

# Classical re-orchestrations, highest voice first; a score's parts are ranked by pitch.
ENSEMBLES: dict[str, tuple[int, ...]] = {
    "string-quartet": (40, 40, 41, 42, 43),
    "string-orchestra": (48, 49, 48, 49, 48),
    "piano": (0, 0, 0, 0, 0),
    "harpsichord": (6, 6, 6, 6, 6),
    "organ": (19, 19, 19, 19, 19),
    "winds": (73, 68, 71, 70, 60),
    "brass-choir": (56, 56, 60, 57, 58),
    "choir-strings": (52, 52, 48, 48, 42),
}
