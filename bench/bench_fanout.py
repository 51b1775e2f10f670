"""Websocket fan-out: many loopback clients, every update to every client, delivery delay.

The `BroadcastServer` runs in this process on its `ServerThread`, as in `streamer listen`;
the clients run in child processes, each a selector over plain sockets driving websockets'
sans-I/O protocol (`LightClient`). Once all are connected, updates are published at a
steady pace; each client stamps every update it receives with `time.monotonic()`
(CLOCK_MONOTONIC: one clock for all processes on Linux), and the delay is receive time
minus the moment `publish` was called. The client processes share the two cores with the
server, so the delays still include the time they take to read 500 sockets; an asyncio
client per connection (websockets' own) cost about 100 us per message, which on 2 cores
made the clients, not the server, the bottleneck. The same run with 1 client is the
baseline.

    .venv/bin/python bench/bench_fanout.py [--clients 500] [--updates 40] [--interval 0.1]
        [--client-processes 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import re
import resource
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import WebSocketURI, parse_uri

from streamer.outlets import protocol
from streamer.outlets.server import BroadcastServer, ServerThread

GOAL_P99_MS = 50.0
LABELS = [f"genre{i}" for i in range(10)]
CONCURRENT_HANDSHAKES = 50  # below the listen backlog (100), so no SYN is dropped
OPEN_TIMEOUT = 30.0
STEP_TIMEOUT = 120.0  # any one wait between the two processes
UPDATE_TIME = re.compile(rb'\{"type":"update","time":([0-9.]+),')
"""An update's stream time, from the compact JSON `protocol.encode` writes."""


def raise_file_limit(needed: int) -> None:
    """Raise the soft open-file limit to `needed` (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def update(index: int, rng: np.random.Generator) -> dict[str, Any]:
    """A realistic update: ten labels, stream time 0.5 s per hop (unique per index)."""
    probabilities = rng.dirichlet(np.ones(len(LABELS)))
    top = int(np.argmax(probabilities))
    return protocol.update_message(
        time=0.5 * (index + 1),
        probabilities=dict(zip(LABELS, probabilities.tolist(), strict=True)),
        top=LABELS[top],
        confidence=float(probabilities[top]),
        state="music",
        level_dbfs=-18.0,
        segment_start=0.0,
    )


def hello() -> dict[str, Any]:
    return protocol.hello_message(
        labels=LABELS,
        model={"name": "bench", "sha256": "0" * 64},
        features={},
        hop_seconds=0.5,
        window_seconds=3.0,
    )


# --- the client process ------------------------------------------------------------------


class LightClient:
    """A websocket client with as little overhead as Python allows: websockets' sans-I/O
    protocol core on a plain socket, driven by one selector for all clients. It costs a
    fraction of an asyncio connection per message, so the delays measure the server and
    not the clients' event loop."""

    def __init__(self, uri: WebSocketURI) -> None:
        self.protocol = ClientProtocol(uri, max_size=None)
        self.socket = socket.create_connection((uri.host, uri.port), timeout=OPEN_TIMEOUT)
        self.socket.setblocking(False)
        self.protocol.send_request(self.protocol.connect())
        self.flush()
        self.greeted = False
        self.times: dict[float, float] = {}

    def flush(self) -> None:
        """Send what the protocol has to say (the handshake, pongs, the close)."""
        for data in self.protocol.data_to_send():
            if data:
                self.socket.setblocking(True)
                self.socket.sendall(data)
                self.socket.setblocking(False)

    def readable(self, at: float) -> None:
        """Read what arrived at `at` (time.monotonic) and stamp the updates in it."""
        data = self.socket.recv(1 << 16)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        for event in self.protocol.events_received():
            if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                stamp = UPDATE_TIME.match(event.data)  # cheaper than parsing all of it
                if stamp is not None:
                    self.times[float(stamp[1])] = at
                elif json.loads(event.data)["type"] == "hello":
                    self.greeted = True
        if self.protocol.handshake_exc is not None:
            raise self.protocol.handshake_exc
        self.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.protocol.send_close()
            self.flush()
        self.socket.close()


