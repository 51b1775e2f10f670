"""The terminal view renders every protocol message the engine sends, in every state."""

from __future__ import annotations

from rich.console import Console

from streamer.outlets import protocol
from streamer.outlets.view import GenreView, MonitorView

LABELS = ["jazz", "rock"]


def render(view: GenreView, *, width: int = 100) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(view)
    return console.export_text()


def update(time: float, top: str | None, state: str = "music", tags: dict | None = None) -> dict:
    return protocol.update_message(
        time=time,
        probabilities={"jazz": 0.2, "rock": 0.8},
        top=top,
        confidence=0.8,
        state=state,
        level_dbfs=-12.0,
        segment_start=40.0,
        tags=tags,
    )


def hello(**fields: object) -> dict:
    message = protocol.hello_message(
        labels=LABELS,
        model={"name": "m", "sha256": "0" * 64},
        features={},
        hop_seconds=0.5,
        window_seconds=3.0,
        segment_lag_seconds=21.5,
    )
    return {**message, **fields}


def test_view_renders_a_session_as_the_protocol_tells_it() -> None:
    view = GenreView(title="session")
    view.handle(hello())
    view.handle(
        protocol.status_message(
            time=0.0,
            overflow_samples=0,
            overflow_events=0,
            latency_ms=None,
            clients=0,
            dropped_messages=0,
            source="test",
        )
    )
    assert "latency - ms" in render(view)  # before the first update: no latency yet
    view.handle(update(3.0, None))  # music, genre not decided yet: as the overlay says it
    assert "0:03  listening…" in render(view) and "silence" not in render(view)
    view.handle(update(3.5, None, state="silence"))
    assert "0:03  silence" in render(view)
    view.handle(
        protocol.segment_message(
            index=0, start=0.0, end=40.0, genre="jazz", state="music", confidence=0.7
        )
    )
    view.handle(update(95.5, "rock"))
    text = render(view)
    assert "ROCK" in text and "80 %" in text and "1:35" in text
    assert "-12.0 dBFS" in text


TAGS = {"female vocalists": 0.9, "mellow": 0.41, "80s": 0.62, "sad": 0.39, "party": 0.4}


def test_view_shows_the_confident_tags_dimmed_under_the_genre() -> None:
    view = GenreView()
    view.handle(hello())
    view.handle(update(95.5, "rock", tags=TAGS))
    lines = render(view).splitlines()
    genre = next(i for i, line in enumerate(lines) if "ROCK" in line)
    # at least 0.4, strongest first, three at most: party (0.4) comes fourth
    assert lines[genre + 1] == "      female vocalists · 80s · mellow"
    assert lines[genre + 2].startswith("jazz")
    view.handle(update(96.0, None, state="silence", tags=TAGS))  # a silent patch: none
    assert "mellow" not in render(view)
    view.handle(hello(shown_tags={"minimum": 0.6, "limit": 5}))  # the server's rule, not ours
    view.handle(update(96.5, "rock", tags=TAGS))
    assert "      female vocalists · 80s\n" in render(view)


def test_view_cuts_the_tags_short_on_a_narrow_terminal_so_the_bars_stay() -> None:
    view = GenreView()
    view.handle(hello())
    view.handle(update(95.5, "rock"))  # before the tagger's first patch
    untagged = render(view, width=30).splitlines()
    view.handle(update(95.5, "rock", tags=TAGS))
    tagged = render(view, width=30).splitlines()
    assert tagged[2] == "      female vocalists · 80s …"
    assert tagged[3:] == untagged[3:]  # cut, not wrapped; and the line is there without tags


def test_view_says_at_once_that_the_record_is_no_longer_written() -> None:
    view = GenreView()
    health = {
        "time": 12.0, "overflow_samples": 0, "overflow_events": 0, "latency_ms": 20.0,
        "clients": 0, "dropped_messages": 0, "source": "test",
    }  # fmt: skip
    view.handle(protocol.status_message(**health))
    assert "NOT RECORDING" not in render(view)
    error = "cannot write set.jsonl (No space left on device): the segments from 9.5 s on"
    view.handle(protocol.status_message(**health, record_error=error))
    assert f"NOT RECORDING: {error}" in render(view)


