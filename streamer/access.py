"""Who may open a websocket to `streamer listen`, decided during the opening handshake.

- **Address.** The server listens on loopback by default: only this machine can connect.
  Listening on any other address needs a token; `streamer listen` generates and prints
  one when none is given, and `BroadcastServer` refuses to start without it.
- **Token.** With a token set, a client presents it as ``?token=...`` in the URL (what a
  browser page can do) or as ``Authorization: Bearer ...``; anything else gets HTTP 401.
- **Origin.** A browser sends the page's origin; only pages served by this server (its
  own host and port, and localhost) and origins allowed with ``--allow-origin`` may
  connect (HTTP 403), so a web page the user happens to visit cannot read their session.
  Clients that are not browsers send no Origin and are let in (the token guards them).
- **Capacity.** At most ``max_clients`` connections (HTTP 503 beyond).

docs/protocol.md describes this for client authors.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and "localhost"."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A random token that is safe in a URL (144 bits)."""
    return secrets.token_urlsafe(18)


@dataclass(frozen=True)
class AccessPolicy:
    """The rules above; `refusal` applies them to one handshake."""

    token: str | None = None
    origins: frozenset[str] = frozenset()
    max_clients: int = 1000

    def own_origins(self, host: str, port: int) -> set[str]:
        """Origins of pages this server would serve: its own address and localhost."""
        hosts = {host, "localhost", "127.0.0.1", "[::1]"}
        return {f"{scheme}://{name}:{port}" for scheme in ("http", "https") for name in hosts}

    def refusal(
        self,
        *,
        path: str,
        headers: Iterable[tuple[str, str]],
        host: str,
        port: int,
        clients: int,
    ) -> tuple[HTTPStatus, str] | None:
        """Why a handshake is refused (status and reason), or None to let it in."""
        fields = {name.lower(): value for name, value in headers}
        origin = fields.get("origin")
        if origin is not None and origin not in self.own_origins(host, port) | self.origins:
            return HTTPStatus.FORBIDDEN, f"origin {origin} is not allowed (see --allow-origin)"
        if self.token is not None and not self._has_token(path, fields.get("authorization")):
            return HTTPStatus.UNAUTHORIZED, "missing or wrong token: add ?token=... to the URL"
        if clients >= self.max_clients:
            return HTTPStatus.SERVICE_UNAVAILABLE, f"too many clients (at most {self.max_clients})"
        return None

    def _has_token(self, path: str, authorization: str | None) -> bool:
        assert self.token is not None
        offered = parse_qs(urlsplit(path).query).get("token", [])
        if authorization is not None and authorization.startswith("Bearer "):
            offered.append(authorization.removeprefix("Bearer ").strip())
        expected = self.token.encode()
        return any(hmac.compare_digest(candidate.encode(), expected) for candidate in offered)


OPEN_ON_LOOPBACK = AccessPolicy()
"""The default: no token (so loopback only), own origins, 1000 clients."""
