"""The scheduler both engines share: which file goes to which worker, and what a dead worker
costs.

An engine is a set of `Lanes`: the units that die together (the whole process pool, whose
one dead process breaks every call in flight; one Ray actor). The scheduler keeps up to
`DEPTH` files per worker in flight, and when a lane dies it starts a fresh one; the files
that lane had in hand are suspects, since any of them may have killed it. Each suspect is
analysed again alone on a lane (nothing else in flight there), so a second death is that
file's own: it is then a `Failure`, and the innocent ones come back as usual. Results
that were finished before a death are never lost, whatever the engine.
"""

from __future__ import annotations

import signal
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from streamer.errors import StreamerError, failure_reason

DEPTH = 2
"""Files in flight per worker: one being analysed and one waiting, so that a worker never
waits for the driver, and Ctrl-C leaves little started work behind."""

R = TypeVar("R")
H = TypeVar("H")

Setup = Callable[[], Callable[[Path], R]]
"""What a worker runs: called once when the worker starts, it returns the per-file function.
It is pickled to every worker, so it must be a module-level class or function with
picklable fields (paths, options), never loaded models."""


@dataclass(frozen=True)
class Failure:
    """A file that could not be analysed, and why (one line)."""

    reason: str


@dataclass(frozen=True)
class Broken:
    """A worker whose set-up failed (a model that does not load): the run cannot go on."""

    reason: str


class WorkerDied(Exception):
    """The lane's worker ended while it had the file (its message: how, in a few words)."""


class Worker(Generic[R]):
    """What runs in each worker process: the set-up once, then one file at a time.

    Ctrl-C is the driver's alone (the driver keeps what finished and stops the rest), and
    each worker uses one thread: there is a worker per core.
    """

    def __init__(self, setup: Setup[R]) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
        self._analyse: Callable[[Path], R] | None = None
        self._broken: Broken | None = None
        try:
            self._analyse = setup()
        except Exception as error:  # said once by the driver, not once per file
            detail = str(error) if isinstance(error, StreamerError) else repr(error)
            self._broken = Broken(f"the workers could not start: {detail}")

    def run(self, path: Path) -> R | Failure | Broken:
        if self._analyse is None:
            assert self._broken is not None
            return self._broken
        try:
            return self._analyse(path)
        except Exception as error:  # a decoder crash on one file must not end the run
            return Failure(failure_reason(error, path))


class Lanes(ABC, Generic[H, R]):
    """An engine's workers as the scheduler sees them: `count` lanes, each taking `depth`
    files at once, that fail alone; `H` is the engine's handle for a file in flight."""

    count: int
    depth: int

    @abstractmethod
    def submit(self, lane: int, path: Path) -> H:
        """Send `path` to the worker(s) of `lane`."""

    @abstractmethod
    def wait(self, handles: list[H]) -> list[H]:
        """Those of `handles` that are done: at least one (blocks until then)."""

    @abstractmethod
    def outcome(self, handle: H) -> R | Failure | Broken:
        """What the worker returned for a done `handle`; `WorkerDied` if it died first."""

    @abstractmethod
    def restart(self, lane: int) -> None:
        """Replace the dead worker(s) of `lane` with fresh ones."""

    @abstractmethod
    def close(self) -> None:
        """Stop what is in flight and shut down what this run started."""


def schedule(lanes: Lanes[H, R], paths: Sequence[Path]) -> Iterator[tuple[Path, R | Failure]]:
    """Each of `paths` with its result or `Failure`, as they finish (module doc). A worker
    that could not start raises `StreamerError`."""
    fresh = deque(paths)
    suspects: deque[Path] = deque()
    retried: set[Path] = set()
    running: dict[H, tuple[int, int, Path]] = {}  # handle -> lane, its generation, file
    generation = [0] * lanes.count  # a lane's generation changes when it is restarted
    load = [0] * lanes.count  # files in flight on the lane's current generation
    alone: set[int] = set()  # lanes analysing a suspect
    while fresh or suspects or running:
        for lane in range(lanes.count):
            while lane not in alone and load[lane] < lanes.depth and (fresh or suspects):
                if suspects and load[lane]:
                    break  # a suspect waits for an idle lane, and the lane drains for it
                if suspects:
                    path = suspects.popleft()
                    alone.add(lane)
                else:
                    path = fresh.popleft()
                running[lanes.submit(lane, path)] = (lane, generation[lane], path)
                load[lane] += 1
        done = set(lanes.wait(list(running)))
        for handle in [handle for handle in running if handle in done]:  # in the order sent
            lane, born, path = running.pop(handle)
            current = born == generation[lane]
            if current:
                load[lane] -= 1
                alone.discard(lane)
            try:
                result = lanes.outcome(handle)
            except WorkerDied as death:
                if current:  # the first news of this death: a fresh lane
                    lanes.restart(lane)
                    generation[lane] += 1
                    load[lane] = 0
                if path in retried:
                    yield path, Failure(f"the worker analysing it died twice: {death}")
                else:
                    retried.add(path)
                    suspects.append(path)
                continue
            if isinstance(result, Broken):
                raise StreamerError(result.reason)
            yield path, result