def test_the_view_the_overlay_and_the_plot_colour_a_genre_alike() -> None:
    """One palette (streamer.outlets.palette): a genre looks the same on every screen."""
    from streamer.offline.plot import genre_colors
    from streamer.outlets.overlay import OverlayFiles

    labels = ["blues", "classical", "country", "disco", "hiphop"]
    view = GenreView()
    view.handle(hello(labels=labels))
    plotted = genre_colors(labels)
    assert [view.style(label) for label in labels] == [plotted[label] for label in labels]
    page = OverlayFiles.load().respond("/").body.decode()  # the palette is filled in, in order
    assert all(plotted[label] in page for label in labels)


def test_the_timeline_has_a_legend_of_the_colours_it_shows() -> None:
    view = GenreView()
    view.handle(hello())
    view.handle(protocol.segment_message(
        index=0, start=0.0, end=20.0, genre=None, state="silence", confidence=0.0
    ))  # fmt: skip
    view.handle(protocol.segment_message(
        index=1, start=20.0, end=40.0, genre="jazz", state="music", confidence=0.7
    ))  # fmt: skip
    view.handle(update(95.5, "rock"))
    lines = render(view).splitlines()
    strip = next(i for i, line in enumerate(lines) if line.startswith("0:00 █"))
    assert lines[strip + 1].split() == ["■", "jazz", "■", "rock", "■", "no", "genre"]
    console = Console(width=100, record=True, color_system="truecolor")
    console.print(view)
    legend = console.export_text(styles=True).splitlines()[strip + 1]
    assert "0;135;255" in legend  # jazz's colour (the palette's first) on its square


def test_the_monitor_table_shows_every_stream_within_80_columns() -> None:
    names = ["Jazz FM Twenty Four Hours", "Rock 1", "Gone"]
    streams = [{"name": name, "source": "x", "state": None} for name in names]
    view = MonitorView(title="streamer monitor: 3 streams")
    view.handle(hello(streams=streams))
    jazz = update(12.0, "rock") | {"title": "Miles Davis - So What (Remastered 2009)"}
    view.handle(jazz | {"stream": names[0]})
    view.handle(update(12.0, None, state="silence") | {"stream": "Gone"})
    lost = protocol.status_message(
        time=3.0, overflow_samples=0, overflow_events=0, latency_ms=None, clients=0,
        dropped_messages=0, source="x", input_lost_at=1.0,
        input_problem="http://127.0.0.1:8000/missing: 404 Not Found: check the URL",
    )  # fmt: skip
    view.handle(lost | {"stream": "Gone"})
    late = protocol.status_message(
        time=3.0, overflow_samples=0, overflow_events=0, latency_ms=1800.0, clients=0,
        dropped_messages=0, source="x",
    )  # fmt: skip
    view.handle(late | {"stream": "Rock 1"})
    view.handle(update(12.0, "jazz") | {"stream": "not monitored"})  # ignored
    lines = render(view, width=80).splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "2 ok" in lines[0] and "1 lost" in lines[0]
    assert lines[1].startswith("1 behind by over 1 s: too many streams")
    rows = lines[3:]
    assert [row.split()[0] for row in rows] == ["Jazz", "Rock", "Gone"]  # the file's order
    assert "rock" in rows[0] and "80%" in rows[0] and "Miles Davis" in rows[0]
    assert "waiting" in rows[1]
    assert "silence" in rows[2] and "LOST 404 Not" in rows[2]


def test_the_view_shows_what_a_stream_says_is_playing() -> None:
    view = GenreView(title="session")
    view.handle(hello())
    view.handle(update(10.0, "rock") | {"title": "Band - Song"})
    assert "Band - Song" in render(view)
    view.handle(update(10.5, "rock"))  # a device or a file: no title, no line for it
    assert "Band - Song" not in render(view)
