"""Segment's own Python library (segment-analytics-python) pointed at the collector."""

from __future__ import annotations

import base64
import gzip
import json
import uuid

import httpx
import pytest
from segment.analytics import Client
from segment.analytics.request import APIError

from features.config import Settings
from tests.vendor_server import INGEST_KEY, dead_letters, serve, stream_events, with_vendors

CONTEXT = {"os": {"name": "iOS", "version": "17.2"}, "app": {"version": "2.3.1"}}


@pytest.fixture
def vendor_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("PLAYERPULSE_TEST_GA_SECRET", "unused-here")
    return with_vendors(settings)


def play_session(client: Client, user: str) -> None:
    """A realistic session as a game would track it with Segment."""
    client.identify(user, {"plan": "free"}, context=CONTEXT)
    client.track(user, "Session Started", {}, context=CONTEXT)
    client.track(user, "Level Up", {"level": 2, "world": "forest"}, context=CONTEXT)
    client.track(user, "Level Up", {"level": 3, "world": "forest"}, context=CONTEXT)
    client.screen(user, name="Store", context=CONTEXT)
    client.track(
        user,
        "Order Completed",
        {"order_id": "o-1", "revenue": 4.99, "currency": "USD", "products": [{"sku": "gems_500", "quantity": 1}]},
        context=CONTEXT,
    )


def test_a_segment_session_lands_on_the_stream_as_playerpulse_events(vendor_settings):
    with serve(vendor_settings) as url:
        errors: list[Exception] = []
        client = Client(INGEST_KEY, host=url, gzip=True, sync_mode=True, on_error=lambda e, _: errors.append(e))
        play_session(client, "player-42")
        client.flush()
    assert errors == []
    landed = sorted(stream_events(vendor_settings), key=lambda e: e["event_time"])
    assert [e["event_type"] for e in landed] == [
        "custom",
        "session_start",
        "level_up",
        "level_up",
        "store_view",
        "purchase",
    ]
    assert {e["player_id"] for e in landed} == {"player-42"}
    assert {(e["platform"], e["app_version"]) for e in landed} == {("ios", "2.3.1")}
    purchase = landed[-1]
    assert purchase["properties"]["price_usd"] == 4.99
    assert purchase["properties"]["sku"] == "gems_500"
    assert purchase["properties"]["order_id"] == "o-1"  # vendor fields without a PlayerPulse place are kept
    assert landed[2]["properties"] == {"level": 2, "world": "forest"}
    assert landed[0]["properties"] == {"name": "identify", "plan": "free"}


def test_batched_sends_of_the_async_client_all_arrive(vendor_settings):
    with serve(vendor_settings) as url:
        client = Client(INGEST_KEY, host=url, gzip=True, upload_size=4)
        for n in range(3):
            play_session(client, f"player-{n}")
        client.flush()
        client.join()
    assert len(stream_events(vendor_settings)) == 18


def test_a_wrong_write_key_is_401_and_nothing_lands(vendor_settings):
    with serve(vendor_settings) as url:
        client = Client("not-a-key", host=url, sync_mode=True, max_retries=0)
        with pytest.raises(APIError) as refused:
            client.track("p1", "Level Up", {"level": 2}, context=CONTEXT)
    assert (refused.value.status, refused.value.code) == (401, "unauthorized")
    assert stream_events(vendor_settings) == []


def _post(url: str, path: str, body: dict, key: str = INGEST_KEY) -> httpx.Response:
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    data = gzip.compress(json.dumps(body).encode())
    return httpx.post(url + path, content=data, headers={"Authorization": auth, "Content-Encoding": "gzip"})


def test_single_track_route_answers_success_and_keeps_a_rejected_message_as_sent(vendor_settings):
    message = {
        "userId": "someone@example.com",  # outside the contract's player_id characters
        "event": "Level Up",
        "properties": {"level": 5},
        "context": CONTEXT,
        "timestamp": "2026-12-01T10:00:00Z",
        "messageId": "not-a-uuid-1",
    }
    with serve(vendor_settings) as url:
        r = _post(url, "/v1/track", message)
    assert (r.status_code, r.json()) == (200, {"success": True})
    assert stream_events(vendor_settings) == []
    [letter] = dead_letters(vendor_settings)
    assert json.loads(letter.raw) == message  # the Segment message, not its mapped form
    assert "player_id" in letter.reason


def test_a_message_id_that_is_not_a_uuid_gets_the_same_derived_id_each_time(vendor_settings):
    message = {"type": "track", "userId": "p7", "event": "Level Up", "properties": {"level": 4}}
    message |= {"context": CONTEXT, "messageId": "ajs-123", "timestamp": "2026-12-01T10:00:00Z"}
    with serve(vendor_settings) as url:
        for _ in range(2):
            assert _post(url, "/v1/batch", {"batch": [message]}).status_code == 200
    ids = [e["event_id"] for e in stream_events(vendor_settings)]
    assert len(ids) == 2 and ids[0] == ids[1]
    assert uuid.UUID(ids[0]).version == 5


def test_unmapped_events_are_rejected_when_the_mapping_says_so(vendor_settings, tmp_path, monkeypatch):
    conf = tmp_path / "conf"
    (conf / "vendors").mkdir(parents=True)
    (conf / "vendors" / "strict.yaml").write_text(
        "unmapped: reject\nsegment:\n  platforms: {ios: ios}\n  events:\n    'track:Level Up': {event_type: level_up}\n"
    )
    monkeypatch.setenv("PLAYERPULSE_CONF_DIR", str(conf))
    strict = with_vendors(vendor_settings, mapping="strict")
    message = {"type": "track", "userId": "p7", "event": "Tutorial Done", "context": CONTEXT}
    with serve(strict) as url:
        assert _post(url, "/v1/batch", {"batch": [message]}).status_code == 200
    [letter] = dead_letters(strict)
    assert "no rule" in letter.reason and json.loads(letter.raw) == message
