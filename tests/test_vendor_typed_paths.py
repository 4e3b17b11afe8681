"""The adapters' typed paths against their event-by-event paths: a body the typed path takes
becomes exactly the ``Event`` s the event-by-event path makes of it, and a body it cannot take
alike is left to that path (``typed_events`` answers ``None``). Bodies are shaped as the
vendors' SDKs send them."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from features.contract import Event
from serving.vendors import gameanalytics, segment, snowplow
from serving.vendors.mapping import Mapper, load_mapping

MAPPING = load_mapping("default")
NOW = datetime.now(UTC) - timedelta(minutes=2)
NOW_MS = int(NOW.timestamp() * 1000)


def mapper(vendor: str) -> Mapper:
    return Mapper(vendor, "demo", MAPPING)  # type: ignore[arg-type]


def event_by_event(mapped: list[Any]) -> list[Event] | list[Any]:
    """What ``VendorIngest._prepare`` hands the core for a batch mapped event by event: typed
    ``Event`` s, or the mapped dicts (and reasons) when one is refused or breaks the contract."""
    if any(isinstance(m, str) for m in mapped):
        return mapped
    try:
        return msgspec.convert(mapped, list[Event], strict=False)
    except msgspec.ValidationError:
        return mapped


def segment_both(messages: list[dict[str, Any]], sent_at: str | None = None) -> tuple[Any, Any]:
    data = json.dumps({"batch": messages, **({"sentAt": sent_at} if sent_at else {})}).encode()
    m = mapper("segment")
    raws, batch_sent = segment.parse(data, None)
    return segment.typed_events(mapper("segment"), data, None), event_by_event(
        segment.map_all(m, data, raws, None, batch_sent)
    )


def seg(**over: Any) -> dict[str, Any]:
    """A track call as segment-analytics-python sends it."""
    return {
        "type": "track",
        "event": "Level Up",
        "userId": "player-1",
        "messageId": str(uuid.uuid4()),
        "timestamp": NOW.isoformat(),
        "properties": {"level": 3, "world": "forest"},
        "context": {
            "library": {"name": "analytics-python", "version": "2.3.3"},
            "os": {"name": "iOS", "version": "17.2"},
            "app": {"version": "2.3.1", "build": "231"},
        },
        "integrations": {},
        **over,
    }


SEGMENT_TAKEN = {
    "python track": [seg()],
    "ios upper-case id, Z time": [
        seg(messageId=str(uuid.uuid4()).upper(), timestamp=NOW.strftime("%Y-%m-%dT%H:%M:%S.123Z"))
    ],
    "c# seven fraction digits": [seg(timestamp=NOW.strftime("%Y-%m-%dT%H:%M:%S.1234567Z"))],
    "naive time is utc": [seg(timestamp=NOW.replace(tzinfo=None).isoformat())],
    "original timestamp only, own sentAt": [
        {k: v for k, v in seg(originalTimestamp=NOW.isoformat(), sentAt=NOW.isoformat()).items() if k != "timestamp"}
    ],
    "anonymous id, device type": [
        seg(userId=None, anonymousId="anon-7", context={"device": {"type": "android"}, "app": {"version": ""}})
    ],
    "purchase reads products": [
        seg(event="Order Completed", properties={"revenue": 4.99, "total": 5, "products": [{"sku": "gems", "q": 1}]})
    ],
    "identify keeps traits as custom": [{**seg(type="identify", traits={"plan": "free"}), "event": None}],
    "screen by name": [seg(type="screen", name="Store", properties={})],
    "more than 64 properties": [seg(event="Store Viewed", properties={f"p{i}": i for i in range(70)})],
    "unmapped track": [seg(event="Tutorial Done", properties={"name": "kept out", "step": 2})],
    "email as user id (the core refuses it)": [seg(userId="someone@example.com")],
    "mixed batch": [seg(), seg(event="Session Started", properties=None), seg(type="page", name="Home")],
}
SEGMENT_LEFT = {
    "browser id": [seg(messageId="ajs-next-1a2b")],
    "no id": [{k: v for k, v in seg().items() if k != "messageId"}],
    "user id too long": [seg(userId="u" * 65)],
    "numeric user id": [seg(userId=42)],
    "date-only time": [seg(timestamp=NOW.date().isoformat())],
    "unknown os": [seg(context={"os": {"name": "Amiga"}})],
    "level is not a number": [seg(properties={"level": "three"})],
    "properties too deep": [seg(properties={"a": [[[[[[[[1]]]]]]]]})],
    "no time": [{k: v for k, v in seg().items() if k != "timestamp"}],
}


@pytest.mark.parametrize("messages", SEGMENT_TAKEN.values(), ids=SEGMENT_TAKEN.keys())
def test_segment_batches_the_typed_path_takes_become_the_same_events(messages):
    typed, expected = segment_both(messages)
    assert typed is not None
    assert typed == expected


@pytest.mark.parametrize("messages", SEGMENT_LEFT.values(), ids=SEGMENT_LEFT.keys())
def test_segment_batches_the_typed_path_cannot_take_alike_are_left_to_the_other(messages):
    typed, _ = segment_both([seg(), *messages])
    assert typed is None


def test_segment_batch_sent_at_applies_to_messages_without_their_own():
    typed, expected = segment_both(
        [seg(), seg(sentAt=NOW.isoformat())], sent_at=(NOW + timedelta(seconds=5)).isoformat()
    )
    assert typed is not None and typed == expected
    assert typed[0].sent_at == NOW_MS + 5000 and typed[1].sent_at == NOW_MS


def snowplow_both(events: list[dict[str, Any]]) -> tuple[Any, Any]:
    body = {"schema": snowplow.PAYLOAD_SCHEMA + "4", "data": events}
    data = json.dumps(body).encode()
    m = mapper("snowplow")
    raws = snowplow.parse(data)
    slow = event_by_event([snowplow.map_event(m, p) for p in snowplow.all_pairs(data, raws)])
    found = snowplow.typed_app_id(data)
    return (snowplow.typed_events(mapper("snowplow"), found[0]) if found else None), slow


def sp(**over: Any) -> dict[str, Any]:
    """A structured event as snowplow-tracker (Python) sends it: every value a string."""
    return {
        "e": "se",
        "se_ca": "level",
        "se_ac": "up",
        "se_la": "forest",
        "se_va": "2",
        "eid": str(uuid.uuid4()),
        "aid": "key",
        "p": "pc",
        "uid": "player-7",
        "dtm": str(NOW_MS),
        "stm": str(NOW_MS + 20),
        "tv": "py-1.0.1",
        "tna": "game",
        "res": "1920x1080",
        **over,
    }


def b64(doc: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


PURCHASE = {"schema": "iglu:com.example.game/purchase/jsonschema/1-0-0", "data": {"sku": "gems", "price_usd": 4.99}}
UNSTRUCT = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"
MOBILE = {
    "schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1",
    "data": [
        {"schema": "iglu:com.snowplowanalytics.snowplow/mobile_context/jsonschema/1-0-2", "data": {"osType": "android"}}
    ],
}
SNOWPLOW_TAKEN = {
    "structured level up": [sp()],
    "label only": [sp(se_va=None, se_la="forest", se_pr="x", e="se", se_ca="store", se_ac="view")],
    "self-describing, plain": [sp(e="ue", ue_pr=json.dumps({"schema": UNSTRUCT, "data": PURCHASE}))],
    "self-describing, base64": [sp(e="ue", ue_px=b64({"schema": UNSTRUCT, "data": PURCHASE}))],
    "page view": [sp(e="pv", url="https://game.example/store", page="Store")],
    "mobile context names the os": [sp(p="mob", cx=b64(MOBILE))],
    "true time, session id, domain user id": [sp(ttm=str(NOW_MS - 5), sid=str(uuid.uuid4()), uid=None, duid="d-1")],
    "unmapped structured": [sp(se_ca="tutorial", se_ac="done")],
}
SNOWPLOW_LEFT = {
    "level without a number": [sp(se_va=None, se_la="no-number")],
    "numbers not strings": [sp(dtm=NOW_MS)],
    "no eid": [{k: v for k, v in sp().items() if k != "eid"}],
    "two app ids": [sp(aid="other")],
    "bad ue_px": [sp(e="ue", ue_px="!!!")],
    "unknown platform": [sp(p="tv")],
    "no user": [sp(uid=None)],
}


@pytest.mark.parametrize("events", SNOWPLOW_TAKEN.values(), ids=SNOWPLOW_TAKEN.keys())
def test_snowplow_bodies_the_typed_path_takes_become_the_same_events(events):
    typed, expected = snowplow_both([sp(), *events])
    assert typed is not None
    assert typed == expected


@pytest.mark.parametrize("events", SNOWPLOW_LEFT.values(), ids=SNOWPLOW_LEFT.keys())
def test_snowplow_bodies_the_typed_path_cannot_take_alike_are_left_to_the_other(events):
    typed, _ = snowplow_both([sp(), *events])
    assert typed is None


def gameanalytics_both(events: list[dict[str, Any]]) -> tuple[Any, Any]:
    data = json.dumps(events).encode()
    m = mapper("gameanalytics")
    slow = event_by_event(gameanalytics.map_all(m, data, gameanalytics.parse(data)))
    return gameanalytics.typed_events(mapper("gameanalytics"), data), slow


def ga(category: str, **fields: Any) -> dict[str, Any]:
    """An event as GameAnalytics' REST API v2 documents it (an SDK sends these fields)."""
    return {
        "category": category,
        "v": 2,
        "user_id": "ga-user-1",
        "event_uuid": str(uuid.uuid4()),
        "client_ts": int(time.time()) - 60,
        "session_id": str(uuid.uuid4()),
        "session_num": 3,
        "platform": "android",
        "os_version": "android 14",
        "sdk_version": "unity 7.3.0",
        "engine_version": "unity 2022.3.1",
        "device": "Pixel 8",
        "manufacturer": "google",
        "build": "1.8.0",
        "connection_type": "wifi",
        **fields,
    }


