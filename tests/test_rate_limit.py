"""Rate limits per ingest key, as a specification: a flood gets 429s, a patient client gets in."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from features.config import DEVELOPMENT_KEYS, GameConfig, Settings, hash_api_key
from features.errors import ConfigError
from serving.app import create_app
from serving.auth import GameKeys
from serving.collector import Collector
from serving.rate_limit import RateLimiter, TokenBucket
from tests_support import make_event

KEY = DEVELOPMENT_KEYS["ingest"]
SECOND_KEY = "pp-second-ingest-key-of-demo"


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limited(settings: Settings, events_per_second: float = 10, burst: int = 1000) -> Settings:
    demo = settings.games["demo"].model_dump(exclude_none=True)
    game = GameConfig.model_validate(
        {
            **demo,
            "ingest_keys": [*demo["ingest_keys"], hash_api_key(SECOND_KEY)],
            "rate_limit": {"events_per_second": events_per_second, "burst": burst},
        }
    )
    return settings.model_copy(update={"games": {"demo": game}})


def collector(settings: Settings, clock: Clock) -> Collector:
    c = Collector.from_settings(settings)
    c.limiter = RateLimiter(settings.games, settings.collector, clock=clock)
    return c


def batch(n: int) -> bytes:
    return json.dumps([make_event(f"p{i % 7}") for i in range(n)]).encode()


def post(c: Collector, n: int, key: str = KEY) -> Any:
    prepared = c.prepare({"authorization": f"Bearer {key}"}, batch(n))
    assert prepared is not None
    return prepared


def test_a_burst_over_the_limit_gets_429s_and_after_the_refill_it_passes(settings):
    clock = Clock()
    c = collector(limited(settings, events_per_second=100, burst=1000), clock)
    assert [post(c, 500).status for _ in range(2)] == [202, 202]
    flood = [post(c, 100) for _ in range(50)]
    assert {p.status for p in flood} == {429}
    assert all(p.accepted == 0 and not p.records and not p.dead_letters for p in flood)
    assert flood[0].retry_after == 1  # 100 events at 100/s
    clock.now += 1.0
    assert post(c, 100).status == 202


def test_retry_after_says_how_long_until_the_batch_would_pass(settings):
    clock = Clock()
    c = collector(limited(settings, events_per_second=50, burst=1000), clock)
    assert post(c, 1000).status == 202
    empty = post(c, 1000)  # refused before decoding: the batch size is not known yet
    assert (empty.status, empty.retry_after) == (429, 1)
    clock.now += 1.0  # 50 tokens back
    short = post(c, 1000)
    assert (short.status, short.retry_after) == (429, 19)
    clock.now += 18.9
    assert post(c, 1000).status == 429
    clock.now += 0.2
    assert post(c, 1000).status == 202


def test_an_empty_bucket_refuses_before_the_body_is_decoded(settings):
    clock = Clock()
    c = collector(limited(settings, events_per_second=1, burst=1000), clock)
    assert post(c, 1000).status == 202
    refused = c.prepare({"authorization": f"Bearer {KEY}"}, b"\x00 not even json")
    assert refused is not None and refused.status == 429 and not refused.dead_letters


def test_each_ingest_key_has_its_own_bucket(settings):
    c = collector(limited(settings, events_per_second=1, burst=1000), Clock())
    assert post(c, 1000).status == 202
    assert post(c, 10).status == 429
    assert post(c, 1000, key=SECOND_KEY).status == 202


def test_a_wrong_key_is_a_401_and_never_gets_a_bucket(settings):
    c = collector(limited(settings), Clock())
    for i in range(100):
        assert post(c, 1, key=f"guess-{i}").status == 401
    assert c.limiter is not None and not c.limiter._buckets


def test_a_game_without_a_limit_is_never_throttled(settings):
    c = collector(settings, Clock())
    assert {post(c, 1000).status for _ in range(20)} == {202}


def test_a_burst_below_one_full_batch_stops_start_up(settings):
    with pytest.raises(ConfigError, match="burst"):
        Collector.from_settings(limited(settings, burst=999))


def test_over_http_a_flood_gets_429_with_retry_after(settings):
    with TestClient(create_app(limited(settings, events_per_second=1, burst=1000))) as client:
        headers = {"Authorization": f"Bearer {KEY}"}
        codes = [client.post("/v1/events", content=batch(400), headers=headers) for _ in range(4)]
    assert [r.status_code for r in codes] == [202, 202, 429, 429]
    assert codes[2].headers["retry-after"] == "200" and "rate limit" in codes[2].json()["error"]


def test_a_bucket_never_holds_more_than_its_burst():
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=5, clock=clock)
    clock.now += 3600
    assert [bucket.take(1) for _ in range(6)][-1] > 0


def test_limits_apply_to_the_keys_game_only(settings):
    keys = GameKeys(limited(settings).games)
    assert keys.game_for(f"Bearer {SECOND_KEY}", "ingest") == "demo"
