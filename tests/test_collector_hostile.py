"""POST /v1/events against hostile bodies: no 500, no event lost behind a 202, no memory blow-up.

Each test is one attack a client could make (issue 6): what the game sees in the answer, what
lands on the stream, and what the dead-letter store keeps.
"""

from __future__ import annotations

import gzip
import json
import tracemalloc
from typing import Any

import pytest
import zstandard
from fastapi.testclient import TestClient

from features.config import Settings
from features.contract import MAX_PROPERTIES_DEPTH, now_ms
from features.deadletter import open_dead_letter_store
from features.streams import decode_batch, open_stream
from serving.app import create_app
from tests_support import make_event

AUTH = {"Authorization": "Bearer pp-demo-key-local-only"}
GZIP = {"Content-Encoding": "gzip"}
ZSTD = {"Content-Encoding": "zstd"}
NDJSON = {"Content-Type": "application/x-ndjson"}
HOUR = 3_600_000
MB = 1_000_000


@pytest.fixture
def client(settings: Settings):
    with TestClient(create_app(settings)) as c:
        yield c


def post(client: TestClient, body: bytes, **headers: str):
    return client.post("/v1/events", content=body, headers={**AUTH, **headers})


def stream_events(settings: Settings) -> list[dict[str, Any]]:
    with open_stream(settings.stream) as s:
        return [e for rec in s.read_all() for e in decode_batch(rec.data)[1]]


def dead_letters(settings: Settings):
    store = open_dead_letter_store(settings.dead_letter)
    try:
        return [d for _, d in store.read(None, 10_000)]
    finally:
        store.close()


