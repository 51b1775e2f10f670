"""The one exception type users see (a single line naming the problem and what to do), and
the one line that says why a file of a batch failed."""

import sys
from collections.abc import Callable
from pathlib import Path


class StreamerError(Exception):
    """A problem the user can fix; the command line prints it as one line, without a traceback."""


def run_command(prog: str, body: Callable[[], int]) -> int:
    """Run a command's body: a `StreamerError` becomes one line on stderr and exit status 2,
    Ctrl-C exit status 130 without a traceback."""
    try:
        return body()
    except StreamerError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def first_line(error: Exception) -> str:
    """What an error says, in a line: its message's first line, or its type's name."""
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def failure_reason(error: Exception, path: Path) -> str:
    """Why one file of a batch failed, in a line: a `StreamerError` says it itself; anything
    else (a decoder giving up in the middle, a bug) is named with its type."""
    import soundfile

    if isinstance(error, StreamerError):
        return str(error).removeprefix(f"{path}: ")
    if isinstance(error, soundfile.LibsndfileError):  # opening was checked: a read failed
        return f"the decoder gave up partway ({error.error_string.rstrip('.')}): a damaged file?"
    detail = str(error).strip().splitlines()
    return f"could not be analysed ({type(error).__name__}{': ' + detail[0] if detail else ''})"
