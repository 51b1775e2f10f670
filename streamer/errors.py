"""The one exception type users see: a single line naming the problem and what to do."""


class StreamerError(Exception):
    """A problem the user can fix; the command line prints it as one line, without a traceback."""
