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
import uuid
from typing import Any

import msgspec

from features.contract import Event
from serving.decoding import BodyError
from serving.vendors.mapping import MAX_EPOCH_MS, MAX_PROPERTIES, Mapper, PropertyValue

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


# --- the typed path ------------------------------------------------------------------------------
# GameAnalytics' free-form fields are every field outside ``ENVELOPE``, in the order sent, so a
# body is decoded in one pass into one dict per event whose values are typed as the contract's
# property values (their nesting checked in C), and the event UUIDs of the whole body are parsed
# in one call. Each event whose fields have the types GameAnalytics' SDKs send becomes an
# ``Event``; anything else makes ``typed_events`` answer ``None``, and the body takes ``map_all``,
# which gives each event its own verdict: both paths give an accepted event the same ``Event``.

_typed_objects = msgspec.json.Decoder(list[dict[str, PropertyValue]])
_NUMBERS = (int, float)
_PARTS = frozenset({"event_parts"})


def typed_events(mapper: Mapper, data: bytes) -> list[Event] | None:
    """Every event of a body as an ``Event``, or ``None`` when any one needs ``map_all``."""
    try:
        objects = _typed_objects.decode(data)
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return None
    game = mapper.game
    default_version = mapper.file.default_app_version
    platforms = mapper.platforms_seen
    excluded = ENVELOPE.union(mapper.rules.drop)  # dropped here, so plans that read nothing take extra as it is
    custom = mapper.file.unmapped == "custom"
    kinds: dict[tuple[str, str, Any], Any] = {}
    ids: list[Any] = []
    out: list[Event] = []
    append = out.append
    for ev in objects:
        get = ev.get
        category = get("category")
        if category.__class__ is not str or not category:
            return None
        event_name = get("event_id") or ""
        if event_name.__class__ is not str:
            return None
        severity = get("severity") if category == "error" else None
        if severity is not None and severity.__class__ is not str:
            return None
        key = (category, event_name, severity)
        found = kinds.get(key)
        if found is None:
            parts = event_name.split(":") if event_name else []
            keys: tuple[str, ...] = (f"{category}:{parts[0]}", category) if parts else (category,)
            if severity:
                keys = (f"error:{severity}", *keys)
            plan = mapper.plan(keys)
            name = event_name or category
            # a rule that reads only event_parts reads the same for every event of this name
            of_name = (
                mapper.properties(plan, name, {"event_parts": parts}, {}) if plan and plan.roots == _PARTS else None
            )
            found = kinds[key] = (plan, name, parts, of_name)
        plan, name, parts, of_name = found
        extra = {} if excluded.issuperset(ev) else {k: v for k, v in ev.items() if k not in excluded}
        if plan is not None and not plan.sources and len(extra) <= MAX_PROPERTIES:
            properties = extra
        elif of_name is not None:
            if of_name.__class__ is str or "event_parts" in extra:  # refused, or a field the rule consumes
                return None
            properties = dict(of_name)
            for k, v in extra.items():  # as properties() adds them: after the rule's, up to 64
                if len(properties) >= MAX_PROPERTIES:
                    break
                if k not in properties:
                    properties[k] = v
        elif plan is None and custom and "name" not in extra and len(extra) < MAX_PROPERTIES:
            properties = {"name": name, **extra}
        elif plan is not None and plan.flat is not None and "event_parts" not in plan.roots:
            properties = mapper.flat_properties(plan, ev, extra)
            if properties is None:
                return None
        else:
            fields = None
            if plan is not None:  # the rule's paths read the event and event_parts
                fields = {"event_parts": parts} if plan.roots == _PARTS else {**ev, "event_parts": parts}
            properties = mapper.properties(plan, name, fields, extra)
            if properties.__class__ is str:
                return None
        player = get("user_id")
        if player.__class__ is not str or not player or len(player) > 64:
            return None
        client_ts = get("client_ts")
        if client_ts.__class__ not in _NUMBERS:
            return None
        t = int(client_ts * 1000)
        if t < 0 or t > MAX_EPOCH_MS:
            return None
        sent_as, version, session = get("platform"), get("build"), get("session_id")
        if (
            (sent_as is not None and sent_as.__class__ is not str)
            or (version is not None and (version.__class__ is not str or len(version) > 64))
            or (session is not None and (session.__class__ is not str or len(session) > 64))
        ):
            return None  # map_all reads these as text, and the contract takes at most 64 characters
        platform = platforms.get(sent_as or None) or mapper.platform(sent_as or None)
        if platform is None:
            return None
        ids.append(get("event_uuid"))
        append(
            Event(
                None,  # type: ignore[arg-type]  # set below, once every event's UUID is parsed
                plan.event_type if plan is not None else "custom",
                player,
                game,
                t,
                platform,
                version or default_version,
                1,
                None,
                None,
                session or None,
                properties,
            )
        )
    try:
        uuids = msgspec.convert(ids, list[uuid.UUID])
    except msgspec.ValidationError:
        return None
    for event, event_id in zip(out, uuids, strict=True):
        event.event_id = event_id
    return out
