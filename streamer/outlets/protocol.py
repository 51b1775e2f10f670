"""The websocket protocol, version 1: JSON text messages, each with a ``"type"``.

The server sends ``hello`` once on connecting, then ``update`` (every hop), ``segment``
(when a segment closes), ``status`` (periodically) and replies (``pong``, ``error``) to
what the client sent. docs/protocol.md describes it for client authors; the JSON Schemas in
``streamer/outlets/schemas/`` are the exact definition and are what `validate` checks.

The builders take plain keyword arguments and turn numpy scalars into JSON numbers, rounded
to what a display needs (times to the millisecond, probabilities to 1e-4), which keeps an
update of a few hundred bytes.

Examples
--------
>>> message = segment_message(index=0, start=0, end=12.5, genre="jazz", state="music",
...                           confidence=0.81234)
>>> message["confidence"]
0.8123
>>> encode(error_message("bad"))
'{"type":"error","message":"bad"}'
>>> parse_client_message('{"type": "ping"}')
{'type': 'ping'}
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from typing import Any

from streamer import __version__

PROTOCOL_VERSION = 1
SERVER_TYPES = ("hello", "update", "segment", "status", "recommendations", "error", "pong")
CLIENT_TYPES = ("ping", "feedback", "subscribe")
FEEDBACK_ACTIONS = ("like", "skip", "played")
MAX_CLIENT_MESSAGE = 4096
"""Longest client message accepted, in characters: client messages are small commands."""

SHOWN_TAG_MIN = 0.4
"""Least probability of a descriptor tag that a display shows: the tags are independent
sigmoids, and below this musicnn is as likely wrong as right about most of them."""
SHOWN_TAG_LIMIT = 3
"""Most descriptor tags a display shows at once, so they stay readable beside the genre."""

_TIME_DECIMALS = 3
_VALUE_DECIMALS = 4


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema of message type `name` (a fresh copy: callers may change it)."""
    if name not in SERVER_TYPES + CLIENT_TYPES:
        raise ValueError(f"no schema for message type {name!r}")
    path = resources.files("streamer.outlets") / "schemas" / f"{name}.schema.json"
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


@functools.cache
def _validator(name: str) -> Any:
    """A draft 2020-12 validator for `name` that resolves references to the other schemas."""
    import jsonschema
    from referencing import Registry, Resource

    schemas = [schema(other) for other in SERVER_TYPES + CLIENT_TYPES]
    registry = Registry().with_resources(
        (other["$id"], Resource.from_contents(other)) for other in schemas
    )
    return jsonschema.Draft202012Validator(schema(name), registry=registry)


def validate(message: Any) -> None:
    """Raise `ValueError` naming the first problem if `message` breaks its type's schema.

    Needs the ``jsonschema`` package, which the server itself does not: it is for tests and
    for clients that want to check what they receive.
    """
    kind = message.get("type") if isinstance(message, dict) else None
    if kind not in SERVER_TYPES + CLIENT_TYPES:
        raise ValueError(f"not a protocol message: unknown or missing type {kind!r}")
    error = next(iter(_validator(kind).iter_errors(message)), None)
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "the message"
        raise ValueError(f"invalid {kind} message: {where}: {error.message}")


def encode(message: Mapping[str, Any]) -> str:
    """Compact JSON text; NaN and infinities are refused, as JSON has no such numbers."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


def _seconds(value: float) -> float:
    return round(float(value), _TIME_DECIMALS)


def _fraction(value: float) -> float:
    return round(float(value), _VALUE_DECIMALS)


def _label(value: str | None) -> str | None:
    return None if value is None else str(value)


def hello_message(
    *,
    labels: Iterable[str],
    model: Mapping[str, Any],
    features: Mapping[str, Any],
    hop_seconds: float,
    window_seconds: float,
    segment_lag_seconds: float,
    state: Mapping[str, Any] | None = None,
    segments: Iterable[Mapping[str, Any]] = (),
    streams: Iterable[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The first message of a connection.

    `model` holds ``name`` and ``sha256`` and any provenance; `features` is
    ``FeatureSpec.to_dict()``. `state` (the latest update) and `segments` (recent closed
    segments, oldest first) are filled in by the server, which keeps them. ``shown_tags``
    is the rule of `confident_tags`, so that a client in another language (the overlay)
    shows the same tags as the terminal view. `segment_lag_seconds`: how long after its
    end a segment is decided and sent. `streams` (`streamer monitor`): each stream's
    ``name``, ``source`` and latest update as ``state``; the server fills in the states.
    """
    return {
        "type": "hello",
        "protocol": PROTOCOL_VERSION,
        "server": f"streamer {__version__}",
        "labels": [str(label) for label in labels],
        "model": dict(model),
        "features": dict(features),
        "hop_seconds": float(hop_seconds),
        "window_seconds": float(window_seconds),
        "segment_lag_seconds": float(segment_lag_seconds),
        "shown_tags": {"minimum": SHOWN_TAG_MIN, "limit": SHOWN_TAG_LIMIT},
        "state": None if state is None else dict(state),
        "segments": [dict(segment) for segment in segments],
        "streams": None if streams is None else [dict(stream) for stream in streams],
    }