def ndjson(*events: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


# --- item 2: every gzip member and zstd frame, nothing after them ------------------------------


def test_a_gzip_body_of_two_members_lands_both_members_events(client, settings):
    first, second = make_event("p1"), make_event("p2")
    r = post(client, gzip.compress(ndjson(first)) + gzip.compress(ndjson(second)), **GZIP, **NDJSON)
    assert r.status_code == 202 and r.json()["accepted"] == 2
    assert {e["event_id"] for e in stream_events(settings)} == {first["event_id"], second["event_id"]}


def test_a_zstd_body_of_two_frames_lands_both_frames_events(client, settings):
    first, second = make_event("p1"), make_event("p2")
    z = zstandard.ZstdCompressor()
    r = post(client, z.compress(ndjson(first)) + z.compress(ndjson(second)), **ZSTD, **NDJSON)
    assert r.status_code == 202 and r.json()["accepted"] == 2
    assert {e["event_id"] for e in stream_events(settings)} == {first["event_id"], second["event_id"]}


@pytest.mark.parametrize("tail", [b"garbage", b"\x00\x00\x00\x00", b"\x1f\x8b"])
def test_bytes_after_the_gzip_data_are_a_400_with_a_dead_letter(client, settings, tail):
    r = post(client, gzip.compress(json.dumps([make_event()]).encode()) + tail, **GZIP)
    assert r.status_code == 400 and "gzip" in r.json()["error"]
    assert stream_events(settings) == []
    assert len(dead_letters(settings)) == 1


@pytest.mark.parametrize("tail", [b"garbage", b"\x28\xb5", b"\x00\x00\x00\x00"])
def test_bytes_after_the_zstd_frames_are_a_400_with_a_dead_letter(client, settings, tail):
    r = post(client, zstandard.ZstdCompressor().compress(json.dumps([make_event()]).encode()) + tail, **ZSTD)
    assert r.status_code == 400 and "zstd" in r.json()["error"]
    assert stream_events(settings) == []
    assert len(dead_letters(settings)) == 1


def test_a_zstd_body_whose_last_frame_is_cut_short_is_a_400(client, settings):
    z = zstandard.ZstdCompressor()
    body = z.compress(ndjson(make_event("p1"))) + z.compress(ndjson(make_event("p2")))[:-5]
    r = post(client, body, **ZSTD, **NDJSON)
    assert r.status_code == 400 and "truncated" in r.json()["error"]
    assert stream_events(settings) == []


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_members_that_decompress_past_the_limit_together_are_a_413(client, settings, encoding):
    limit = settings.collector.max_decompressed_bytes
    part = b" " * (limit // 2 + 1)
    pack = gzip.compress if encoding == "gzip" else zstandard.ZstdCompressor().compress
    r = post(client, pack(b"[" + part) + pack(part + b"]"), **{"Content-Encoding": encoding})
    assert r.status_code == 413
    assert "decompresses to more than" in r.json()["error"]


# --- item 3: hostile JSON is a 400 or a rejection, never a 500 --------------------------------


@pytest.mark.parametrize("depth", [1_000, 10_000, 100_000])
def test_arrays_nested_thousands_deep_are_a_400_with_a_dead_letter(client, settings, depth):
    r = post(client, b"[" * depth + b"]" * depth)
    assert r.status_code == 400 and "nest" in r.json()["error"]
    assert len(dead_letters(settings)) == 1


def test_properties_nested_as_deep_as_the_contract_allows_are_accepted(client, settings):
    r = post(client, json.dumps([make_event(properties=nested(MAX_PROPERTIES_DEPTH))]).encode())
    assert r.json() == {"accepted": 1, "rejected": 0, "errors": []}


def with_properties_nested(depth: int, player: str = "p2") -> bytes:
    """An event whose properties nest ``depth`` levels, as JSON text (``json.dumps`` recurses)."""
    head = json.dumps(make_event(player, properties="PROPS")).encode()
    return head.replace(b'"PROPS"', b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1))


@pytest.mark.parametrize("depth", [MAX_PROPERTIES_DEPTH + 1, 50, 400])
def test_properties_nested_deeper_than_the_contract_allows_are_rejected_with_a_dead_letter(client, settings, depth):
    ok = make_event("p1")
    r = post(client, b"[" + json.dumps(ok).encode() + b"," + with_properties_nested(depth) + b"]")
    assert r.status_code == 202, r.text
    answer = r.json()
    assert answer["accepted"] == 1 and answer["errors"][0]["index"] == 1
    assert f"properties nest deeper than {MAX_PROPERTIES_DEPTH} levels" in answer["errors"][0]["reason"]
    assert [e["event_id"] for e in stream_events(settings)] == [ok["event_id"]]
    assert [d.index for d in dead_letters(settings)] == [1]


@pytest.mark.parametrize("depth", [955, 956, 5_000, 100_000])
@pytest.mark.parametrize("headers", [{}, NDJSON], ids=["json", "ndjson"])
def test_properties_nested_as_deep_as_python_recursion_are_never_accepted_nor_a_500(client, settings, depth, headers):
    ok = json.dumps(make_event("p1")).encode()
    spoiled = with_properties_nested(depth)
    r = post(client, ok + b"\n" + spoiled if headers else b"[" + ok + b"," + spoiled + b"]", **headers)
    assert r.status_code in (202, 400), r.text
    letters = dead_letters(settings)
    if r.status_code == 202:  # rejected on its own
        assert r.json()["accepted"] == 1 and [e["index"] for e in r.json()["errors"]] == [1]
        assert [d.index for d in letters] == [1]
    else:  # the body nests deeper than the decoder follows
        assert "nest" in r.json()["error"] and len(letters) == 1
        assert stream_events(settings) == []


@pytest.mark.parametrize(
    "bad",
    [b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"\\udc80", b"\\ud800x"],
    ids=["invalid-byte", "cut-sequence", "encoded-surrogate", "lone-low-surrogate", "lone-high-surrogate"],
)
@pytest.mark.parametrize("headers", [{}, NDJSON], ids=["json", "ndjson"])
def test_mis_encoded_strings_are_a_400_or_a_rejection_with_a_dead_letter(client, settings, bad, headers):
    ok = make_event("p1")
    spoiled = json.dumps(make_event("p2", app_version="SPOIL")).encode().replace(b"SPOIL", bad)
    body = ndjson(ok) + spoiled if headers else b"[" + json.dumps(ok).encode() + b"," + spoiled + b"]"
    r = post(client, body, **headers)
    assert r.status_code in (202, 400), r.text
    letters = dead_letters(settings)
    if r.status_code == 202:
        assert r.json()["accepted"] == 1 and [e["index"] for e in r.json()["errors"]] == [1]
        assert [d.index for d in letters] == [1]
    else:
        assert len(letters) == 1 and stream_events(settings) == []


def test_a_byte_order_mark_is_a_400_with_a_dead_letter(client, settings):
    r = post(client, b"\xef\xbb\xbf" + json.dumps([make_event()]).encode())
    assert r.status_code == 400
    assert len(dead_letters(settings)) == 1


def test_a_rejection_reason_quoting_a_huge_field_name_stays_short(client, settings):
    r = post(client, json.dumps([{**make_event(), "x" * 100_000: 1}]).encode())
    (error,) = r.json()["errors"]
    assert "unknown field" in error["reason"] and len(error["reason"]) <= 300
    assert len(dead_letters(settings)[0].reason) <= 400


# --- item 4: amplification --------------------------------------------------------------------


def peak_bytes_of(call) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "items",
    [b"{}", b"[]", b"0", b'""'],
    ids=["objects", "arrays", "numbers", "strings"],
)
@pytest.mark.parametrize("wrapper", ["array", "nested", "ndjson"])
def test_a_small_body_of_millions_of_items_is_a_413_without_building_them(client, settings, items, wrapper):
    limit = settings.collector.max_decompressed_bytes
    count = limit // (len(items) + 1) - 4
    if wrapper == "ndjson":
        data = (items + b"\n") * count
    else:
        data = b"[" + b",".join([items] * count) + b"]"
        data = b"[" + data + b"]" if wrapper == "nested" else data
    body = gzip.compress(data, 9)
    assert len(body) < 50_000  # a small request on the wire
    r, peak = peak_bytes_of(lambda: post(client, body, **GZIP, **(NDJSON if wrapper == "ndjson" else {})))
    assert r.status_code == 413, r.text
    assert peak < 3 * limit, f"peak {peak / MB:.0f} MB for a {len(body)} B request"


