"""Segment's HTTP Tracking API, as Segment's libraries send it.

``POST /v1/batch`` (``{"batch": [message, ...], "sentAt": ...}``) and the single-message
routes ``/v1/track``, ``/v1/identify``, ``/v1/page``, ``/v1/screen``; the write key in HTTP
Basic auth (user = write key, empty password): here the write key is the game's ingest key.
A message's rule keys: ``track:<event>``, ``track``; ``page:<name>``, ``page``;
``screen:<name>``, ``screen``; ``identify``, ``group``, ``alias``.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

from features.contract import Event
from serving.decoding import BodyError
from serving.vendors.mapping import MAX_EPOCH_MS, MAX_PROPERTIES, Mapper, PropertyValue, iso_ms

SINGLE_TYPES = ("track", "identify", "page", "screen")


def bearer_from_basic(authorization: str | None) -> str | None:
    """``Authorization: Basic base64(writeKey:)`` as the ``Bearer writeKey`` the key check reads."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return authorization
    if scheme.lower() != "basic":
        return None
    try:
        user = base64.b64decode(value.strip(), validate=True).decode().partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return None
    return f"Bearer {user}" if user else None


class _Batch(msgspec.Struct):
    batch: list[msgspec.Raw]
    sentAt: str | None = None  # Segment spells it so


_batch = msgspec.json.Decoder(_Batch)
_message = msgspec.json.Decoder(dict[str, Any])


def parse(data: bytes, single_type: str | None) -> tuple[list[msgspec.Raw], int | None]:
    """The messages of a body (each as sent) and the batch's ``sentAt``; 400 on a wrong shape."""
    try:
        if single_type is None:
            doc = _batch.decode(data)
            return doc.batch, iso_ms(doc.sentAt)
        _message.decode(data)
    except msgspec.DecodeError as exc:
        what = '{"batch": [...]}' if single_type is None else "one JSON object"
        raise BodyError(400, f"body is not a Segment {single_type or 'batch'} ({what}): {exc}"[:240]) from None
    except RecursionError:
        raise BodyError(400, "body nests deeper than the collector decodes") from None
    return [msgspec.Raw(data)], None


class _Messages(msgspec.Struct):
    batch: list[dict[str, Any]]


_messages = msgspec.json.Decoder(_Messages)
Mapped = dict[str, Any] | str
"""A mapped event (a PlayerPulse event dict), or why a message could not be one."""


def map_all(
    mapper: Mapper, data: bytes, raws: list[msgspec.Raw], single_type: str | None, batch_sent_at: int | None
) -> list[Mapped]:
    """Every message of a parsed body, mapped: the whole batch decoded in one pass (in C) when
    each message is a JSON object, else message by message, so each bad one is refused alone."""
    try:
        messages: list[Any] = _messages.decode(data).batch if single_type is None else [_message.decode(data)]
    except (msgspec.DecodeError, RecursionError):
        messages = [_decode_one(r) for r in raws]
    if len(messages) != len(raws):
        messages = [_decode_one(r) for r in raws]
    return [
        map_message(mapper, m, r, single_type, batch_sent_at) if m is not None else NOT_AN_OBJECT
        for m, r in zip(messages, raws, strict=True)
    ]


NOT_AN_OBJECT = "a Segment message must be a JSON object"


def _decode_one(raw: msgspec.Raw) -> dict[str, Any] | None:
    try:
        return _message.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None


_KINDS: dict[tuple[str, str], tuple[tuple[str, ...], str, str]] = {}
"""(type, event or name) → (rule keys, event name, extra field): made once per distinct pair."""


def _label(kind: str, event: Any, name: Any) -> Any:
    """What names a message of ``kind`` among its kind: its ``event`` or its ``name``."""
    if kind == "track":
        return event or ""
    if kind in ("page", "screen"):
        return name or kind
    return ""


