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
from typing import Any

import msgspec

from serving.decoding import BodyError
from serving.vendors.mapping import Mapper, iso_ms

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


def _kind(kind: str, msg: dict[str, Any]) -> tuple[tuple[str, ...], str, str]:
    if kind == "track":
        label = msg.get("event") or ""
    elif kind in ("page", "screen"):
        label = msg.get("name") or kind
    else:
        label = ""
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
