"""Progress bars for long work (indexing, tagging, training), on stderr.

One look for every long command: what is being done, a bar, done/total, a free text field
(``rate``: speed or the latest metrics), elapsed and remaining time. Stderr, so that the
commands' real output on stdout can be piped.
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

console = Console(stderr=True)


def progress_bar() -> Progress:
    """A bar whose tasks take a ``rate`` field (``bar.add_task(name, total=n, rate="")``)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