GA_TAKEN = {
    "every category": [
        ga("user"),
        ga("progression", event_id="Complete:World01:Stage03", attempt_num=1, score=120),
        ga("business", event_id="Gems:gems_500", amount=499, currency="USD", transaction_num=1),
        ga("resource", event_id="Source:Gold:Reward:LevelEnd", amount=50),
        ga("resource", event_id="Sink:Gold:Weapons:Sword", amount=30.5),
        ga("design", event_id="Tutorial:Step3", value=1),
        ga("session_end", length=312),
        ga("error", severity="critical", message="NullReference"),
    ],
    "custom fields are dropped": [ga("design", event_id="Store:View", custom_fields={"tier": "gold"})],
    "a design event naming its own name field": [ga("design", event_id="A:B", name="mine")],
    "fractional client time, no build": [{**ga("user", client_ts=time.time() - 60), "build": ""}],
}
GA_LEFT = {
    "no uuid": [{k: v for k, v in ga("user").items() if k != "event_uuid"}],
    "uuid not a uuid": [ga("user", event_uuid="1234")],
    "numeric user id": [ga("user", user_id=12)],
    "boolean time": [ga("user", client_ts=True)],
    "unknown platform": [ga("user", platform="gameboy")],
    "long session id": [ga("user", session_id="s" * 65)],
    "no category": [ga("")],
    "deep field": [ga("design", event_id="A", extra=[[[[[[[[1]]]]]]]])],
}


@pytest.mark.parametrize("events", GA_TAKEN.values(), ids=GA_TAKEN.keys())
def test_gameanalytics_bodies_the_typed_path_takes_become_the_same_events(events):
    typed, expected = gameanalytics_both(events)
    assert typed is not None
    assert typed == expected


@pytest.mark.parametrize("events", GA_LEFT.values(), ids=GA_LEFT.keys())
def test_gameanalytics_bodies_the_typed_path_cannot_take_alike_are_left_to_the_other(events):
    typed, _ = gameanalytics_both([ga("user"), *events])
    assert typed is None


def test_a_single_message_route_body_becomes_the_same_event():
    message = {k: v for k, v in seg().items() if k != "type"}  # /v1/track: the route names the type
    data = json.dumps(message).encode()
    raws, _ = segment.parse(data, "track")
    expected = event_by_event(segment.map_all(mapper("segment"), data, raws, "track", None))
    typed = segment.typed_events(mapper("segment"), data, "track")
    assert typed is not None and typed == expected
