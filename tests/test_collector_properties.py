"""Property: no body or header set makes the collector answer 5xx or lose an accepted event."""

from __future__ import annotations

import gzip
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


bodies = st.one_of(
    st.binary(max_size=300),
    st.tuples(st.lists(plausible_event | json_value, max_size=8), st.sampled_from(["array", "object", "ndjson"])).map(
        lambda t: encode(*t)
    ),
)
compression = st.sampled_from(["none", "gzip", "zstd", "gzip-header-only", "bogus"])
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


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, how=compression, hdrs=headers)
def test_no_request_gets_a_5xx_and_every_accepted_event_is_on_the_stream(app_and_settings, body, how, hdrs):
    client, s = app_and_settings
    sent = dict(hdrs)
    if how == "gzip":
        body, sent["content-encoding"] = gzip.compress(body), "gzip"
    elif how == "zstd":
        body, sent["content-encoding"] = zstandard.ZstdCompressor().compress(body), "zstd"
    elif how == "gzip-header-only":
        sent["content-encoding"] = "gzip"
    elif how == "bogus":
        sent["content-encoding"] = "deflate2"
    before = total_on_stream(s)
    r = client.post("/v1/events", content=body, headers=sent)
    assert r.status_code < 500, r.text
    assert r.status_code in (202, 400, 401, 413, 415)
    after = total_on_stream(s)
    if r.status_code == 202:
        answer = r.json()
        assert after - before == answer["accepted"]
        assert answer["accepted"] + answer["rejected"] == answer["accepted"] + len(answer["errors"])
    else:
        assert after == before
