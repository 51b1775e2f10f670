"""Where batch work runs: one interface, for `streamer index` and `streamer tag`, that runs a
per-file function over many files in workers and streams the results back as they finish.

A job is a `Setup`: a picklable callable, called once in each worker, that loads what the
work needs (the models) and returns the per-file function. `results` sends the files to
the workers, at most `DEPTH` at a time per worker (so Ctrl-C is prompt and little work is
lost), and yields each file's result, or its `Failure`, in the order they finish. The
caller, on the driver, does the writing (the catalogue, the exports): workers only
analyse.

Two engines (`Engine.name`):

``local``
    A process pool on this machine (`streamer.batch.pool`), one worker per core: the
    default.
``ray``
    Ray actors (`streamer.batch.cluster`): a local Ray cluster started for the run, or an
    existing cluster joined with `Engine.address`. Ray is imported only here, and only
    when asked for.

Both give the same guarantees, kept by one scheduler (`streamer.batch.scheduler`): a file
that raises is that file's `Failure` (its one-line reason) and the others go on; a worker
that dies (killed, out of memory, a decoder that crashes the process) loses no finished
result, and the files it had in hand are analysed again, each alone on a fresh worker: a
file whose worker dies a second time is a `Failure` ("the worker analysing it died
twice"). Ctrl-C raises `KeyboardInterrupt` in the driver; closing the iterator (use
`contextlib.closing`) stops and shuts down what the run started.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from streamer.batch.scheduler import DEPTH, Failure, Lanes, Setup, schedule

__all__ = ["DEPTH", "ENGINES", "LOCAL", "Engine", "Failure", "Setup", "check", "results"]

R = TypeVar("R")

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class Engine:
    """Where a batch runs: `name` one of `ENGINES`; `workers` processes or actors (None: one
    per core of this machine, or of the joined cluster); `address` an existing Ray cluster
    to join (``ray`` only; None: start one here for the run)."""

    name: str = "local"
    workers: int | None = None
    address: str | None = None


LOCAL = Engine()
"""The default: the local pool, one worker per core."""


def check(engine: Engine) -> None:
    """Say now, in one line, what would stop `engine` later: Ray missing, a cluster that
    does not answer, an address without Ray. Cheap for the local engine."""
    if engine.name == "ray":
        from streamer.batch.cluster import check_reachable, import_ray

        import_ray()
        if engine.address is not None:
            check_reachable(engine.address)
    elif engine.address is not None:
        from streamer.errors import StreamerError

        raise StreamerError(f"--address {engine.address} joins a Ray cluster: add --engine ray")


def results(
    paths: Sequence[Path], *, setup: Setup[R], engine: Engine
) -> Generator[tuple[Path, R | Failure], None, None]:
    """Each of `paths` with its result (or `Failure`), as they finish, from workers started
    for this run with `setup` (none when `paths` is empty); see the module doc."""
    if not paths:
        return
    if engine.name == "ray":
        from streamer.batch.cluster import RayActors

        lanes: Lanes[Any, R] = RayActors(
            setup, workers=engine.workers, address=engine.address, files=len(paths)
        )
    else:
        from streamer.batch.pool import LocalPool

        lanes = LocalPool(setup, workers=engine.workers, files=len(paths))
    try:
        yield from schedule(lanes, paths)
    finally:
        lanes.close()
