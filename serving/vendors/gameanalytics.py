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
from serving.vendors.mapping import VendorEvent

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


def parse(data: bytes) -> list[msgspec.Raw]:
    try:
        return _events.decode(data)
    except msgspec.DecodeError as exc:
        raise BodyError(400, f"body is not a JSON array of GameAnalytics events: {exc}"[:240]) from None
    except RecursionError:
        raise BodyError(400, "body nests deeper than the collector decodes") from None


def read(raw: msgspec.Raw) -> VendorEvent | str:
    """One GameAnalytics event as a ``VendorEvent``, or why it cannot be one."""
    try:
        ev = _event.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return "a GameAnalytics event must be a JSON object"
    category = str(ev.get("category") or "")
    if not category:
        return "a GameAnalytics event needs its category"
    event_name = str(ev.get("event_id") or "")
    parts = event_name.split(":") if event_name else []
    fields = {**ev, "event_parts": parts}
    keys = ([f"{category}:{parts[0]}"] if parts else []) + [category]
    if category == "error" and ev.get("severity"):
        keys.insert(0, f"error:{ev['severity']}")
    client_ts = ev.get("client_ts")
    return VendorEvent(
        keys=keys,
        name=event_name or category,
        fields=fields,
        extra={k: v for k, v in ev.items() if k not in ENVELOPE},
        event_id=str(ev["event_uuid"]) if ev.get("event_uuid") else None,
        player_id=str(ev["user_id"]) if ev.get("user_id") else None,
        time_ms=int(client_ts * 1000)
        if isinstance(client_ts, (int, float)) and not isinstance(client_ts, bool)
        else None,
        platform=str(ev["platform"]) if ev.get("platform") else None,
        app_version=str(ev["build"]) if ev.get("build") else None,
        session_id=str(ev["session_id"]) if ev.get("session_id") else None,
        raw=bytes(raw),
    )
