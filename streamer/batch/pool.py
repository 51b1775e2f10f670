"""The local engine: a process pool on this machine, one worker per core by default.

Workers are spawned, not forked (no fork of a process that holds onnxruntime's threads),
and each sets up once (`streamer.batch.scheduler.Worker`). The pool is one lane: a process
that dies breaks every call in flight (`BrokenProcessPool`), so the scheduler replaces the
whole pool and tries those files again.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Generic, TypeVar

from streamer.batch.scheduler import DEPTH, Broken, Failure, Lanes, Setup, Worker, WorkerDied

R = TypeVar("R")

DIED = "its process ended abruptly (killed, out of memory, or a crash in a decoder)"

_worker: Worker[Any] | None = None  # in each worker process


def _start(setup: Setup[Any]) -> None:
    global _worker
    _worker = Worker(setup)


def _run(path: Path) -> Any:
    assert _worker is not None, "worker not started"
    return _worker.run(path)


class LocalPool(Lanes["Future[Any]", R], Generic[R]):
    """`workers` processes (None: one per core), no more than there are `files`."""

    def __init__(self, setup: Setup[R], *, workers: int | None, files: int) -> None:
        self._setup = setup
        self._workers = max(1, min(workers or os.cpu_count() or 1, files))
        self.count, self.depth = 1, DEPTH * self._workers
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self._workers, mp_context=get_context("spawn"), initializer=_start,
            initargs=(self._setup,),
        )  # fmt: skip

    def submit(self, lane: int, path: Path) -> Future[Any]:
        return self._pool.submit(_run, path)

    def wait(self, handles: list[Future[Any]]) -> list[Future[Any]]:
        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        return list(done)

    def outcome(self, handle: Future[Any]) -> R | Failure | Broken:
        try:
            result: R | Failure | Broken = handle.result()
        except BrokenProcessPool:
            raise WorkerDied(DIED) from None
        return result

    def restart(self, lane: int) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
