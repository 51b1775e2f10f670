"""Progress bars for long work (indexing, tagging, training), and the lines said beside them.

One look for every long command: what is being done, a bar, done/total, a free text field
(``rate``: speed or the latest metrics), elapsed and remaining time. Stderr, so that the
commands' real output on stdout can be piped. A bar is drawn only on a terminal (unless
asked for): piped into a log, stderr holds the commands' lines, and its last line is the
last thing said, not a bar. What is said is never wrapped, so that each message stays one
line in a log whatever its length.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True, soft_wrap=True)


def say(line: str) -> None:
    """One line on stderr, above any bar being drawn: never wrapped, no markup read in it
    (a file name may hold brackets)."""
    console.print(line, markup=False, highlight=False)


def progress_bar(*, show: bool | None = None) -> Progress:
    """A bar whose tasks take a ``rate`` field (``bar.add_task(name, total=n, rate="")``);
    drawn when `show`, or (None) when stderr is a terminal. Asked for on a pipe, it is drawn
    there as on a terminal (rich would only print its last state, at the end)."""
    drawn = console.is_terminal if show is None else show
    forced = drawn and not console.is_terminal
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True, force_terminal=True) if forced else console,
        disable=not drawn,
    )
