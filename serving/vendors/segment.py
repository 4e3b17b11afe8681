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
from serving.vendors.mapping import VendorEvent, iso_ms

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


def read(raw: msgspec.Raw, single_type: str | None, batch_sent_at: int | None) -> VendorEvent | str:
    """One Segment message as a ``VendorEvent``, or why it cannot be one."""
    try:
        msg = _message.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return "a Segment message must be a JSON object"
    kind = str(msg.get("type") or single_type or "")
    if not kind:
        return "a Segment message needs a type"
    if kind == "track":
        name = str(msg.get("event") or "")
        keys, extra_key = [f"track:{name}", "track"], "properties"
    elif kind in ("page", "screen"):
        name = str(msg.get("name") or kind)
        keys, extra_key = [f"{kind}:{name}", kind], "properties"
    else:
        name = kind
        keys, extra_key = [kind], "traits"
    context = msg.get("context") if isinstance(msg.get("context"), dict) else {}
    extra = msg.get(extra_key) if isinstance(msg.get(extra_key), dict) else {}
    os_name = _get(context, "os", "name") or _get(context, "device", "type")
    user = msg.get("userId") or msg.get("anonymousId")
    return VendorEvent(
        keys=keys,
        name=name,
        fields=msg,
        extra=extra,
        extra_prefix=extra_key,
        event_id=_str(msg.get("messageId")),
        player_id=_str(user),
        time_ms=iso_ms(msg.get("timestamp") or msg.get("originalTimestamp")),
        sent_at_ms=iso_ms(msg.get("sentAt")) or batch_sent_at,
        platform=_str(os_name),
        app_version=_str(_get(context, "app", "version")),
        raw=bytes(raw),
    )


def _get(doc: dict[str, Any], *path: str) -> Any:
    for part in path:
        doc = doc.get(part) if isinstance(doc, dict) else None  # type: ignore[assignment]
    return doc


def _str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
