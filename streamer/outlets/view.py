"""The terminal view, drawn from protocol messages only.

`streamer listen` feeds it the messages it broadcasts, `streamer watch` the messages it
receives over the websocket, so both show exactly the same thing. The view keeps the
latest state; a rich `Live` redraws it at a steady rate, independent of the analysis.
"""

from __future__ import annotations

import threading
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from streamer.outlets.palette import SILENCE_COLOR, genre_colors
from streamer.outlets.protocol import confident_tags

UNDECIDED = "listening…"
"""The headline while music plays whose genre the tracker has not decided yet (as the
overlay says it)."""
ALARM = "bold white on red"
BAR_WIDTH = 30
BEHIND_MS = 1000.0
"""A stream whose audio waits longer than this before its update goes out is shown as
behind: the machine does not keep up with that many streams."""
TIMELINE_WIDTH = 60


class GenreView:
    """State of the session as the protocol tells it, and its rich rendering.

    Messages may arrive from another thread than the one that renders, so updates and
    rendering take a lock (held for microseconds; never by the analysis path itself,
    which hands messages over without waiting).
    """

    def __init__(self, *, title: str = "streamer") -> None:
        self.title = title
        self._lock = threading.Lock()
        self.labels: list[str] = []
        self.colors: dict[str, str] = {}  # each label's (`palette.genre_colors`); grey else
        self.shown_tags: dict[str, Any] = {}  # the hello's rule; confident_tags' defaults
        self.update: dict[str, Any] | None = None
        self.status: dict[str, Any] | None = None
        self.segments: list[dict[str, Any]] = []
        self.recommendations: dict[str, Any] | None = None
        self.notice = "waiting for audio..."

    def handle(self, message: dict[str, Any]) -> None:
        """Take one protocol message into the state."""
        with self._lock:
            kind = message.get("type")
            if kind == "hello":
                self.labels = list(message["labels"])
                self.colors = genre_colors(self.labels)
                self.shown_tags = dict(message.get("shown_tags", {}))
                self.update = message.get("state")
                self.segments = list(message.get("segments", []))
                self.recommendations = message.get("recommendations")
                self.notice = ""
            elif kind == "update":
                self.update = message
                self.notice = ""
            elif kind == "segment":
                self.segments.append(message)
            elif kind == "status":
                self.status = message
            elif kind == "recommendations":
                self.recommendations = message

    def style(self, genre: str | None) -> str:
        return self.colors.get(genre or "", SILENCE_COLOR)

    def __rich__(self) -> RenderableType:
        with self._lock:
            parts: list[RenderableType] = [Text(self.title, style="bold")]
            if self.notice:
                parts.append(Text(self.notice, style="dim"))
            if self.status is not None and self.status.get("input") == "lost":
                parts.append(self._input_lost(self.status))
            if self.status is not None and self.status.get("record_error"):
                parts.append(Text(f"NOT RECORDING: {self.status['record_error']}", style=ALARM))
            if self.update is not None:
                update = self.update
                parts += [self._headline(update), self._tags(update), self._bars(update)]
            parts.append(self._timeline())
            if self.recommendations is not None:
                parts.append(self._recommendations(self.recommendations))
            parts.append(self._footer())
            return Group(*parts)

    @staticmethod
    def _input_lost(status: dict[str, Any]) -> Text:
        """A loud line while the input is gone: what follows it is silence, not music."""
        why = status.get("input_problem") or "the device was unplugged or the sound server stopped"
        return Text(
            f"INPUT LOST at {_clock(status['input_lost_at'])}: {why}; waiting for it to come back",
            style=ALARM,
        )

    def _headline(self, update: dict[str, Any]) -> Text:
        clock = _clock(update["time"])
        if update["top"] is None:
            word = UNDECIDED if update["state"] == "music" else update["state"]
            return Text.assemble((f"{clock}  ", "dim"), (word, f"bold {SILENCE_COLOR}"))
        return Text.assemble(
            (f"{clock}  ", "dim"),
            (update["top"].upper(), f"bold {self.style(update['top'])}"),
            f"  {100 * update['confidence']:.0f} %",
        )

    def _tags(self, update: dict[str, Any]) -> Text:
        """The confident descriptor tags, dimmed under the genre, during music (a silent
        patch's tags describe nothing). The line is there without tags too, and is cut
        short rather than wrapped on a narrow terminal, so the bars never move."""
        tags = update.get("tags") if update["state"] == "music" else None
        names = [name for name, _ in confident_tags(tags, **self.shown_tags)]
        indent = " " * (len(_clock(update["time"])) + 2)
        line = " · ".join(names)
        if update.get("title"):  # what an internet stream says is playing
            line = f"{update['title']}   {line}"
        return Text(indent + line, style="dim", no_wrap=True, overflow="ellipsis")

    def _bars(self, update: dict[str, Any]) -> Table:
        table = Table.grid(padding=(0, 1))
        for label in self.labels:
            p = float(update["probabilities"].get(label, 0.0))
            filled = round(p * BAR_WIDTH)
            bar = Text("█" * filled, style=self.style(label)) + Text("·" * (BAR_WIDTH - filled))
            table.add_row(
                Text(label, style="bold" if label == update["top"] else ""), bar, f"{p:4.0%}"
            )
        return table

    def _timeline(self) -> Text:
        """The session as a strip, one cell per equal slice of time, coloured by genre,
        and under it a legend of the colours it holds (in the labels' order; grey for
        what is no genre: silence, not-music, undecided)."""
        end = self.update["time"] if self.update else 0.0
        if end <= 0:
            return Text("")
        spans = [(s["start"], s["end"], s["genre"]) for s in self.segments]
        if self.update is not None:
            spans.append((self.update["segment_start"], end, self.update["top"]))
        strip, shown = Text(), set()
        for cell in range(TIMELINE_WIDTH):
            t = (cell + 0.5) * end / TIMELINE_WIDTH
            genre = next((g for start, stop, g in spans if start <= t < stop), None)
            strip.append("█", style=self.style(genre))
            shown.add(genre if genre in self.labels else None)
        legend = Text("     ")
        for genre in [label for label in self.labels if label in shown] + [None] * (None in shown):
            legend.append("■ ", style=self.style(genre))
            legend.append(f"{genre or 'no genre'}   ", style="dim")
        return Text.assemble(("0:00 ", "dim"), strip, (f" {_clock(end)}\n", "dim"), legend)

    def _recommendations(self, message: dict[str, Any]) -> Table:
        """Library tracks that fit now: name, genre, tempo, key (Camelot), similarity."""
        basis = message["basis"]
        heard = " ".join(
            part
            for part in (
                basis["tempo"] and f"{basis['tempo']:.0f} BPM",
                basis["key"] and f"{basis['key']} ({basis['camelot']})",
            )
            if part
        )
        table = Table(title=f"next from your library (heard: {heard or '-'})", title_justify="left",
                      box=None, padding=(0, 1))  # fmt: skip
        for column in ("track", "genre", "BPM", "key", "match"):
            table.add_column(column, justify="right" if column in ("BPM", "match") else "left")
        playing = message["now_playing"]
        if playing is not None:
            table.add_row(
                Text(f"now: {playing['name']}", style="dim"), "", "", "",
                Text(f"{playing['similarity']:.0f} %", style="dim"),
            )  # fmt: skip
        for track in message["tracks"]:
            table.add_row(
                track["name"],
                Text(track["genre"], style=self.style(track["genre"])),
                "" if track["tempo"] is None else f"{track['tempo']:.0f}",
                track["camelot"] or "",
                f"{track['similarity']:.0f} %",  # percent, as the protocol sends it
            )
        return table

    def _footer(self) -> Text:
        level = self.update["level_dbfs"] if self.update else -100.0
        meter = max(0, min(20, round((level + 60) / 3)))
        text = Text.assemble("input ", ("▮" * meter, "green"), ("▯" * (20 - meter), "dim"))
        text.append(f" {level:6.1f} dBFS")
        if self.status is not None:
            status = self.status
            latency = status["latency_ms"]  # None until the first update went out
            text.append(
                f"   latency {'-' if latency is None else f'{latency:.0f}'} ms   overflows "
                f"{status['overflow_events']} ({status['overflow_samples']} samples)   "
                f"clients {status['clients']}"
            )
        return text


