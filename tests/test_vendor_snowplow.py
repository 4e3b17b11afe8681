"""Snowplow's own Python tracker (snowplow-tracker) pointed at the collector."""

from __future__ import annotations

import json

import httpx
import pytest
from snowplow_tracker import Emitter, SelfDescribing, SelfDescribingJson, StructuredEvent, Subject, Tracker

from features.config import Settings
from serving.vendors.snowplow import PIXEL
from tests.vendor_server import INGEST_KEY, dead_letters, serve, stream_events, with_vendors

MOBILE = SelfDescribingJson(
    "iglu:com.snowplowanalytics.snowplow/mobile_context/jsonschema/1-0-2",
    {"osType": "android", "osVersion": "14", "deviceManufacturer": "Pixel", "deviceModel": "8"},
)
PURCHASE = "iglu:com.example.game/purchase/jsonschema/1-0-0"


@pytest.fixture
def vendor_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("PLAYERPULSE_TEST_GA_SECRET", "unused-here")
    return with_vendors(settings)


def tracker(url: str, method: str = "post", app_id: str = INGEST_KEY, failures: list | None = None) -> Tracker:
    """A game's tracker: the collector is the game's path, the app id its ingest key."""
    on_failure = (lambda sent, evs: failures.append(sent)) if failures is not None else None
    emitter = Emitter(f"{url}/demo", method=method, batch_size=50, on_failure=on_failure)
    subject = Subject().set_user_id("player-7").set_platform("mob")
    return Tracker("game", emitter, subject=subject, app_id=app_id)


def play_session(t: Tracker) -> None:
    ctx = [MOBILE]
    t.track(StructuredEvent("session", "start", context=ctx))
    t.track(StructuredEvent("level", "up", label="forest", value=2, context=ctx))
    t.track(StructuredEvent("level", "up", label="forest", value=3, context=ctx))
    t.track(StructuredEvent("store", "view", context=ctx))
    t.track(SelfDescribing(SelfDescribingJson(PURCHASE, {"sku": "gems_500", "price_usd": 4.99}), context=ctx))
    t.flush()


def test_a_snowplow_session_posted_by_the_tracker_lands_as_playerpulse_events(vendor_settings):
    with serve(vendor_settings) as url:
        play_session(tracker(url))
    landed = sorted(stream_events(vendor_settings), key=lambda e: e["event_time"])
    assert [e["event_type"] for e in landed] == ["session_start", "level_up", "level_up", "store_view", "purchase"]
    assert {(e["player_id"], e["platform"], e["app_version"]) for e in landed} == {("player-7", "android", "unknown")}
    assert [e["properties"].get("level") for e in landed[1:3]] == [2, 3]
    assert landed[1]["properties"]["label"] == "forest"
    assert landed[-1]["properties"] == {"sku": "gems_500", "price_usd": 4.99}
    assert all(INGEST_KEY not in json.dumps(e) for e in landed)  # the app id carrying the key is never stored


def test_the_get_pixel_answers_a_gif_and_lands_the_event(vendor_settings):
    with serve(vendor_settings) as url:
        t = tracker(url, method="get")
        t.track(StructuredEvent("level", "up", value=9, context=[MOBILE]))
        t.flush()
        r = httpx.get(
            f"{url}/demo/i",
            params={
                "e": "se",
                "se_ca": "ad",
                "se_ac": "view",
                "aid": INGEST_KEY,
                "uid": "p9",
                "p": "web",
                "dtm": str(stream_now()),
            },
        )
    assert (r.status_code, r.headers["content-type"], r.content) == (200, "image/gif", PIXEL)
    assert sorted(e["event_type"] for e in stream_events(vendor_settings)) == ["ad_view", "level_up"]


def stream_now() -> int:
    from features.contract import now_ms

    return now_ms()


def test_an_app_id_that_is_not_the_games_ingest_key_is_401(vendor_settings):
    failures: list[int] = []
    with serve(vendor_settings) as url:
        t = tracker(url, app_id="my-game", failures=failures)
        t.track(StructuredEvent("level", "up", value=2, context=[MOBILE]))
        t.flush()
    assert failures == [0]  # nothing sent successfully, and 401 is not retried
    assert stream_events(vendor_settings) == []


def test_an_event_its_rule_cannot_map_is_dead_lettered_as_sent_less_the_key(vendor_settings):
    with serve(vendor_settings) as url:
        t = tracker(url)
        t.track(StructuredEvent("level", "up", label="no-number", context=[MOBILE]))  # level_up needs a level
        t.track(StructuredEvent("level", "up", value=4, context=[MOBILE]))
        t.flush()
    assert [e["properties"]["level"] for e in stream_events(vendor_settings)] == [4]
    [letter] = dead_letters(vendor_settings)
    sent = json.loads(letter.raw)
    assert (sent["e"], sent["se_ca"], sent["se_la"]) == ("se", "level", "no-number")
    assert "aid" not in sent
    assert "se.label" in letter.reason
