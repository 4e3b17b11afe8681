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
import uuid
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from features.contract import Event
from serving.decoding import BodyError
from serving.vendors.mapping import MAX_CACHED_PLANS, MAX_EPOCH_MS, MAX_PROPERTIES, Mapper, PropertyValue

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


class _PairsPayload(msgspec.Struct):
    data: list[dict[str, Any]]


_pairs_payload = msgspec.json.Decoder(_PairsPayload)


def all_pairs(data: bytes, raws: list[msgspec.Raw]) -> list[dict[str, Any] | None]:
    """Every event's name-value pairs (``None`` for one that is not a JSON object): the whole
    body decoded in one pass (in C) when every event is an object, else event by event."""
    try:
        pairs: list[dict[str, Any] | None] = list(_pairs_payload.decode(data).data)
    except (msgspec.DecodeError, RecursionError):
        return [decode_pairs(r) for r in raws]
    return pairs if len(pairs) == len(raws) else [decode_pairs(r) for r in raws]


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
    if value is None:  # most events lack most fields: no exception for them
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def kept_form(pairs: Mapping[str, Any]) -> bytes:
    """What a dead letter keeps of an event: its pairs less the app id (the ingest key)."""
    return msgspec.json.encode(without_key(pairs))


def _ue_keys(schema: str) -> tuple[tuple[str, ...], str]:
    """The rule keys and the name of a self-describing event of ``schema``."""
    vendor_name = schema.removeprefix("iglu:").split("/jsonschema/")[0]
    short = vendor_name.rsplit("/", 1)[-1]
    return (f"ue:{vendor_name}", f"ue:{short}", "ue"), vendor_name


_OTHER_NAMES = {"pv": "page_view", "pp": "page_ping"}
Mapped = dict[str, Any] | str
"""A mapped event (a PlayerPulse event dict), or why a tracker event could not be one."""


def map_event(mapper: Mapper, pairs: Mapping[str, Any], raw: bytes | None = None) -> Mapped:
    """One tracker event (its name-value pairs) mapped by the game's rules, or why not; ``raw``
    is its ``kept_form`` when already made (it seeds the id of an event without ``eid``)."""
    get = pairs.get
    e = str(get("e") or "")
    if not e:
        return "a Snowplow event needs its type (e)"
    extra: dict[str, Any] = {}
    overlay: tuple[str, Any] | None = None
    prefix = ""
    if e == "se":
        se: dict[str, Any] = {}
        for key, value in (
            ("category", get("se_ca")),
            ("action", get("se_ac")),
            ("label", get("se_la")),
            ("property", get("se_pr")),
            ("value", _number(get("se_va"))),
        ):
            if value is not None and value != "":
                se[key] = value
                if key != "category" and key != "action":
                    extra[key] = value
        overlay = ("se", se)
        prefix = "se"
        category = str(se.get("category", ""))
        name = f"{category}:{se.get('action', '')}"
        keys: tuple[str, ...] = (f"se:{name}", f"se:{category}", "se")
    elif e == "ue":
        envelope = _self_describing(pairs, "ue_pr", "ue_px")
        inner = envelope.get("data") if isinstance(envelope, dict) else None
        if not isinstance(inner, dict) or not isinstance(inner.get("data"), dict):
            return "a Snowplow self-describing event needs ue_pr or ue_px holding {schema, data}"
        overlay = ("data", inner["data"])
        extra, prefix = inner["data"], "data"
        keys, name = _ue_keys(str(inner.get("schema", "")))
    else:
        name = _OTHER_NAMES.get(e, e)
        extra = {k: pairs[k] for k in ("url", "page", "refr") if get(k)}
        keys = (e,)
    plan = mapper.plan(keys, prefix)
    fields: dict[str, Any] | None = None
    if plan is not None and plan.sources:  # the rule's paths read the event less its app id
        fields = {k: v for k, v in pairs.items() if k != "aid"}
        if overlay is not None:
            fields[overlay[0]] = overlay[1]
    platform = str(get("p") or "")
    if platform == "mob":
        platform = _mobile_os(pairs) or platform
    event_id = str(pairs["eid"]) if get("eid") else None
    if event_id is None and raw is None:
        raw = kept_form(pairs)
    return mapper.event(
        plan,
        name,
        fields,
        extra,
        event_id,
        str(get("uid") or get("duid") or get("tnuid") or get("nuid") or "") or None,
        _int(get("ttm")) or _int(get("dtm")),
        _int(get("stm")),
        platform or None,
        None,
        str(pairs["sid"]) if get("sid") else None,
        raw=raw or b"",
    )


