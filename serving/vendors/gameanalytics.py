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
from typing import Annotated, Any

import msgspec

from features.contract import Event
from serving.decoding import BodyError
from serving.vendors.mapping import MAX_CACHED_PLANS, MAX_EPOCH_MS, MAX_PROPERTIES, Mapper, PropertyValue

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
# property values (their nesting checked in C); those dicts are converted (in C) into
# ``_Envelope`` structs, which check the types and lengths the contract needs of the fields
# with a PlayerPulse place and parse the event UUIDs. Each event whose fields have the types GameAnalytics' SDKs send
# becomes an ``Event``; anything else makes ``typed_events`` answer ``None``, and the body takes
# ``map_all``, which gives each event its own verdict: both paths give an accepted event the
# same ``Event``.

_typed_objects = msgspec.json.Decoder(list[dict[str, PropertyValue]])
_PARTS = frozenset({"event_parts"})
_Text64 = Annotated[str, msgspec.Meta(max_length=64)]
"""``map_all`` reads these as text, and the contract takes at most 64 characters."""


class _Envelope(msgspec.Struct, gc=False):
    """The fields of an event ``typed_events`` reads itself (a bool is neither int nor float here)."""

    event_uuid: uuid.UUID
    user_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    client_ts: int | float
    category: Annotated[str, msgspec.Meta(min_length=1)]
    event_id: str | None = None
    severity: str | None = None
    platform: str | None = None
    build: _Text64 | None = None
    session_id: _Text64 | None = None


_Envelopes = list[_Envelope]
_PLAIN, _OF_NAME, _CUSTOM, _FLAT, _GENERAL = range(5)


def _kind(mapper: Mapper, category: str, event_name: str, severity: str | None, custom: bool) -> tuple[Any, ...]:
    """How events of one (category, event_id, severity) get their properties, worked out once
    (``Mapper.kinds``): (event_type, mode, plan, name, parts, properties of the name alone,
    properties of an event with nothing outside the envelope, compiled flat rule)."""
    parts = event_name.split(":") if event_name else []
    keys: tuple[str, ...] = (f"{category}:{parts[0]}", category) if parts else (category,)
    if severity:
        keys = (f"error:{severity}", *keys)
    plan = mapper.plan(keys)
    name = event_name or category
    # a rule that reads only event_parts reads the same for every event of this name
    of_name = mapper.properties(plan, name, {"event_parts": parts}, {}) if plan and plan.roots == _PARTS else None
    if plan is not None and not plan.sources:
        mode = _PLAIN
    elif of_name is not None:
        mode = _OF_NAME
    elif plan is None and custom:
        mode = _CUSTOM
    elif plan is not None and plan.flat is not None and "event_parts" not in plan.roots:
        mode = _FLAT
    else:
        mode = _GENERAL
    # an event with no field outside the envelope (the usual one) gets a copy of this
    if mode == _PLAIN:
        template: dict[str, Any] | None = {}
    elif mode == _OF_NAME:
        template = of_name if isinstance(of_name, dict) else None
    elif mode == _CUSTOM:
        template = {"name": name}
    else:
        template = None
    flat = mapper.flat_function(plan) if mode == _FLAT and plan is not None else None
    return plan.event_type if plan is not None else "custom", mode, plan, name, parts, of_name, template, flat


def typed_events(mapper: Mapper, data: bytes) -> list[Event] | None:
    """Every event of a body as an ``Event``, or ``None`` when any one needs ``map_all``."""
    try:
        objects = _typed_objects.decode(data)
        envelopes = msgspec.convert(objects, _Envelopes)
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return None
    game = mapper.game
    default_version = mapper.file.default_app_version
    platforms = mapper.platforms_seen.get
    excluded = ENVELOPE.union(mapper.rules.drop)  # dropped here, so plans that read nothing take extra as it is
    all_excluded = excluded.issuperset
    custom = mapper.file.unmapped == "custom"
    kinds = mapper.kinds
    out: list[Event] = []
    append = out.append
    for ev, env in zip(objects, envelopes, strict=True):
        category = env.category
        key = (category, env.event_id) if category != "error" else (category, env.event_id, env.severity)
        found = kinds.get(key)
        if found is None:
            severity = env.severity if category == "error" else None
            found = _kind(mapper, category, env.event_id or "", severity, custom)
            if len(kinds) < MAX_CACHED_PLANS:  # the sender names them: a bounded cache
                kinds[key] = found
        event_type, mode, plan, name, parts, of_name, template, flat = found
        bare = all_excluded(ev)  # nothing outside the envelope (and the mapping's drops)
        if bare and template is not None:  # the kind's own properties
            properties = template.copy()
        else:
            extra = {} if bare else {k: v for k, v in ev.items() if k not in excluded}
            if mode == _PLAIN and len(extra) <= MAX_PROPERTIES:
                properties = extra
            elif mode == _OF_NAME:
                if of_name.__class__ is str or "event_parts" in extra:  # refused, or a field the rule consumes
                    return None
                properties = dict(of_name)
                for k, v in extra.items():  # as properties() adds them: after the rule's, up to 64
                    if len(properties) >= MAX_PROPERTIES:
                        break
                    if k not in properties:
                        properties[k] = v
            elif mode == _CUSTOM and "name" not in extra and len(extra) < MAX_PROPERTIES:
                properties = {"name": name, **extra}
            elif flat is not None:
                properties = flat(ev, extra)
                if properties is None:
                    return None
            else:
                fields = None
                if plan is not None:  # the rule's paths read the event and event_parts
                    fields = {"event_parts": parts} if plan.roots == _PARTS else {**ev, "event_parts": parts}
                properties = mapper.properties(plan, name, fields, extra)
                if properties.__class__ is str:
                    return None
        t = int(env.client_ts * 1000)
        if t < 0 or t > MAX_EPOCH_MS:
            return None
        sent_as = env.platform
        platform = platforms(sent_as) or mapper.platform(sent_as or None)
        if platform is None:
            return None
        append(
            Event(
                env.event_uuid,
                event_type,
                env.user_id,
                game,
                t,
                platform,
                env.build or default_version,
                1,
                None,
                None,
                env.session_id or None,
                properties,
            )
        )
    return out