def test_invalid_events_grow_the_dead_letter_store_by_a_bounded_amount(client, settings):
    cfg = settings.collector
    events = [{"kind": "x" * 30_000, "n": i} for i in range(30)]
    r = post(client, gzip.compress(json.dumps(events).encode()), **GZIP)
    assert r.status_code == 202 and r.json()["rejected"] == 30
    letters = dead_letters(settings)
    assert [d.index for d in letters] == list(range(30))  # every rejection keeps its letter
    assert all(len(d.raw.encode()) <= cfg.max_dead_letter_bytes for d in letters)
    assert sum(len(d.raw.encode()) for d in letters) <= cfg.max_dead_letter_bytes_per_request
    assert all("truncated" in d.reason for d in letters)


def test_a_small_invalid_event_is_kept_whole_and_as_sent(client, settings):
    body = b'[ {"event_type": "nope",  "n": 1} ]'
    post(client, body)
    (letter,) = dead_letters(settings)
    assert json.loads(letter.raw) == {"event_type": "nope", "n": 1}
    assert "truncated" not in letter.reason


# --- item 7: the clock-skew correction is bounded ------------------------------------------------


@pytest.mark.parametrize("device_time", [1_000, 32_503_000_000_000], ids=["1970", "2999"])
def test_a_device_clock_far_from_the_collectors_is_rejected_with_its_reason(client, settings, device_time):
    r = post(client, json.dumps([make_event(event_time=device_time, sent_at=device_time)]).encode())
    (error,) = r.json()["errors"]
    assert "sent_at" in error["reason"] and "24 h" in error["reason"]
    assert stream_events(settings) == []
    assert len(dead_letters(settings)) == 1


def test_a_device_clock_off_by_less_than_the_bound_is_corrected(client, settings):
    skew = 23 * HOUR
    now = now_ms()
    r = post(client, json.dumps([make_event(event_time=now - 60_000 + skew, sent_at=now + skew)]).encode())
    assert r.json()["accepted"] == 1


def test_the_clock_skew_bound_comes_from_configuration(settings):
    from serving.auth import GameKeys
    from serving.collector import Collector

    tight = Collector(settings.collector.model_copy(update={"max_clock_skew_hours": 1.0}), GameKeys(settings.games))
    now = now_ms()
    body = json.dumps([make_event(event_time=now - 60_000 + 2 * HOUR, sent_at=now + 2 * HOUR)]).encode()
    prepared = tight.prepare({"authorization": AUTH["Authorization"]}, body)
    assert prepared.accepted == 0
    assert "1 h" in prepared.errors[0]["reason"]
