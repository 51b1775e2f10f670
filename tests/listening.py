"""Helpers for the end-to-end `streamer listen` tests: start it, follow it over its websocket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed

NO_PULSE = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}


def start_listen(model: Path, env: dict[str, str], *extra: str) -> tuple[subprocess.Popen, str]:
    """Start `streamer listen --no-view` on a free port; return it and its websocket URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "streamer", "listen", "--model", str(model), "--no-view",
         "--port", "0", *extra],
        env={**NO_PULSE, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = process.stderr.readline()
    assert "websocket on ws://" in line, line + process.stderr.read()
    return process, line.split("websocket on ")[1].strip()


def receive_for(client: Any, seconds: float) -> list[dict]:
    """Every message that arrives within `seconds` (fewer if the server goes quiet or
    closes the connection)."""
    received, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            received.append(json.loads(client.recv(timeout=max(0.01, deadline - time.monotonic()))))
        except (TimeoutError, ConnectionClosed):
            break
    return received


def receive_until(client: Any, wanted: Callable[[dict], bool], timeout: float = 30.0) -> list[dict]:
    """Messages up to and including the first that is `wanted`; fails after `timeout` s."""
    received, deadline = [], time.monotonic() + timeout
    while not received or not wanted(received[-1]):
        left = deadline - time.monotonic()
        assert left > 0, f"nothing wanted came in {timeout} s; the last: {received[-3:]}"
        received.append(json.loads(client.recv(timeout=left)))
    return received