# --- the typed path ------------------------------------------------------------------------------
# A body whose every event has the shape Snowplow's trackers send (every field a string, a UUID
# ``eid``, one app id, ``ue_pr``/``ue_px`` holding {schema, data} within the contract's nesting)
# is decoded in one pass into these structs and each event becomes an ``Event`` with a few
# attribute reads. Anything else makes ``typed_events`` answer ``None``, and the body takes
# ``map_event`` event by event, which gives each its own verdict: both paths give an accepted
# event the same ``Event``.

_Id = Annotated[str, msgspec.Meta(max_length=64)]
"""A user or session id longer than the contract takes is left to ``map_event``."""


class _TypedPairs(msgspec.Struct, gc=False):
    eid: uuid.UUID
    e: str | None = None
    aid: str | None = None
    p: str | None = None
    uid: _Id | None = None
    duid: _Id | None = None
    tnuid: _Id | None = None
    nuid: _Id | None = None
    ttm: str | None = None
    dtm: str | None = None
    stm: str | None = None
    sid: _Id | None = None
    se_ca: str | None = None
    se_ac: str | None = None
    se_la: str | None = None
    se_pr: str | None = None
    se_va: str | None = None
    ue_pr: str | None = None
    ue_px: str | None = None
    co: str | None = None
    cx: str | None = None
    url: str | None = None
    page: str | None = None
    refr: str | None = None


class _TypedPayload(msgspec.Struct, gc=False):
    schema: str
    data: list[_TypedPairs]


class _UnstructInner(msgspec.Struct, gc=False):
    data: dict[str, PropertyValue]
    schema: str = ""


class _Unstruct(msgspec.Struct, gc=False):
    data: _UnstructInner


_typed_payload = msgspec.json.Decoder(_TypedPayload)
_typed_unstruct = msgspec.json.Decoder(_Unstruct)


def typed_app_id(data: bytes) -> tuple[list[_TypedPairs], str] | None:
    """A ``tp2`` body's events and their one app id, or ``None`` when it needs ``parse``."""
    try:
        doc = _typed_payload.decode(data)
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return None
    if not doc.schema.startswith(PAYLOAD_SCHEMA):
        return None
    aids = {p.aid or "" for p in doc.data}
    return (doc.data, aids.pop()) if len(aids) == 1 else None


def _se_kind(mapper: Mapper, category: str, action: str) -> tuple[Any, ...] | None:
    """(plan, event_type, plain, flat function, the se fields every event of the kind has), or
    ``None`` when the kind's rule reads outside ``se`` (left to ``map_event``)."""
    plan = mapper.plan((f"se:{category}:{action}", f"se:{category}", "se"), "se")
    if plan is not None and plan.sources and plan.reads_outside:
        return None
    se = {"category": category} if category else {}
    if action:
        se["action"] = action
    flat = mapper.flat_function(plan) if plan is not None and plan.sources and plan.flat is not None else None
    # a rule reading only se.label, se.property or se.value reads them from the event's extra
    reads_kind = plan is not None and any(k in ("category", "action") for _, _, ks, _ in plan.flat or () for k, _ in ks)
    return (
        plan,
        plan.event_type if plan is not None else "custom",
        mapper.plain(plan),
        flat,
        se,
        f"{category}:{action}",
        reads_kind,
    )


