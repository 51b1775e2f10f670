"""Where streamer keeps its files, writing them so that a crash never leaves half of one,
and reading the JSON documents that ship beside the models."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from streamer.errors import StreamerError, first_line


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


def write_output(path: Path, data: bytes, *, advice: str) -> None:
    """`write_atomically` for a file the user asked for (an export, a playlist): what
    goes wrong is one line, ``cannot write PATH (why): ADVICE``."""
    try:
        write_atomically(path, data)
    except OSError as error:
        raise StreamerError(f"cannot write {path} ({error.strerror}): {advice}") from None


def user_cache_dir() -> Path:
    """streamer's cache folder: ``$XDG_CACHE_HOME/streamer`` (``~/.cache/streamer``)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "streamer"


def user_data_dir() -> Path:
    """streamer's data folder: ``$XDG_DATA_HOME/streamer`` (``~/.local/share/streamer``)."""
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "streamer"


def default_catalogue_path() -> Path:
    """The library catalogue of `streamer index` when no ``--db`` is given."""
    return user_data_dir() / "library.sqlite"


def read_document(path: Path, *, format: str, version: int = 1) -> dict[str, Any]:
    """A JSON document whose ``format`` and ``format_version`` must be these; raises
    ValueError otherwise (and OSError, FileNotFoundError), for `reading_document`."""
    data = json.loads(path.read_text())
    if not (
        isinstance(data, dict)
        and data.get("format") == format
        and data.get("format_version") == version
    ):
        raise ValueError(f"not {format} version {version}")
    return data


@contextmanager
def reading_document(path: Path, *, kind: str, redo: str) -> Iterator[None]:
    """What goes wrong while a document is read and checked (missing, not JSON, a field
    missing or of the wrong type or shape) becomes one line naming `path` and what to
    do: ``{path}: no such {kind} file: {redo}`` or ``{path}: invalid {kind} file
    ({reason}): {redo}``."""
    try:
        yield
    except FileNotFoundError:
        raise StreamerError(f"{path}: no such {kind} file: {redo}") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise StreamerError(f"{path}: invalid {kind} file ({first_line(error)}): {redo}") from None


def deciding_sha256(document: Mapping[str, Any]) -> str:
    """A digest of what a document decides: everything but its ``provenance`` (how its
    numbers were chosen), so that re-running a fit that changes nothing changes no digest."""
    deciding = {k: v for k, v in document.items() if k != "provenance"}
    return hashlib.sha256(json.dumps(deciding, sort_keys=True).encode()).hexdigest()
