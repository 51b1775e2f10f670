"""The browser overlay: a page served on the websocket's own port, for a second screen or a
broadcast's browser source.

Three static files in this folder, no build step: ``index.html``, ``overlay.css`` and
``overlay.js``, a client of the protocol that reconnects by itself. They are read once,
when the server is made; a request can only name one of them, so nothing a client sends
makes the server read or write a file. The page gets the genre colours of
`streamer.offline.plot` (the same genre has the same colour on screen and in ``tag --plot``).

Every answer carries a Content-Security-Policy that lets the page load only its own
script and style and connect only back to this server.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from http import HTTPStatus
from importlib import resources
from urllib.parse import urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Response

from streamer.outlets.palette import PALETTE, SILENCE_COLOR

ROUTES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/overlay.css": ("overlay.css", "text/css; charset=utf-8"),
    "/overlay.js": ("overlay.js", "text/javascript; charset=utf-8"),
}
SECURITY_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),  # the page's URL may hold the token
    ("Cache-Control", "no-cache"),
)


@dataclass(frozen=True)
class OverlayFiles:
    """The overlay's files by URL path, ready to send."""

    files: dict[str, tuple[bytes, str]]

    @classmethod
    def load(cls) -> OverlayFiles:
        """Read the files of this package, with the palette filled into the page."""
        folder = resources.files(__package__)
        files = {}
        for path, (name, content_type) in ROUTES.items():
            text = folder.joinpath(name).read_text(encoding="utf-8")
            if name == "index.html":
                text = text.replace("__PALETTE__", html.escape(json.dumps(list(PALETTE))))
                text = text.replace("__SILENCE__", SILENCE_COLOR)
            files[path] = (text.encode(), content_type)
        return cls(files)

    def respond(self, target: str) -> Response:
        """The answer to a plain HTTP GET of `target` (path and query): a file or 404."""
        found = self.files.get(urlsplit(target).path)
        if found is None:
            status = HTTPStatus.NOT_FOUND
            body, content_type = b"not found: the overlay is at /\n", "text/plain; charset=utf-8"
        else:
            status = HTTPStatus.OK
            body, content_type = found
        headers = Headers(
            [
                ("Content-Type", content_type),
                ("Content-Length", str(len(body))),
                ("Connection", "close"),
                *SECURITY_HEADERS,
            ]
        )
        return Response(status.value, status.phrase, headers, body)
