"""Property: no body or header set makes the collector answer 5xx, lose an accepted event, or
reject one without a dead letter: plausible events, nested, multi-member (gzip members, zstd
frames), mis-encoded (bad UTF-8, lone surrogates, BOMs) and huge-count bodies."""

from __future__ import annotations

import gzip
import itertools
import json
import string

import pytest
import zstandard
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from features.config import load_settings
from features.contract import EVENT_TYPES, PLATFORMS, now_ms
from features.deadletter import open_dead_letter_store
from features.streams import decode_batch, open_stream
from serving.app import create_app

KEY = "pp-demo-key-local-only"

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
json_value = st.recursive(
    json_leaf, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=12
)

plausible_event = st.fixed_dictionaries(
    {
        "event_id": st.uuids().map(str) | st.text(max_size=40),
        "event_type": st.sampled_from(EVENT_TYPES) | st.text(max_size=12),
        "player_id": st.text(alphabet=string.ascii_letters + string.digits + "_-.:", min_size=0, max_size=70),
        "game_id": st.sampled_from(["demo", "other", ""]),
        "event_time": st.integers(min_value=-10, max_value=now_ms() + 10**9)
        | st.sampled_from(["2026-11-28T10:00:00Z", "yesterday", ""])
        | st.just(now_ms() - 5000),
        "platform": st.sampled_from(PLATFORMS) | st.text(max_size=5),
        "app_version": st.text(max_size=70),
    },
    optional={
        "sent_at": st.integers(min_value=0, max_value=now_ms() + 10**9) | st.text(max_size=10),
        "country": st.text(max_size=3),
        "session_id": st.text(max_size=70),
        "properties": json_value,
        "surprise": json_value,
    },
)


def encode(items, shape: str) -> bytes:
    if shape == "array":
        return json.dumps(items).encode()
    if shape == "object":
        return json.dumps({"events": items}).encode()
    return "\n".join(json.dumps(i) for i in items).encode()


json_bodies = st.tuples(
    st.lists(plausible_event | json_value, max_size=8), st.sampled_from(["array", "object", "ndjson"])
).map(lambda t: encode(*t))


def nest(depth: int, kind: str) -> bytes:
    if kind == "arrays":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"{}" + b"}" * depth


@st.composite
def nested_bodies(draw) -> bytes:
    depth = draw(st.sampled_from([7, 8, 9, 50, 900, 1_000, 10_000, 100_000]))
    if draw(st.booleans()):
        return nest(depth, "arrays")
    event = draw(plausible_event)
    text = json.dumps({**event, "properties": "NESTED"}).encode()
    return b"[" + text.replace(b'"NESTED"', nest(depth, "objects")) + b"]"


MISENCODINGS = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\\udc80", b"\\ud800", b"\xef\xbb\xbf", b"\xfe\xff", b"\x00"]


@st.composite
def misencoded_bodies(draw) -> bytes:
    body = draw(json_bodies)
    bad = draw(st.sampled_from(MISENCODINGS))
    if draw(st.booleans()):
        return bad + body  # a BOM (or other junk) in front
    at = draw(st.integers(min_value=0, max_value=len(body)))
    return body[:at] + bad + body[at:]


def many(item: bytes, count: int, shape: str) -> bytes:
    """``count`` copies of a tiny JSON item: a few KB of gzip that unpack to megabytes."""
    if shape == "ndjson":
        return (item + b"\n") * count
    array = b"[" + b",".join([item] * count) + b"]"
    return b"[" + array + b"]" if shape == "nested" else array


huge_count_bodies = st.builds(
    many,
    st.sampled_from([b"{}", b"[]", b"0", b'""', b'"a,b"', b"null"]),
    st.sampled_from([1_001, 20_000, 140_000, 2_000_000]),
    st.sampled_from(["array", "nested", "ndjson"]),
)

bodies = st.one_of(st.binary(max_size=300), json_bodies, nested_bodies(), misencoded_bodies(), huge_count_bodies)
compression = st.sampled_from(["none", "gzip", "zstd", "gzip-members", "zstd-frames", "gzip-header-only", "bogus"])
headers = st.fixed_dictionaries(
    {},
    optional={
        "authorization": st.sampled_from([f"Bearer {KEY}", "Bearer x", "", "Basic abc", f"bearer {KEY}"]),
        "content-type": st.sampled_from(["application/json", "application/x-ndjson", "text/plain", ""]),
    },
)


@pytest.fixture(scope="module")
def app_and_settings(tmp_path_factory):
    s = load_settings("local", tmp_path_factory.mktemp("props") / "var")
    with TestClient(create_app(s)) as client:
        yield client, s


def total_on_stream(s) -> int:
    with open_stream(s.stream) as stream:
        return sum(len(decode_batch(r.data)[1]) for r in stream.read_all())


def total_dead_letters(s) -> int:
    store = open_dead_letter_store(s.dead_letter)
    try:
        return len(store.read(None, 1_000_000))
    finally:
        store.close()


def split(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(body)) for c in cuts} | {0, len(body)})
    return [body[a:b] for a, b in itertools.pairwise(points)] or [b""]


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, how=compression, hdrs=headers, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=3))
def test_no_request_gets_a_5xx_and_every_accepted_event_is_on_the_stream(app_and_settings, body, how, hdrs, cuts):
    client, s = app_and_settings
    sent = dict(hdrs)
    if how == "gzip":
        body, sent["content-encoding"] = gzip.compress(body), "gzip"
    elif how == "zstd":
        body, sent["content-encoding"] = zstandard.ZstdCompressor().compress(body), "zstd"
    elif how == "gzip-members":
        body, sent["content-encoding"] = b"".join(gzip.compress(p) for p in split(body, cuts)), "gzip"
    elif how == "zstd-frames":
        z = zstandard.ZstdCompressor()
        body, sent["content-encoding"] = b"".join(z.compress(p) for p in split(body, cuts)), "zstd"
    elif how == "gzip-header-only":
        sent["content-encoding"] = "gzip"
    elif how == "bogus":
        sent["content-encoding"] = "deflate2"
    before, letters_before = total_on_stream(s), total_dead_letters(s)
    r = client.post("/v1/events", content=body, headers=sent)  # an exception out of prepare fails here
    assert r.status_code < 500, r.text
    assert r.status_code in (202, 400, 401, 413, 415)
    after, letters = total_on_stream(s), total_dead_letters(s) - letters_before
    if r.status_code == 202:
        answer = r.json()
        assert after - before == answer["accepted"]
        assert answer["rejected"] == len(answer["errors"]) == letters  # every rejection has its dead letter
    else:
        assert after == before
        assert letters == (1 if r.status_code == 400 else 0)