def update_message(
    *,
    time: float,
    probabilities: Mapping[str, float],
    top: str | None,
    confidence: float,
    state: str,
    level_dbfs: float,
    segment_start: float,
    tags: Mapping[str, float] | None = None,
    title: str | None = None,
) -> dict[str, Any]:
    """The analysis of one hop; `top` is None during silence.

    `tags` are musicnn's descriptor tags of its latest patch (raw, not smoothed), None
    before its first patch. `title` is what an internet stream says is playing (its ICY
    ``StreamTitle``, "Artist - Title"), None from a device or a file.
    """
    return {
        "type": "update",
        "time": _seconds(time),
        "probabilities": {str(label): _fraction(p) for label, p in probabilities.items()},
        "top": _label(top),
        "confidence": _fraction(confidence),
        "state": state,
        "level_dbfs": round(float(level_dbfs), 1),
        "segment_start": _seconds(segment_start),
        "tags": None if tags is None else {str(name): _fraction(p) for name, p in tags.items()},
        "title": None if title is None else str(title),
    }


def confident_tags(
    tags: Mapping[str, float] | None,
    *,
    minimum: float = SHOWN_TAG_MIN,
    limit: int = SHOWN_TAG_LIMIT,
) -> list[tuple[str, float]]:
    """The descriptor tags worth showing: at least `minimum`, strongest first, at most `limit`.

    Ties go by name, so that every display orders them alike. The hello's ``shown_tags``
    carries `minimum` and `limit` to clients.

    >>> confident_tags({"mellow": 0.41, "80s": 0.9, "sad": 0.2, "chill": 0.41})
    [('80s', 0.9), ('chill', 0.41), ('mellow', 0.41)]
    """
    strong = [(name, p) for name, p in (tags or {}).items() if p >= minimum]
    return sorted(strong, key=lambda item: (-item[1], item[0]))[:limit]


def segment_message(
    *,
    index: int,
    start: float,
    end: float,
    genre: str | None,
    state: str,
    confidence: float,
    mixture: Mapping[str, float] | None = None,
    title: str | None = None,
) -> dict[str, Any]:
    """A closed segment; `genre` is None for silence and not-music. `mixture`: the genres
    holding a share of a music segment, strongest first (empty for the other states).
    `title`: the stream title in force for most of the segment (None without one)."""
    return {
        "type": "segment",
        "index": int(index),
        "start": _seconds(start),
        "end": _seconds(end),
        "genre": _label(genre),
        "state": state,
        "confidence": _fraction(confidence),
        "mixture": {str(label): _fraction(p) for label, p in (mixture or {}).items()},
        "title": None if title is None else str(title),
    }


