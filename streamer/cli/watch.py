"""`streamer watch`: the view of a running `streamer listen`, over its websocket."""

from __future__ import annotations

import argparse
import json
from contextlib import nullcontext, suppress

from streamer.cli.options import (
    Commands,
    positive_float,
    websocket_url,
)
from streamer.errors import StreamerError
from streamer.outlets.server import DEFAULT_HOST, DEFAULT_PORT


def add_parsers(commands: Commands) -> None:
    watch = commands.add_parser(
        "watch",
        help="follow a running `streamer listen` or `monitor` over its websocket",
        description="The remote view: connect to a streamer websocket and show the same "
        "view as `streamer listen`. Exit status: 0 when --duration ran out, 1 when the "
        "session stopped (or the connection was lost), 2 when it cannot connect.",
        epilog="example: streamer watch ws://127.0.0.1:8765",
    )
    watch.add_argument(
        "url", nargs="?", type=websocket_url, default=f"ws://{DEFAULT_HOST}:{DEFAULT_PORT}",
        help="the websocket of a `streamer listen` (default: %(default)s)",
    )  # fmt: skip
    watch.add_argument(
        "--no-view", action="store_true", help="print the received messages as JSON lines"
    )
    watch.add_argument(
        "--duration", type=positive_float, metavar="SECONDS", help="stop after this many seconds"
    )
    watch.set_defaults(run=run_watch)


def run_watch(args: argparse.Namespace) -> int:
    import asyncio

    from rich.live import Live
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, WebSocketException

    from streamer.outlets.view import GenreView, MonitorView
    from streamer.progress import say

    view: GenreView | MonitorView = GenreView(title=f"streamer watch: {args.url}")

    def show(text: str | bytes) -> None:
        """Take one received message; a hello of `streamer monitor` turns the view into
        its table of streams."""
        nonlocal view
        try:
            message = json.loads(text)
        except ValueError:
            raise StreamerError(
                f"{args.url} sent a message that is not JSON: give the websocket of a "
                "`streamer listen` or `streamer monitor`"
            ) from None
        if args.no_view:
            print(json.dumps(message), flush=True)
        if message.get("type") == "hello" and message.get("streams") is not None:
            view = MonitorView(title=f"streamer watch: {args.url}")
        view.handle(message)

    async def follow() -> str:
        """Connect, then show the messages until the connection ends; say how it ended."""
        try:
            connection = await connect(args.url)
        except (OSError, WebSocketException) as error:
            raise StreamerError(
                f"cannot follow {args.url} ({error}): is `streamer listen` running there? "
                "check the host and --port"
            ) from None
        async with connection:
            with suppress(ConnectionClosed):  # closed without a close frame: said below
                show(await connection.recv())  # the hello says which view it takes
                drawn = nullcontext() if args.no_view else Live(view, refresh_per_second=4)
                with drawn:
                    async for text in connection:
                        show(text)
        code, reason = connection.close_code, connection.close_reason
        return f"{args.url} stopped: the connection closed ({code}{' ' + reason if reason else ''})"

    async def main() -> str | None:
        try:
            return await asyncio.wait_for(follow(), timeout=args.duration)
        except TimeoutError:  # --duration ran out
            return None

    ended = asyncio.run(main())
    if ended is None:
        return 0
    say(f"streamer: {ended}")
    return 1
