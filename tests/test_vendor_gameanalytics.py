"""GameAnalytics' REST API v2 as its documentation specifies it (signed, gzip'd bodies)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import time
import uuid

import httpx
import pytest

from features.config import Settings
from tests.vendor_server import GA_GAME_KEY, GA_SECRET, GA_SECRET_ENV, dead_letters, serve, stream_events, with_vendors


@pytest.fixture
def vendor_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv(GA_SECRET_ENV, GA_SECRET)
    return with_vendors(settings)


def signed_post(url: str, path: str, payload: object, secret: str = GA_SECRET) -> httpx.Response:
    body = gzip.compress(json.dumps(payload).encode())
    auth = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    headers = {"Authorization": auth, "Content-Encoding": "gzip", "Content-Type": "application/json"}
    return httpx.post(f"{url}/v2/{GA_GAME_KEY}/{path}", content=body, headers=headers)


def ga_event(category: str, **fields: object) -> dict[str, object]:
    return {
        "category": category,
        "v": 2,
        "user_id": "ga-user-1",
        "event_uuid": str(uuid.uuid4()),
        "client_ts": int(time.time()) - 5,
        "session_id": str(uuid.uuid4()),
        "session_num": 3,
        "platform": "android",
        "os_version": "android 14",
        "sdk_version": "rest api v2",
        "device": "Pixel 8",
        "manufacturer": "google",
        "build": "1.8.0",
        **fields,
    }


def test_init_answers_enabled_with_the_server_time(vendor_settings):
    with serve(vendor_settings) as url:
        r = signed_post(url, "init", {"platform": "android", "os_version": "android 14", "sdk_version": "rest api v2"})
    assert r.status_code == 200
    assert r.json()["enabled"] is True and abs(r.json()["server_ts"] - time.time()) < 5


def test_each_category_becomes_its_playerpulse_event(vendor_settings):
    events = [
        ga_event("user"),
        ga_event("progression", event_id="Complete:World01:Stage03", attempt_num=1, score=120),
        ga_event("business", event_id="Gems:gems_500", amount=499, currency="USD", transaction_num=1),
        ga_event("resource", event_id="Source:Gold:Reward:LevelEnd", amount=50),
        ga_event("resource", event_id="Sink:Gold:Weapons:Sword", amount=30),
        ga_event("design", event_id="Tutorial:Step3", value=1),
        ga_event("session_end", length=312),
    ]
    with serve(vendor_settings) as url:
        r = signed_post(url, "events", events)
    assert r.status_code == 200
    landed = {e["event_id"]: e for e in stream_events(vendor_settings)}
    got = [landed[str(e["event_uuid"])] for e in events]
    assert [e["event_type"] for e in got] == [
        "session_start",
        "level_up",
        "purchase",
        "currency_earn",
        "currency_spend",
        "custom",
        "session_end",
    ]
    assert got[1]["properties"]["level"] == 3
    assert (got[2]["properties"]["price_usd"], got[2]["properties"]["sku"]) == (4.99, "gems_500")
    assert (got[3]["properties"]["currency"], got[3]["properties"]["amount"]) == ("Gold", 50)
    assert got[5]["properties"]["name"] == "Tutorial:Step3"
    assert got[6]["properties"]["duration_s"] == 312
    assert {(e["player_id"], e["platform"], e["app_version"]) for e in got} == {("ga-user-1", "android", "1.8.0")}
    assert all("device" not in e["properties"] for e in got)


def test_a_bad_signature_is_401_and_nothing_lands(vendor_settings):
    with serve(vendor_settings) as url:
        r = signed_post(url, "events", [ga_event("user")], secret="not-the-secret")
        unknown_game = httpx.post(f"{url}/v2/0000/events", content=b"[]", headers={"Authorization": "x"})
    assert (r.status_code, unknown_game.status_code) == (401, 401)
    assert stream_events(vendor_settings) == []


def test_invalid_events_are_listed_in_a_400_and_the_valid_ones_kept(vendor_settings):
    bad = ga_event("progression", event_id="Complete:World01:Stage03", platform="gameboy")
    with serve(vendor_settings) as url:
        r = signed_post(url, "events", [ga_event("user"), bad])
    assert r.status_code == 400
    assert r.json()["accepted"] == 1 and [e["index"] for e in r.json()["errors"]] == [1]
    [letter] = dead_letters(vendor_settings)
    assert json.loads(letter.raw) == bad and "platform" in letter.reason


def test_a_missing_secret_stops_start_up_naming_the_variable(settings, monkeypatch):
    from features.errors import ConfigError
    from serving.routes.vendors import VendorIngest
    from serving.state import ServingState

    monkeypatch.delenv(GA_SECRET_ENV, raising=False)
    state = ServingState(with_vendors(settings))
    with pytest.raises(ConfigError, match=GA_SECRET_ENV):
        VendorIngest(state.settings, state.collector)
