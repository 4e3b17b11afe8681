"""GameAnalytics' Collection (REST) API v2, as its SDKs send it.

``POST /v2/{game_key}/init`` and ``POST /v2/{game_key}/events`` (a JSON array of events,
usually gzip'd). Each body is signed: ``Authorization`` is base64(HMAC-SHA256(secret key, the
body's bytes as sent, gzip included)). The game key is ``games.GAME.vendors.
gameanalytics_game_key``; the secret is read from the environment variable that
``gameanalytics_secret_env`` names, because the HMAC needs the secret itself.

Rule keys: ``<category>:<first part of event_id>`` then ``<category>``, e.g.
``progression:Complete``, ``resource:Source``, ``business``, ``user``, ``session_end``; the
rules read the event's fields and ``event_parts`` (``event_id`` split at ``:``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import msgspec

from serving.decoding import BodyError
from serving.vendors.mapping import Mapper

ENVELOPE = frozenset(
    {
        "v",
        "category",
        "user_id",
        "event_uuid",
        "client_ts",
        "session_id",
        "platform",
        "os_version",
        "sdk_version",
        "device",
        "manufacturer",
        "build",
        "engine_version",
        "event_id",
        "connection_type",
        "android_id",
        "google_aid",
        "ios_idfa",
        "ios_idfv",
        "user_id_ext",
    }
)
"""Fields with a PlayerPulse place (or device identifiers): never copied into ``properties``."""


def signature_ok(secret: bytes, body: bytes, authorization: str | None) -> bool:
    """Whether ``Authorization`` is base64(HMAC-SHA256(secret, body)), compared in constant time."""
    expected = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, (authorization or "").strip().encode())


_events = msgspec.json.Decoder(list[msgspec.Raw])
_event = msgspec.json.Decoder(dict[str, Any])
_objects = msgspec.json.Decoder(list[dict[str, Any]])


def parse(data: bytes) -> list[msgspec.Raw]:
    try:
        return _events.decode(data)
    except msgspec.DecodeError as exc:
        raise BodyError(400, f"body is not a JSON array of GameAnalytics events: {exc}"[:240]) from None
    except RecursionError:
        raise BodyError(400, "body nests deeper than the collector decodes") from None


Mapped = dict[str, Any] | str
"""A mapped event (a PlayerPulse event dict), or why a GameAnalytics event could not be one."""
NOT_AN_OBJECT = "a GameAnalytics event must be a JSON object"


def map_all(mapper: Mapper, data: bytes, raws: list[msgspec.Raw]) -> list[Mapped]:
    """Every event of a parsed body, mapped: decoded in one pass (in C) when each is a JSON
    object, else one by one, so each bad one is refused alone."""
    try:
        objects: list[Any] = _objects.decode(data)
    except (msgspec.DecodeError, RecursionError):
        objects = [_decode_one(r) for r in raws]
    if len(objects) != len(raws):
        objects = [_decode_one(r) for r in raws]
    return [map_event(mapper, ev, r) if ev is not None else NOT_AN_OBJECT for ev, r in zip(objects, raws, strict=True)]


def _decode_one(raw: msgspec.Raw) -> dict[str, Any] | None:
    try:
        return _event.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None


def map_event(mapper: Mapper, ev: dict[str, Any], raw: msgspec.Raw) -> Mapped:
    """One decoded GameAnalytics event (``raw``: as sent) mapped by the game's rules, or why not."""
    get = ev.get
    category = str(get("category") or "")
    if not category:
        return "a GameAnalytics event needs its category"
    event_name = str(get("event_id") or "")
    parts = event_name.split(":") if event_name else []
    keys: tuple[str, ...] = (f"{category}:{parts[0]}", category) if parts else (category,)
    if category == "error" and get("severity"):
        keys = (f"error:{ev['severity']}", *keys)
    plan = mapper.plan(keys)
    client_ts = get("client_ts")
    event_id = _str(get("event_uuid"))
    return mapper.event(
        plan,
        event_name or category,
        {**ev, "event_parts": parts} if plan is not None and plan.sources else None,
        {k: v for k, v in ev.items() if k not in ENVELOPE},
        event_id,
        _str(get("user_id")),
        int(client_ts * 1000) if isinstance(client_ts, (int, float)) and not isinstance(client_ts, bool) else None,
        None,
        _str(get("platform")),
        _str(get("build")),
        _str(get("session_id")),
        raw=bytes(raw) if event_id is None else b"",  # only the seed of a derived id
    )


def _str(value: Any) -> str | None:
    """A field as text, ``None`` when it is absent or falsy (``0``, ``""``, ``false``)."""
    if value.__class__ is str:
        return value or None
    return str(value) if value else None