class MonitorView:
    """`streamer monitor`'s table, a row a stream, drawn from protocol messages only.

    Stream, genre, confidence, the title the stream sends, level and input state, in the
    order of the streams file; within 80 columns (long names, titles and problems cut
    short). Like
    `GenreView`, messages come from another thread than the one that renders.
    """

    def __init__(self, *, title: str = "streamer monitor") -> None:
        self.title = title
        self._lock = threading.Lock()
        self.colors: dict[str, str] = {}  # the genre colours, from the hello's labels
        self.order: list[str] = []
        self.updates: dict[str, dict[str, Any]] = {}
        self.statuses: dict[str, dict[str, Any]] = {}

    def handle(self, message: dict[str, Any]) -> None:
        """Take one protocol message into the state."""
        with self._lock:
            kind = message.get("type")
            if kind == "hello":
                self.colors = genre_colors(message["labels"])
                streams = message.get("streams") or []
                self.order = [stream["name"] for stream in streams]
                self.updates = {s["name"]: s["state"] for s in streams if s["state"]}
            elif kind == "update" and "stream" in message:
                self.updates[message["stream"]] = message
            elif kind == "status" and "stream" in message:
                self.statuses[message["stream"]] = message

    def __rich__(self) -> RenderableType:
        with self._lock:
            lost = sum(status["input"] == "lost" for status in self.statuses.values())
            behind = sum(
                (status["latency_ms"] or 0) > BEHIND_MS for status in self.statuses.values()
            )
            heading = Text.assemble(
                (self.title, "bold"), (f"   {len(self.order) - lost} ok", "green")
            )
            if lost:
                heading.append(f"   {lost} lost", style=ALARM)
            parts: list[RenderableType] = [heading]
            if behind:  # the analysis does not keep up with the audio coming in
                parts.append(
                    Text(
                        f"{behind} behind by over {BEHIND_MS / 1000:g} s: too many streams "
                        "for this machine (--no-tagger costs less)",
                        style=ALARM,
                    )
                )
            table = Table(box=None, padding=(0, 1, 0, 0), expand=False)
            table.add_column("stream", max_width=16, no_wrap=True, overflow="ellipsis")
            table.add_column("genre", min_width=11, max_width=11, no_wrap=True)
            table.add_column("%", justify="right", min_width=4, max_width=4)
            table.add_column("title", max_width=22, no_wrap=True, overflow="ellipsis")
            table.add_column("dB", justify="right", min_width=4, max_width=4)
            table.add_column("input", max_width=18, no_wrap=True, overflow="ellipsis")
            for name in self.order:
                table.add_row(name, *self._cells(self.updates.get(name), self.statuses.get(name)))
            return Group(*parts, table)

    def _cells(
        self, update: dict[str, Any] | None, status: dict[str, Any] | None
    ) -> tuple[Text, str, str, str, Text]:
        if update is None:
            genre, confidence, title, level = Text("waiting", style="dim"), "", "", ""
        else:
            top = update["top"]
            word = top or (UNDECIDED if update["state"] == "music" else update["state"])
            genre = Text(word, style=self.colors.get(top or "", SILENCE_COLOR))
            confidence = f"{100 * update['confidence']:.0f}%" if top else ""
            title = update.get("title") or ""
            level = f"{update['level_dbfs']:.0f}"
        if status is not None and status["input"] == "lost":
            problem = status.get("input_problem") or "no audio"
            if problem.startswith(("http://", "https://")):  # the row names the stream
                problem = problem.split(": ", 1)[-1]
            state = Text(f"LOST {problem}", style=ALARM)
        else:
            state = Text("ok", style="green") if status is not None else Text("", style="dim")
        return genre, confidence, title, level, state


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
