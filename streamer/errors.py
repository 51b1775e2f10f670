"""The one exception type users see: a single line naming the problem and what to do."""

import sys
from collections.abc import Callable


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