def _kind(kind: str, msg: dict[str, Any]) -> tuple[tuple[str, ...], str, str]:
    label = _label(kind, msg.get("event"), msg.get("name"))
    try:
        return _KINDS[(kind, label)]  # type: ignore[index]
    except (KeyError, TypeError):
        pass
    if kind == "track":
        name = str(label)
        found = (f"track:{name}", "track"), name, "properties"
    elif kind in ("page", "screen"):
        name = str(label)
        found = (f"{kind}:{name}", kind), name, "properties"
    else:
        found = (kind,), kind, "traits"
    if len(_KINDS) < 4096 and isinstance(label, str):  # names are the sender's: a bounded cache
        _KINDS[(kind, label)] = found
    return found


def map_message(
    mapper: Mapper, msg: dict[str, Any], raw: msgspec.Raw, single_type: str | None, batch_sent_at: int | None
) -> Mapped:
    """One decoded Segment message (``raw``: as sent) mapped by the game's rules, or why not."""
    get = msg.get
    kind = get("type") or single_type or ""
    if kind.__class__ is not str:
        kind = str(kind)
    if not kind:
        return "a Segment message needs a type"
    keys, name, extra_key = _kind(kind, msg)
    context = get("context")
    if context.__class__ is not dict:
        context = {}
    extra = get(extra_key)
    if extra.__class__ is not dict:
        extra = {}
    os_name = _get(context, "os", "name") or _get(context, "device", "type")
    event_id = _str(get("messageId"))
    sent_at = get("sentAt")
    return mapper.event(
        mapper.plan(keys, extra_key),
        name,
        msg,
        extra,
        event_id,
        _str(get("userId") or get("anonymousId")),
        iso_ms(get("timestamp") or get("originalTimestamp")),
        (iso_ms(sent_at) if sent_at is not None else None) or batch_sent_at,
        _str(os_name),
        _str(_get(context, "app", "version")),
        raw=bytes(raw) if event_id is None else b"",  # only the seed of a derived id
    )


def _get(doc: dict[str, Any], first: str, second: str) -> Any:
    inner = doc.get(first)
    return inner.get(second) if isinstance(inner, dict) else None


def _str(value: Any) -> str | None:
    if value.__class__ is str:
        return value or None
    return str(value) if value is not None else None


# --- the typed path ------------------------------------------------------------------------------
# A batch whose every message has the shape Segment's libraries send (string ids and names, a
# UUID ``messageId``, RFC 3339 times, ``properties``/``traits`` within the contract's nesting) is
# decoded in one pass straight into these structs, and each message becomes an ``Event`` with a
# few attribute reads. Anything else (a field of another type, a message with no ``messageId``,
# a message the mapping refuses) makes ``typed_events`` answer ``None``, and the batch takes
# ``map_all``, which gives each message its own verdict: both paths give an accepted message the
# same ``Event``.

_Id = Annotated[str, msgspec.Meta(max_length=64)]
"""A user id longer than the contract's player id is left to ``map_all`` (its contract reason)."""


class _OS(msgspec.Struct, gc=False):
    name: str | None = None


class _Device(msgspec.Struct, gc=False):
    type: str | None = None


class _App(msgspec.Struct, gc=False):
    version: _Id | None = None


class _Context(msgspec.Struct, gc=False):
    os: _OS | None = None
    device: _Device | None = None
    app: _App | None = None


class _TypedMessage(msgspec.Struct, gc=False):
    messageId: uuid.UUID
    type: str | None = None
    event: str | None = None
    name: str | None = None
    userId: _Id | None = None
    anonymousId: _Id | None = None
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None
    sentAt: datetime | None = None
    properties: dict[str, PropertyValue] | None = None
    traits: dict[str, PropertyValue] | None = None
    context: msgspec.Raw = msgspec.Raw(b"null")
    """As sent: a library gives every message of a batch the same context, so its reading
    (``_context``) is made once per distinct text."""


class _TypedBatch(msgspec.Struct, gc=False):
    batch: list[_TypedMessage]
    sentAt: str | None = None


_typed_batch = msgspec.json.Decoder(_TypedBatch)
_typed_message = msgspec.json.Decoder(_TypedMessage)
_typed_context = msgspec.json.Decoder(_Context | None)
_utc = UTC