def run_clients(url: str, count: int, updates: int, pipe: Connection) -> None:
    """Child process entry point: connect, receive, report the receive times."""
    raise_file_limit(count + 256)
    clients: list[LightClient] = []
    try:
        selector = selectors.DefaultSelector()
        started = time.monotonic()
        uri = parse_uri(url)
        while len(clients) < count:  # in batches, below the listen backlog
            size = min(CONCURRENT_HANDSHAKES, count - len(clients))
            batch = [LightClient(uri) for _ in range(size)]
            for client in batch:
                selector.register(client.socket, selectors.EVENT_READ, client)
            clients += batch
            if not serve(selector, batch, until=lambda c: c.greeted, timeout=OPEN_TIMEOUT):
                raise RuntimeError(f"clients not greeted within {OPEN_TIMEOUT:g} s")
        pipe.send(("ready", len(clients), time.monotonic() - started, []))
        cpu = time.process_time()
        selector.register(pipe, selectors.EVENT_READ, None)  # the parent: "published"
        serve(selector, clients, until=lambda c: len(c.times) == updates, timeout=STEP_TIMEOUT)
        cpu = time.process_time() - cpu
        pipe.send(("received", [c.times for c in clients], cpu))
    except Exception as error:  # reported to the parent, which raises it
        pipe.send(("error", repr(error)))
    finally:
        for client in clients:
            client.close()
        pipe.close()


def serve(
    selector: selectors.BaseSelector,
    clients: list[LightClient],
    *,
    until: Callable[[LightClient], bool],
    timeout: float,
) -> bool:
    """Dispatch readable sockets until `until` holds for every client (True) or time is up.
    Once the parent says it has published, stragglers get 10 s more."""
    deadline = time.monotonic() + timeout
    while not all(until(c) for c in clients):
        if time.monotonic() > deadline:
            return False
        for key, _ in selector.select(timeout=0.5):
            at = time.monotonic()
            if key.data is None:
                key.fileobj.recv()
                selector.unregister(key.fileobj)
                deadline = min(deadline, at + 10.0)
            else:
                key.data.readable(at)
    return True


# --- the server side ---------------------------------------------------------------------


@dataclass
class Fanout:
    clients: int  # connected, as the server counted them when publishing began
    connect_seconds: float
    errors: list[str]
    updates: int
    complete_clients: int  # clients that received every update
    missing: int  # (client, update) pairs never received
    delays: np.ndarray  # seconds, every (client, update) received
    last_delays: np.ndarray  # per update: delay of the last client to get it
    dropped: int
    disconnected_slow: int
    server_cpu: float  # seconds, this process, from the first publish to the clients' report
    client_cpu: float  # seconds, the client process, from ready to the last update received

    def ms(self, q: float, values: np.ndarray | None = None) -> float:
        values = self.delays if values is None else values
        return 1e3 * float(np.percentile(values, q)) if values.size else float("nan")


def expect(pipe: Connection, kind: str) -> tuple[Any, ...]:
    """The child's next report, which must be `kind` (its error is raised here)."""
    if not pipe.poll(STEP_TIMEOUT):
        raise RuntimeError(f"no {kind!r} report from the client process in {STEP_TIMEOUT:g} s")
    report = pipe.recv()
    if report[0] != kind:
        raise RuntimeError(f"the client process failed: {report[1]}")
    return report


