"""POST /v1/events as a game sees it: what is accepted, rejected, and what lands where."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
import zstandard
from fastapi.testclient import TestClient

from features.config import DEVELOPMENT_KEYS, Settings
from features.deadletter import open_dead_letter_store
from features.errors import StreamUnavailable
from features.streams import decode_batch, open_stream
from serving.app import create_app
from tests_support import make_event

KEY = "pp-demo-key-local-only"
AUTH = {"Authorization": f"Bearer {KEY}"}


event = make_event


@pytest.fixture
def client(settings: Settings):
    with TestClient(create_app(settings)) as c:
        yield c


def stream_events(settings: Settings) -> list[dict[str, Any]]:
    with open_stream(settings.stream) as s:
        return [e for rec in s.read_all() for e in decode_batch(rec.data)[1]]


def dead_letters(settings: Settings):
    store = open_dead_letter_store(settings.dead_letter)
    try:
        return [d for _, d in store.read(None, 1000)]
    finally:
        store.close()


def post(client: TestClient, body: bytes, **headers: str):
    return client.post("/v1/events", content=body, headers={**AUTH, **headers})


def test_gzip_batch_is_acknowledged_and_on_the_stream(client, settings):
    events = [event("p1"), event("p2"), event("p1")]
    r = post(client, gzip.compress(json.dumps({"events": events}).encode()), **{"Content-Encoding": "gzip"})
    assert r.status_code == 202
    assert r.json() == {"accepted": 3, "rejected": 0, "errors": []}
    landed = stream_events(settings)
    assert sorted(e["event_id"] for e in landed) == sorted(e["event_id"] for e in events)
    assert all(e["received_at"] > 0 for e in landed)


def test_one_players_events_travel_in_one_record_in_order(client, settings):
    events = [event("p7", event_type=t) for t in ("session_start", "store_view", "session_end")]
    post(client, json.dumps(events).encode())
    with open_stream(settings.stream) as s:
        records = list(s.read_all())
    assert len(records) == 1
    stream_at, decoded = decode_batch(records[0].data)
    assert [e["event_type"] for e in decoded] == ["session_start", "store_view", "session_end"]
    assert stream_at >= decoded[0]["received_at"]


def test_json_array_ndjson_and_zstd_bodies_are_all_accepted(client):
    assert post(client, json.dumps([event()]).encode()).json()["accepted"] == 1
    ndjson = "\n".join(json.dumps(event()) for _ in range(2)).encode()
    assert post(client, ndjson, **{"Content-Type": "application/x-ndjson"}).json()["accepted"] == 2
    z = zstandard.ZstdCompressor().compress(json.dumps([event()]).encode())
    assert post(client, z, **{"Content-Encoding": "zstd"}).json()["accepted"] == 1


def test_invalid_events_are_reported_by_index_and_dead_lettered_with_reason(client, settings):
    bad = event(event_type="teleport")
    r = post(client, json.dumps([event(), bad, "not an object"]).encode())
    body = r.json()
    assert r.status_code == 202
    assert body["accepted"] == 1 and body["rejected"] == 2
    assert [e["index"] for e in body["errors"]] == [1, 2]
    assert "event_type" in body["errors"][0]["reason"]
    letters = dead_letters(settings)
    assert [d.index for d in letters] == [1, 2]
    assert json.loads(letters[0].raw)["event_type"] == "teleport"
    assert letters[0].reason == body["errors"][0]["reason"]


def test_event_of_another_game_is_rejected(client):
    r = post(client, json.dumps([event(game_id="othergame")]).encode())
    assert r.json()["rejected"] == 1
    assert "game_id does not match" in r.json()["errors"][0]["reason"]


def test_event_far_in_the_future_is_rejected(client):
    from features.contract import now_ms

    r = post(client, json.dumps([event(event_time=now_ms() + 3 * 86_400_000)]).encode())
    assert "future" in r.json()["errors"][0]["reason"]


def test_device_clock_skew_is_corrected_before_the_time_bounds_apply(client):
    from features.contract import now_ms

    ahead = 3 * 3_600_000  # device clock 3 h fast: its event_time looks 3 h in the future
    r = post(client, json.dumps([event(event_time=now_ms() + ahead, sent_at=now_ms() + ahead)]).encode())
    assert r.json()["accepted"] == 1


@pytest.mark.parametrize("auth", [None, "Bearer wrong-key", "Basic cHA6cHA="])
def test_missing_or_wrong_key_gets_401(client, auth):
    headers = {"Authorization": auth} if auth else {}
    r = client.post("/v1/events", content=json.dumps([event()]).encode(), headers=headers)
    assert r.status_code == 401
    assert "API key" in r.json()["error"]


def test_unknown_encoding_gets_415(client):
    r = post(client, b"x", **{"Content-Encoding": "br"})
    assert r.status_code == 415


def test_unparseable_body_gets_400_and_is_dead_lettered(client, settings):
    r = post(client, b"{not json")
    assert r.status_code == 400
    assert "not valid JSON" in r.json()["error"]
    assert dead_letters(settings)[0].raw == "{not json"


def test_body_over_the_limit_gets_413(client, settings):
    big = b"[" + b" " * (settings.collector.max_body_bytes + 1) + b"]"
    assert post(client, big).status_code == 413


def test_gzip_bomb_gets_413_without_inflating_it(client, settings):
    bomb = gzip.compress(b"[" + b" " * (settings.collector.max_decompressed_bytes * 4) + b"]")
    assert len(bomb) < settings.collector.max_body_bytes
    r = post(client, bomb, **{"Content-Encoding": "gzip"})
    assert r.status_code == 413
    assert "decompresses" in r.json()["error"]


def test_too_many_events_in_one_request_gets_413(client, settings):
    events = [event() for _ in range(settings.collector.max_events_per_batch + 1)]
    r = post(client, gzip.compress(json.dumps(events).encode()), **{"Content-Encoding": "gzip"})
    assert r.status_code == 413
    assert "split the batch" in r.json()["error"]


def test_stream_failure_gets_503_with_retry_after(settings, monkeypatch):
    from features.streams.sqlite import SqliteStream

    def refuse(self, records):
        raise StreamUnavailable("disk full")

    monkeypatch.setattr(SqliteStream, "put", refuse)
    with TestClient(create_app(settings)) as c:
        r = c.post("/v1/events", content=json.dumps([event()]).encode(), headers=AUTH)
    assert r.status_code == 503
    assert r.headers["Retry-After"].isdigit()


def test_metrics_count_accepted_and_rejected_by_reason(client):
    post(client, json.dumps([event(), event(event_type="teleport")]).encode())
    text = client.get("/metrics", headers={"Authorization": f"Bearer {DEVELOPMENT_KEYS['metrics']}"}).text
    assert 'playerpulse_events_accepted_total{game="demo"} 1.0' in text
    assert 'playerpulse_events_rejected_total{reason="invalid_event_type"} 1.0' in text


def test_metrics_time_the_collector_hop_of_every_accepted_request(client):
    post(client, json.dumps([event()]).encode())
    post(client, json.dumps([event()]).encode())
    text = client.get("/metrics", headers={"Authorization": f"Bearer {DEVELOPMENT_KEYS['metrics']}"}).text
    assert 'playerpulse_hop_seconds_count{hop="collector"} 2.0' in text


def test_a_record_is_stamped_by_the_stream_after_the_collectors_own_stamp(client, settings):
    post(client, json.dumps([event("p3")]).encode())
    with open_stream(settings.stream) as s:
        (record,) = s.read_all()
    collectors_stamp, (decoded,) = decode_batch(record.data)
    assert record.stream_at is not None
    assert decoded["received_at"] <= collectors_stamp <= record.stream_at


def test_openapi_document_describes_every_route_and_the_event_contract(client):
    doc = client.get("/openapi.json").json()
    assert {
        "/v1/events",
        "/v1/players/{player_id}/profile",
        "/v1/models/{model}/predict",
        "/healthz",
        "/metrics",
    } <= set(doc["paths"])
    assert "event_id" in doc["components"]["schemas"]["Event"]["properties"]
    assert {"202", "400", "401", "413", "415", "503"} <= set(doc["paths"]["/v1/events"]["post"]["responses"])


def test_a_players_events_beyond_one_record_are_split_in_order(settings):
    import random
    import string

    from serving.auth import GameKeys
    from serving.collector import MAX_RECORD_BYTES, Collector

    rng = random.Random(1)
    noise = lambda: "".join(rng.choices(string.ascii_letters, k=30_000))  # noqa: E731 - incompressible text
    events = [event("big", properties={f"k{j}": noise() for j in range(2)}) for _ in range(40)]
    body = json.dumps(events).encode()
    prepared = Collector(
        settings.collector.model_copy(
            update={"max_decompressed_bytes": len(body) + 1, "max_body_bytes": len(body) + 1}
        ),
        GameKeys(settings.games),
    ).prepare({"authorization": AUTH["Authorization"]}, body)
    assert prepared.accepted == 40
    assert len(prepared.records) > 1
    assert all(len(r.data) <= MAX_RECORD_BYTES for r in prepared.records)
    order = [e["event_id"] for r in prepared.records for e in decode_batch(r.data)[1]]
    assert order == [e["event_id"] for e in events]


def test_dead_letters_of_one_request_share_a_request_id(client, settings):
    post(client, json.dumps([event(event_type="x"), event(event_type="y")]).encode())
    post(client, json.dumps([event(event_type="z")]).encode())
    ids = [d.request_id for d in dead_letters(settings)]
    assert ids[0] and ids[0] == ids[1] != ids[2]