def _context(mapper: Mapper, raw: msgspec.Raw, default_version: str) -> tuple[str, str] | None:
    """(platform, app_version) of a message's context, or ``None`` when it needs ``map_all``."""
    try:
        ctx = _typed_context.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None
    if ctx is None:
        os_name, version = None, default_version
    else:
        os_name = ctx.os.name if ctx.os is not None else None
        if not os_name:
            os_name = ctx.device.type if ctx.device is not None else None
        version = (ctx.app.version if ctx.app is not None else None) or default_version
    platform = mapper.platform(os_name or None)
    return None if platform is None else (platform, version)


def _typed_kind(mapper: Mapper, kind: str, event: str | None, name: str | None) -> tuple[Any, ...] | None:
    """(plan, event_type, rule name, extra field, plain, flat function) of one kind of message,
    or ``None`` when its rule reads outside its extra field (left to ``map_all``)."""
    keys, label, extra_key = _kind(kind, {"event": event, "name": name})
    plan = mapper.plan(keys, extra_key)
    if plan is not None and plan.reads_outside:
        return None
    flat = mapper.flat_function(plan) if plan is not None and plan.flat is not None else None
    return plan, plan.event_type if plan is not None else "custom", label, extra_key, mapper.plain(plan), flat


def typed_events(mapper: Mapper, data: bytes, single_type: str | None) -> list[Event] | None:
    """Every message of a body as an ``Event``, or ``None`` when any one needs ``map_all``."""
    try:
        if single_type is None:
            doc = _typed_batch.decode(data)
            messages, batch_sent = doc.batch, iso_ms(doc.sentAt)
        else:
            messages, batch_sent = [_typed_message.decode(data)], None
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return None
    game = mapper.game
    default_version = mapper.file.default_app_version
    kinds = mapper.kinds
    contexts: dict[bytes, tuple[str, str]] = {}
    last_context, platform, version = None, "", ""
    batch_sent_ok = batch_sent is None or 0 <= batch_sent <= MAX_EPOCH_MS
    out: list[Event] = []
    append = out.append
    for m in messages:
        kind = m.type or single_type
        if kind == "track":
            key: Any = m.event or ""  # a track message's kind is its event name alone
        elif not kind:
            return None
        else:
            key = (kind, _label(kind, m.event, m.name))
        found = kinds.get(key)
        if found is None:
            found = _typed_kind(mapper, kind, m.event, m.name)
            if found is None:
                return None
            if len(kinds) < 4096:  # names are the sender's: a bounded cache
                kinds[key] = found
        plan, event_type, name, extra_key, plain, flat = found
        extra = m.properties if extra_key == "properties" else m.traits
        if extra is None:
            extra = {}
        if plain and len(extra) <= MAX_PROPERTIES:
            properties = extra
        elif flat is not None:
            properties = flat(extra, extra)
            if properties is None:
                return None
        else:
            properties = mapper.properties(plan, name, {extra_key: extra}, extra)
            if properties.__class__ is str:
                return None
        player = m.userId or m.anonymousId
        if not player:
            return None
        raw = m.context
        if raw != last_context:  # most often the previous message's context again
            text = bytes(raw)
            read = contexts.get(text)
            if read is None:
                read = _context(mapper, raw, default_version)
                if read is None:
                    return None
                contexts[text] = read
            last_context, (platform, version) = raw, read
        stamp = m.timestamp or m.originalTimestamp
        if stamp is None:
            return None
        t = int((stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=_utc)).timestamp() * 1000)
        if t < 0 or t > MAX_EPOCH_MS:
            return None
        sent = m.sentAt
        if sent is None:
            if not batch_sent_ok:
                return None
            sent = batch_sent
        else:
            sent = (
                int((sent if sent.tzinfo is not None else sent.replace(tzinfo=_utc)).timestamp() * 1000) or batch_sent
            )
            if sent is not None and (sent < 0 or sent > MAX_EPOCH_MS):
                return None
        append(Event(m.messageId, event_type, player, game, t, platform, version, 1, sent, None, None, properties))
    return out
