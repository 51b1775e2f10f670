"""Who may open a websocket to `streamer listen`, and what a client may send.

Decided during the opening handshake:

- **Address.** The server listens on loopback by default: only this machine can connect.
  Listening on any other address needs a token; `streamer listen` generates and prints
  one when none is given, and `BroadcastServer` refuses to start without it.
- **Token.** With a token set, a client presents it as ``?token=...`` in the URL (what a
  browser page can do) or as ``Authorization: Bearer ...``; anything else gets HTTP 401.
- **Origin.** A browser sends the page's origin; only pages served by this server and
  origins allowed with ``--allow-origin`` may connect (HTTP 403), so a web page the user
  happens to visit cannot read their session. A page served by this server has the origin
  the browser asked for it by: the request's ``Host``, whatever name or address of the
  machine a browser on the LAN used (the bind address, 0.0.0.0, is none of them), and
  localhost at this port. Without a token (loopback only) that ``Host`` must be a loopback
  name too: else a page of a hostile site whose name was made to resolve to 127.0.0.1 (DNS
  rebinding) would pass as the server's own. Clients that are not browsers send no Origin
  and are let in (the token guards them).
- **Capacity.** At most ``max_clients`` connections (HTTP 503 beyond).

Enforced on each connection afterwards (`BroadcastServer`):

- **Size.** A message over ``max_message_bytes`` closes that connection (1009).
- **Rate.** ``max_message_rate`` messages per second on average, in bursts of up to twice
  that; a message beyond gets an error reply and is not acted on.
- **Errors.** After ``max_invalid_messages`` invalid messages (rate excess included) the
  connection is closed (1008): a client that keeps sending garbage is broken or hostile,
  and answering it costs the server what its well-behaved clients need.

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
MAX_MESSAGE_BYTES = 64 * 1024
"""Default size limit of a client message. Client messages are tiny (a feedback is under
100 bytes); the protocol's own limit on text is lower still (`protocol.MAX_CLIENT_MESSAGE`)."""


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
    max_message_bytes: int = MAX_MESSAGE_BYTES
    max_message_rate: float = 10.0
    max_invalid_messages: int = 20

    def __post_init__(self) -> None:
        if self.max_clients < 1 or self.max_message_bytes < 1 or self.max_message_rate <= 0:
            raise ValueError("the most clients, message bytes and message rate must be positive")
        if self.max_invalid_messages < 0:
            raise ValueError("the most invalid messages cannot be negative")

    def own_origin(self, origin: str, *, host_header: str | None, port: int) -> bool:
        """Whether a page of `origin` was served by this server (see the module notes)."""
        scheme, _, netloc = origin.lower().partition("://")
        if scheme not in ("http", "https"):
            return False
        if netloc in {f"{name}:{port}" for name in ("localhost", "127.0.0.1", "[::1]")}:
            return True
        if host_header is None or netloc != host_header.lower():
            return False
        return self.token is not None or is_loopback(urlsplit(f"//{netloc}").hostname or "")

    def refusal(
        self,
        *,
        path: str,
        headers: Iterable[tuple[str, str]],
        port: int,
        clients: int,
    ) -> tuple[HTTPStatus, str] | None:
        """Why a handshake is refused (status and reason), or None to let it in."""
        fields = {name.lower(): value for name, value in headers}
        origin = fields.get("origin")
        if (
            origin is not None
            and origin not in self.origins
            and not self.own_origin(origin, host_header=fields.get("host"), port=port)
        ):
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


class MessageRate:
    """A token bucket: `rate` messages per second on average, bursts of up to 2 x `rate`.

    >>> bucket = MessageRate(1.0)
    >>> [bucket.allow(0.0) for _ in range(3)], bucket.allow(1.0)
    ([True, True, False], True)
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.burst = max(1.0, 2.0 * rate)
        self._tokens = self.burst
        self._at: float | None = None

    def allow(self, now: float) -> bool:
        """Whether a message arriving at `now` (seconds, monotonic) is within the rate."""
        if self._at is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


OPEN_ON_LOOPBACK = AccessPolicy()
"""The default: no token (so loopback only), own origins, 1000 clients, 64 KiB and 10 per
second per client message, 20 invalid messages."""
