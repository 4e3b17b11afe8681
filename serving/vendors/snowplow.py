"""Snowplow's tracker protocol, as Snowplow's trackers send it.

``POST /{game}/com.snowplowanalytics.snowplow/tp2`` with the ``payload_data`` envelope
(``iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-*``, every value a string)
and ``GET /{game}/i?...`` (one event in the query, answered with a 1×1 GIF).

Authentication is not part of Snowplow's protocol, and a tracker can be given only a collector
URL and an app id; so a game's tracker points at ``/{game}`` as its collector and sends the
game's ingest key as its app id (``aid``). Every event of a request must carry the same
``aid`` and it must be an ingest key of ``{game}``; otherwise the answer is 401. The ``aid``
is never stored.

Rule keys: ``se:<category>:<action>``, ``se:<category>``, ``se`` (structured; the rules read
``se.category``, ``se.action``, ``se.label``, ``se.property``, ``se.value``);
``ue:<vendor>/<name>``, ``ue:<name>``, ``ue`` (self-describing; the rules read ``data.*``);
``pv`` and any other ``e``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import msgspec

from serving.decoding import BodyError
from serving.vendors.mapping import VendorEvent

PAYLOAD_SCHEMA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-"
MOBILE_CONTEXT = "iglu:com.snowplowanalytics.snowplow/mobile_context/"
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
"""The transparent 1×1 GIF a Snowplow collector answers ``GET /i`` with."""


class _Payload(msgspec.Struct):
    schema: str
    data: list[msgspec.Raw]


_payload = msgspec.json.Decoder(_Payload)
_pairs = msgspec.json.Decoder(dict[str, Any])
_json = msgspec.json.Decoder()


def parse(data: bytes) -> list[msgspec.Raw]:
    """The events of a ``tp2`` body, each as sent; 400 on anything but ``payload_data``."""
    try:
        doc = _payload.decode(data)
    except msgspec.DecodeError as exc:
        raise BodyError(400, f"body is not a Snowplow payload_data envelope: {exc}"[:240]) from None
    except RecursionError:
        raise BodyError(400, "body nests deeper than the collector decodes") from None
    if not doc.schema.startswith(PAYLOAD_SCHEMA):
        raise BodyError(400, f"unsupported schema '{doc.schema[:100]}': send {PAYLOAD_SCHEMA}4")
    return doc.data


def decode_pairs(raw: msgspec.Raw) -> dict[str, Any] | None:
    try:
        pairs = _pairs.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None
    return pairs


def without_key(pairs: Mapping[str, Any]) -> dict[str, Any]:
    """The event less its app id, which carries the game's ingest key: never stored."""
    return {k: v for k, v in pairs.items() if k != "aid"}


def app_ids(events: list[dict[str, Any] | None]) -> set[str]:
    return {str(e.get("aid") or "") for e in events if e is not None}


def _self_describing(pairs: Mapping[str, Any], plain: str, encoded: str) -> Any:
    """A JSON field sent plain (``ue_pr``) or base64url (``ue_px``), or ``None``."""
    text = pairs.get(plain)
    if not text and pairs.get(encoded):
        value = str(pairs[encoded])
        try:
            text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
    if not text:
        return None
    try:
        return _json.decode(text) if isinstance(text, str) else text
    except (msgspec.DecodeError, RecursionError):
        return None


def _mobile_os(pairs: Mapping[str, Any]) -> str | None:
    contexts = _self_describing(pairs, "co", "cx")
    items = contexts.get("data") if isinstance(contexts, dict) else None
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and str(item.get("schema", "")).startswith(MOBILE_CONTEXT):
            data = item.get("data")
            if isinstance(data, dict) and data.get("osType"):
                return str(data["osType"])
    return None


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def read(pairs: Mapping[str, Any], raw: bytes) -> VendorEvent | str:
    """One tracker event (its name-value pairs) as a ``VendorEvent``, or why it cannot be one."""
    e = str(pairs.get("e") or "")
    if not e:
        return "a Snowplow event needs its type (e)"
    fields: dict[str, Any] = {k: v for k, v in pairs.items() if k != "aid"}
    extra: dict[str, Any] = {}
    prefix = ""
    if e == "se":
        se = {
            "category": pairs.get("se_ca"),
            "action": pairs.get("se_ac"),
            "label": pairs.get("se_la"),
            "property": pairs.get("se_pr"),
            "value": _number(pairs.get("se_va")),
        }
        se = {k: v for k, v in se.items() if v not in (None, "")}
        fields["se"] = se
        extra = {k: v for k, v in se.items() if k not in ("category", "action")}
        prefix = "se"
        name = ":".join(str(se.get(k, "")) for k in ("category", "action"))
        keys = [f"se:{name}", f"se:{se.get('category', '')}", "se"]
    elif e == "ue":
        envelope = _self_describing(pairs, "ue_pr", "ue_px")
        inner = envelope.get("data") if isinstance(envelope, dict) else None
        if not isinstance(inner, dict) or not isinstance(inner.get("data"), dict):
            return "a Snowplow self-describing event needs ue_pr or ue_px holding {schema, data}"
        schema = str(inner.get("schema", ""))
        vendor_name = schema.removeprefix("iglu:").split("/jsonschema/")[0]
        short = vendor_name.rsplit("/", 1)[-1]
        fields["data"] = inner["data"]
        extra, prefix, name = inner["data"], "data", vendor_name
        keys = [f"ue:{vendor_name}", f"ue:{short}", "ue"]
    else:
        name = {"pv": "page_view", "pp": "page_ping"}.get(e, e)
        extra = {k: pairs[k] for k in ("url", "page", "refr") if pairs.get(k)}
        keys = [e]
    platform = str(pairs.get("p") or "")
    if platform == "mob":
        platform = _mobile_os(pairs) or platform
    return VendorEvent(
        keys=keys,
        name=name,
        fields=fields,
        extra=extra,
        extra_prefix=prefix,
        event_id=str(pairs["eid"]) if pairs.get("eid") else None,
        player_id=str(pairs.get("uid") or pairs.get("duid") or pairs.get("tnuid") or pairs.get("nuid") or "") or None,
        time_ms=_int(pairs.get("ttm")) or _int(pairs.get("dtm")),
        sent_at_ms=_int(pairs.get("stm")),
        platform=platform or None,
        session_id=str(pairs["sid"]) if pairs.get("sid") else None,
        raw=raw,
    )
