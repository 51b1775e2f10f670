"""The Ray engine: the files analysed by Ray actors, on a local Ray cluster started for the
run or on an existing cluster joined with ``--address``.

Why actors rather than tasks: an actor is a worker that sets up once (the models, a few
seconds with librosa's first calls) and then takes file after file, which tasks would do
only through a per-process cache that Ray is free to spread over more processes than
asked; the actors are exactly ``--workers`` (one CPU each, spread over the nodes), and each
is a lane of the shared scheduler (`streamer.batch.scheduler`), so a dead actor costs what
a dead pool costs locally: its files are analysed again, each alone on a new actor, and a
second death is the file's `Failure`. Results stream back with `ray.wait`; the driver
alone writes.

What the workers get is a path: every node must see the audio (and, for `streamer tag
--library`, the catalogue) at the same path as the driver, on shared storage. Ray's own
logs stay out of the user's terminal (`log_to_driver=False`, its log level, and
``RAY_DEDUP_LOGS_SKIP_REGEX`` for the raylet's notes on dead workers, which the run
reports itself); a cluster that cannot be started or reached is one line.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from types import ModuleType
from typing import Any, Generic, TypeVar

from streamer.batch.scheduler import DEPTH, Broken, Failure, Lanes, Setup, Worker, WorkerDied
from streamer.errors import StreamerError

R = TypeVar("R")

DEFAULT_PORT = 6379  # `ray start --head`'s
CONNECT_SECONDS = 5.0  # to find a cluster's port open, before Ray's own minute of retries
WAIT_SECONDS = 1.0  # ray.wait in slices, so that Ctrl-C is handled at once
DIED = "its Ray actor died (killed, out of memory, or a crash in a decoder)"
ADVICE = "is the same streamer installed on every node of the cluster?"


def last_line(error: Exception) -> str:
    """What a Ray error comes to (the last line of its traceback, say)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def import_ray() -> ModuleType:
    """Ray, or the one line that says how to install it."""
    # Read when Ray is imported: the raylet's notes on dead workers are not printed (the
    # run says which files they had), whatever else Ray would print.
    os.environ.setdefault("RAY_DEDUP_LOGS_SKIP_REGEX", ".")
    try:
        import ray
    except ImportError:
        raise StreamerError("--engine ray needs Ray: pip install 'streamer[cluster]'") from None
    return ray


def check_reachable(address: str) -> None:
    """A quick look at a cluster's address (``HOST[:PORT]``, ``ray://HOST:PORT``), before
    `RayActors` joins it: one line at once when nothing answers there, not Ray's retries
    of a minute or more. ``auto`` (the cluster `ray start` made on this machine) is left
    to Ray."""
    if address == "auto":
        return
    host, _, port = address.split("://")[-1].partition(":")
    try:
        socket.create_connection((host, int(port or DEFAULT_PORT)), CONNECT_SECONDS).close()
    except (OSError, ValueError) as error:
        why = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise StreamerError(
            f"--address {address}: no Ray cluster answers there ({why}): start one with "
            "`ray start --head` on that machine and give the address it prints (HOST:PORT)"
        ) from None


class RayActors(Lanes[Any, R], Generic[R]):
    """`workers` actors (None: one per CPU of the cluster; no more than `files`) on the
    cluster at `address` (None: a local one started now, one CPU per worker). A Ray already
    connected in this process (a notebook, a test) is used as it is, and left connected."""

    def __init__(
        self, setup: Setup[R], *, workers: int | None, address: str | None, files: int
    ) -> None:
        self._ray = ray = import_ray()
        self._connected = False
        if not ray.is_initialized():
            self._connect(address=address, cpus=min(workers or os.cpu_count() or 1, files))
        cpus = int(ray.cluster_resources().get("CPU", 0))
        self.count, self.depth = max(1, min(workers or cpus, files)), DEPTH
        if self.count > cpus:  # an actor would wait for a CPU for ever
            self.close()
            raise StreamerError(
                f"--workers {workers}: the Ray cluster has {cpus} CPUs: give at most {cpus}, "
                "or add nodes (`ray start --address ...` on them)"
            )
        self._actor_class = ray.remote(num_cpus=1, max_restarts=0)(Worker)
        self._setup = setup
        self._actors = [self._new_actor() for _ in range(self.count)]

    def _connect(self, *, address: str | None, cpus: int) -> None:
        ray = self._ray
        quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
        try:
            if address is None:
                ray.init(address="local", num_cpus=cpus, include_dashboard=False, **quiet)
            else:
                ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as error:
            where = "start a local Ray cluster" if address is None else f"join {address}"
            raise StreamerError(
                f"--engine ray: could not {where} ({last_line(error)}): check `ray status`"
                + ("" if address is None else " on that cluster, or the address")
            ) from None
        self._connected = True

    def _new_actor(self) -> Any:
        return self._actor_class.options(scheduling_strategy="SPREAD").remote(self._setup)

    def submit(self, lane: int, path: Path) -> Any:
        return self._actors[lane].run.remote(path)

    def wait(self, handles: list[Any]) -> list[Any]:
        ready: list[Any] = []
        while not ready:
            ready, _ = self._ray.wait(handles, num_returns=1, timeout=WAIT_SECONDS)
        return ready

    def outcome(self, handle: Any) -> R | Failure | Broken:
        try:
            result: R | Failure | Broken = self._ray.get(handle)
        except self._ray.exceptions.RayActorError as error:
            if error.actor_init_failed:  # not one file's fault: every actor would fail so
                return Broken(f"the Ray workers could not start ({last_line(error)}): {ADVICE}")
            raise WorkerDied(DIED) from None
        except self._ray.exceptions.RayError as error:  # its result lost with a node, say
            raise WorkerDied(f"Ray lost its result ({type(error).__name__})") from None
        return result

    def restart(self, lane: int) -> None:
        self._ray.kill(self._actors[lane], no_restart=True)
        self._actors[lane] = self._new_actor()

    def close(self) -> None:
        for actor in getattr(self, "_actors", ()):
            self._ray.kill(actor, no_restart=True)  # and the files it had in hand
        if self._connected:
            self._ray.shutdown()
            self._connected = False