def fan_out(count: int, updates: int, interval: float, *, processes: int = 1) -> Fanout:
    """One session: a server here, `count` clients spread over `processes` child processes,
    `updates` published."""
    raise_file_limit(count + 256)
    server = BroadcastServer(port=0, hello=hello)
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    rng = np.random.default_rng(0)
    messages = [update(i, rng) for i in range(updates)]
    published: dict[float, float] = {}
    shares = [len(part) for part in np.array_split(np.arange(count), max(1, processes))]
    children: list[tuple[Any, Connection]] = []
    with ServerThread(server):
        try:
            for share in shares:
                here, there = context.Pipe()
                child = context.Process(
                    target=run_clients, args=(server.url, share, updates, there)
                )
                child.daemon = True
                child.start()
                there.close()
                children.append((child, here))
            readies = [expect(here, "ready") for _, here in children]
            connected = sum(r[1] for r in readies)
            connect_seconds = max(r[2] for r in readies)
            errors = sorted({e for r in readies for e in r[3]})
            deadline = time.monotonic() + 10
            while server.clients < connected and time.monotonic() < deadline:
                time.sleep(0.01)
            counted = server.clients
            server_cpu = time.process_time()
            due = time.monotonic() + interval
            for message in messages:
                time.sleep(max(0.0, due - time.monotonic()))
                published[message["time"]] = time.monotonic()
                server.publish(message)
                due += interval
            for _, here in children:
                here.send("published")
            reports = [expect(here, "received") for _, here in children]
            server_cpu = time.process_time() - server_cpu
            received = [times for report in reports for times in report[1]]
            client_cpu = sum(report[2] for report in reports)
            dropped, slow = server.dropped_messages, server.disconnected_slow
        finally:
            for child, here in children:
                child.join(timeout=30)
                if child.is_alive():
                    child.terminate()
                    child.join(timeout=10)
                here.close()
    delays = [at - published[t] for times in received for t, at in times.items()]
    last = [
        max(times[t] for times in received if t in times) - published[t]
        for t in published
        if any(t in times for times in received)
    ]
    return Fanout(
        clients=counted,
        connect_seconds=connect_seconds,
        errors=errors,
        updates=updates,
        complete_clients=sum(len(times) == updates for times in received),
        missing=sum(updates - len(times) for times in received) + updates * (count - connected),
        delays=np.array(delays),
        last_delays=np.array(last),
        dropped=dropped,
        disconnected_slow=slow,
        server_cpu=server_cpu,
        client_cpu=client_cpu,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--updates", type=int, default=40, help="updates to publish")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between updates")
    parser.add_argument(
        "--client-processes", type=int, default=1,
        help="spread the clients over this many child processes (default: %(default)s)",
    )  # fmt: skip
    args = parser.parse_args()

    baseline = fan_out(1, args.updates, args.interval)
    many = fan_out(args.clients, args.updates, args.interval, processes=args.client_processes)

    print(
        f"{args.updates} updates published every {args.interval:g} s; loopback; server here, "
        f"clients in {args.client_processes} child process(es); "
        "delay = receive - publish (CLOCK_MONOTONIC)"
    )
    for name, run in (("1 client (baseline)", baseline), (f"{args.clients} clients", many)):
        print(f"{name}:")
        print(
            f"   connected {run.clients} (server count) in {run.connect_seconds:.2f} s"
            + (f"; connect errors: {', '.join(run.errors)}" if run.errors else "")
        )
        print(
            f"   every update to every client: {'yes' if run.missing == 0 else 'NO'} "
            f"({run.complete_clients}/{run.clients} clients complete, {run.missing} missing; "
            f"server dropped {run.dropped}, disconnected {run.disconnected_slow} as slow)"
        )
        print(
            f"   delivery delay: p50 {run.ms(50):6.2f} ms   p99 {run.ms(99):6.2f} ms   "
            f"max {run.ms(100):6.2f} ms"
        )
        print(
            f"   last client of each update: p50 {run.ms(50, run.last_delays):6.2f} ms   "
            f"p99 {run.ms(99, run.last_delays):6.2f} ms"
        )
        sent = max(1, run.clients * run.updates)
        print(
            f"   CPU while publishing: server process {run.server_cpu:.2f} s "
            f"({1e6 * run.server_cpu / sent:.0f} us per message sent), client process "
            f"{run.client_cpu:.2f} s ({1e6 * run.client_cpu / sent:.0f} us per message)"
        )
    print(
        f"ratio {args.clients} clients / 1 client: p50 {many.ms(50) / baseline.ms(50):.1f}x   "
        f"p99 {many.ms(99) / baseline.ms(99):.1f}x"
    )
    goal = many.ms(99) < GOAL_P99_MS and many.missing == 0
    print(
        f"goal: every client gets every update, p99 < {GOAL_P99_MS:g} ms with "
        f"{args.clients} clients: {'met' if goal else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