def status_message(
    *,
    time: float,
    overflow_samples: int,
    overflow_events: int,
    latency_ms: float | None,
    clients: int,
    dropped_messages: int,
    source: str,
    input_lost_at: float | None = None,
    input_losses: int = 0,
    invalid_samples: int = 0,
    record_error: str | None = None,
    input_problem: str | None = None,
) -> dict[str, Any]:
    """Capture and server health; `latency_ms` is None until the first update went out.

    `input_lost_at` is the stream time the input was lost at while it is gone, else None;
    `input_losses` counts the losses of the session. `invalid_samples` counts input
    samples that were NaN, infinite or beyond ±1000 and were analysed as zeros.
    `record_error` says why the ``--record`` file stopped being written (None while it is
    written, or without one). `input_problem` says in one line why the input is lost or
    failing (an internet stream's 404, a stall), None while it delivers.
    """
    return {
        "type": "status",
        "time": _seconds(time),
        "overflow_samples": int(overflow_samples),
        "overflow_events": int(overflow_events),
        "latency_ms": None if latency_ms is None else round(float(latency_ms), 1),
        "clients": int(clients),
        "dropped_messages": int(dropped_messages),
        "source": str(source),
        "input": "ok" if input_lost_at is None else "lost",
        "input_lost_at": None if input_lost_at is None else _seconds(input_lost_at),
        "input_losses": int(input_losses),
        "invalid_samples": int(invalid_samples),
        "record_error": None if record_error is None else str(record_error),
        "input_problem": None if input_problem is None else str(input_problem),
    }


def recommendations_message(
    *,
    time: float,
    basis: Mapping[str, Any],
    now_playing: Mapping[str, Any] | None,
    tracks: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    """Library tracks that fit the audio heard up to `time` (`Recommendation.to_message`)."""
    return {
        "type": "recommendations",
        "time": _seconds(time),
        "basis": dict(basis),
        "now_playing": None if now_playing is None else dict(now_playing),
        "tracks": [dict(track) for track in tracks],
    }


def error_message(message: str) -> dict[str, Any]:
    return {"type": "error", "message": message}


def pong_message() -> dict[str, Any]:
    return {"type": "pong"}


def parse_client_message(text: str | bytes) -> dict[str, Any]:
    """Check a message a client sent and return it; raise `ValueError` saying what is wrong.

    The checks are by hand, not with the schemas, so that the server does not need
    ``jsonschema``. Unknown fields are refused rather than ignored, so that a client written
    for a later protocol learns at once that this server does not understand it.

    >>> parse_client_message('{"type": "listen"}')  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: unknown message type 'listen'; this server understands ['ping', ...]
    """
    if isinstance(text, bytes):
        raise ValueError("binary messages are not supported: send JSON text")
    if len(text) > MAX_CLIENT_MESSAGE:
        raise ValueError(
            f"message too long: {len(text)} characters, the limit is {MAX_CLIENT_MESSAGE}"
        )
    try:
        message = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON: {error}") from None
    if not isinstance(message, dict):
        raise ValueError(f"expected a JSON object, got {type(message).__name__}")
    if "type" not in message:
        raise ValueError('missing "type"')
    kind = message["type"]
    if kind not in CLIENT_TYPES:
        raise ValueError(
            f"unknown message type {kind!r}; this server understands {list(CLIENT_TYPES)}"
        )
    fields = _CLIENT_FIELDS[kind]
    unknown = sorted(set(message) - {"type", *fields})
    if unknown:
        raise ValueError(f"unexpected fields {unknown} in a {kind} message")
    for name, check in fields.items():
        if name not in message:
            raise ValueError(f'missing "{name}" in a {kind} message')
        problem = check(message[name])
        if problem:
            raise ValueError(f'"{name}" {problem}')
    if "track" in message:
        message["track"] = int(message["track"])  # 3.0 -> 3: ids compare and print as ints
    return message


def _track_id(value: Any) -> str | None:
    # JSON has one number type: 3.0 is the integer 3 to JSON Schema, and so to this check.
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or value < 1:
        return "must be a track id (a positive integer) from a recommendations message"
    return None


def _action(value: Any) -> str | None:
    if value not in FEEDBACK_ACTIONS:
        return f"must be one of {list(FEEDBACK_ACTIONS)}"
    return None


def _stream_names(value: Any) -> str | None:
    names = value if isinstance(value, list) else None
    if names is None or not all(isinstance(name, str) and name for name in names):
        return "must be a list of stream names from the hello's streams"
    if len(set(names)) != len(names):
        return "must not name a stream twice"
    return None


_CLIENT_FIELDS: dict[str, dict[str, Callable[[Any], str | None]]] = {
    "ping": {},
    "feedback": {"track": _track_id, "action": _action},
    "subscribe": {"streams": _stream_names},
}
"""The fields of each client message besides ``type``, with their checks."""
