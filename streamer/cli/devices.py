"""`streamer devices`: the inputs PortAudio sees."""

from __future__ import annotations

import argparse

from streamer.cli.options import (
    Commands,
)
from streamer.errors import StreamerError


def add_parsers(commands: Commands) -> None:
    devices = commands.add_parser(
        "devices",
        help="list audio input devices with their rates and channels",
        description="List the audio inputs PortAudio sees. Use the index or a part of the "
        "name with `streamer listen --device`. The default input is marked with *.",
    )
    devices.set_defaults(run=run_devices)


def run_devices(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from streamer.capture.device import NO_INPUT_DEVICE, list_input_devices

    devices = list_input_devices()
    if not devices:
        raise StreamerError(NO_INPUT_DEVICE)
    table = Table(title="Audio inputs")
    for column in ("", "index", "name", "host API", "channels", "default rate"):
        table.add_column(column, justify="right" if column in ("index", "channels") else "left")
    for device in devices:
        table.add_row(
            "*" if device.is_default else "",
            str(device.index),
            device.name,
            device.host_api,
            str(device.channels),
            f"{device.default_rate:g} Hz",
        )
    Console().print(table)
    return 0