def typed_events(mapper: Mapper, events: list[_TypedPairs]) -> list[Event] | None:
    """Every event of a typed body as an ``Event``, or ``None`` when any one needs ``map_event``."""
    game = mapper.game
    version = mapper.file.default_app_version
    platforms = mapper.platforms_seen.get
    kinds = mapper.kinds
    last_stm, last_sent = None, None  # a tracker stamps every event of a request with one stm
    out: list[Event] = []
    append = out.append
    for p in events:
        e = p.e
        if e == "se":
            category, action = p.se_ca or "", p.se_ac or ""
            found = kinds.get((category, action))
            if found is None:
                found = _se_kind(mapper, category, action)
                if found is None:
                    return None
                if len(kinds) < MAX_CACHED_PLANS:  # the sender names them: a bounded cache
                    kinds[(category, action)] = found
            plan, event_type, plain, flat, se, name, reads_kind = found
            extra: dict[str, Any] = {}
            if p.se_la:
                extra["label"] = p.se_la
            if p.se_pr:
                extra["property"] = p.se_pr
            va = p.se_va
            if va is not None:
                try:
                    extra["value"] = float(va)
                except ValueError:
                    return None  # not a number: map_event leaves it out
            if plain and len(extra) <= MAX_PROPERTIES:
                properties: Any = extra
            elif flat is not None:
                properties = flat(se | extra if reads_kind else extra, extra)
                if properties is None:
                    return None
            else:
                properties = mapper.properties(plan, name, {"se": se | extra} if plan is not None else None, extra)
                if properties.__class__ is str:
                    return None
        elif not e:
            return None
        else:
            fields: dict[str, Any] | None = None
            properties = None
            if e == "ue":
                text = p.ue_pr
                if not text and p.ue_px:
                    try:
                        text = base64.urlsafe_b64decode(p.ue_px + "=" * (-len(p.ue_px) % 4)).decode()
                    except (binascii.Error, UnicodeDecodeError, ValueError):
                        return None
                if not text:
                    return None
                try:
                    inner = _typed_unstruct.decode(text).data
                except (msgspec.DecodeError, RecursionError):
                    return None
                extra = inner.data
                key = ("ue", inner.schema, "")
                found = kinds.get(key)
                if found is None:
                    keys, name = _ue_keys(inner.schema)
                    plan = mapper.plan(keys, "data")
                    found = (plan, name, mapper.plain(plan))
                    if len(kinds) < MAX_CACHED_PLANS:
                        kinds[key] = found
                plan, name, plain = found
                if plan is not None and plan.sources:
                    if plan.reads_outside:
                        return None
                    fields = {"data": extra}
                    if plan.flat is not None:
                        properties = mapper.flat_function(plan)(extra, extra)
                        if properties is None:
                            return None
            else:
                extra = {}
                if p.url:
                    extra["url"] = p.url
                if p.page:
                    extra["page"] = p.page
                if p.refr:
                    extra["refr"] = p.refr
                key = (e, "", "")
                found = kinds.get(key)
                if found is None:
                    plan = mapper.plan((e,), "")
                    found = (plan, _OTHER_NAMES.get(e, e), mapper.plain(plan))
                    if len(kinds) < MAX_CACHED_PLANS:
                        kinds[key] = found
                plan, name, plain = found
                if plan is not None and plan.sources:  # its paths read the whole event
                    return None
            if plain and len(extra) <= MAX_PROPERTIES:
                properties = extra
            elif properties is None:
                properties = mapper.properties(plan, name, fields, extra)
                if properties.__class__ is str:
                    return None
            event_type = plan.event_type if plan is not None else "custom"
        sent_as = p.p or ""
        if sent_as == "mob":
            sent_as = _mobile_os({"co": p.co, "cx": p.cx}) or sent_as
        platform = platforms(sent_as or None) or mapper.platform(sent_as or None)
        if platform is None:
            return None
        player = p.uid or p.duid or p.tnuid or p.nuid
        if not player:
            return None
        stm = p.stm
        try:  # a time that is not an integer is left to map_event, which may use the next one
            t = int(p.ttm) if p.ttm is not None else None
            if not t:
                t = int(p.dtm) if p.dtm is not None else None
            if stm is None:
                sent = None
            elif stm == last_stm:
                sent = last_sent
            else:
                sent = int(stm)
                if sent < 0 or sent > MAX_EPOCH_MS:
                    return None
                last_stm, last_sent = stm, sent
        except ValueError:
            return None
        if not t or t < 0 or t > MAX_EPOCH_MS:
            return None
        append(Event(p.eid, event_type, player, game, t, platform, version, 1, sent, None, p.sid or None, properties))
    return out
