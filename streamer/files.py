"""Where streamer keeps its files, and writing them so that a crash never leaves half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to a unique temporary file beside `path`, then rename it over `path`.

    Readers see the old file or the new one, never a partial one, even with several
    processes writing the same path (parallel feature extraction, concurrent sessions).
    """
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "wb") as stream:
        stream.write(data)
    os.chmod(temporary, 0o644)  # mkstemp makes it private; these files are for all to read
    os.replace(temporary, path)


def user_cache_dir() -> Path:
    """streamer's cache folder: ``$XDG_CACHE_HOME/streamer`` (``~/.cache/streamer``)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "streamer"


def user_data_dir() -> Path:
    """streamer's data folder: ``$XDG_DATA_HOME/streamer`` (``~/.local/share/streamer``)."""
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "streamer"


def default_catalogue_path() -> Path:
    """The library catalogue of `streamer index` when no ``--db`` is given."""
    return user_data_dir() / "library.sqlite"
