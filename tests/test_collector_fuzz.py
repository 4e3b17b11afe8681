"""Fuzzing, at the suite's scale: nothing a client sends makes ``Collector.prepare`` raise or
answer 5xx, and with pseudonymisation and a ``default: drop`` policy on, nothing it sends gets a
raw player id or a dropped value into a stream record or a dead letter.

``benchmarks/fuzz.py`` runs the same checks for as long as it is given; here hypothesis drives
structured attacks and raw bytes, and the benchmark's own mutation loop runs for two seconds.
"""

from __future__ import annotations

import gzip
import json
import string
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from benchmarks import fuzz
from features.contract import EVENT_TYPES, PLATFORMS, now_ms
from serving.collector import Collector

MARKER = fuzz.MARKER

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12))
json_value = st.recursive(
    json_leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3), max_leaves=10
)
email_name = st.sampled_from(["email", "EMAIL", "eMail", "Email"])


@st.composite
def smuggled(draw: st.DrawFn) -> object:
    """A value with the marker under a policy-dropped name, somewhere down a random path."""
    inner: object = {draw(email_name): MARKER}
    for _ in range(draw(st.integers(0, 9))):
        key = draw(st.sampled_from(["cart", "sku", "note", "items", "email"]))
        inner = [inner] if draw(st.booleans()) else {key: inner}
    return inner


attacker_event = st.fixed_dictionaries(
    {
        "event_id": st.uuids().map(str) | st.text(max_size=40),
        "event_type": st.sampled_from(EVENT_TYPES) | st.text(max_size=8),
        "player_id": st.text(alphabet=string.ascii_letters + string.digits + "_-.:@ ", max_size=70).map(
            lambda s: "player-" + s
        ),
        "game_id": st.sampled_from(["demo", "demo", "other"]),
        "event_time": st.integers(-10, now_ms() + 10**9) | st.just(now_ms() - 5000) | st.text(max_size=10),
        "platform": st.sampled_from(PLATFORMS) | st.text(max_size=5),
        "app_version": st.text(min_size=1, max_size=70),
    },
    optional={
        "sent_at": st.integers(0, now_ms() + 10**9),
        "country": st.text(max_size=3),
        "properties": st.dictionaries(st.text(max_size=6), json_value | smuggled(), max_size=5)
        | smuggled()
        | json_value,
        "email": st.just(MARKER),
    },
)


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Collector:
    return Collector.from_settings(fuzz.fuzz_settings(tmp_path_factory.mktemp("fuzz") / "var"))


def _encode(body: bytes, how: str) -> tuple[bytes, dict[str, str]]:
    headers = dict(fuzz.HEADERS)
    if how == "gzip":
        return gzip.compress(body), {**headers, "content-encoding": "gzip"}
    if how == "zstd":
        return zstandard.ZstdCompressor().compress(body), {**headers, "content-encoding": "zstd"}
    if how == "ndjson":
        return body, {**headers, "content-type": "application/x-ndjson"}
    return body, headers


@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(attacker_event, min_size=1, max_size=6), st.sampled_from(["plain", "gzip", "zstd", "ndjson"]))
def test_attacker_events_never_raise_or_leak_a_raw_id_or_a_dropped_value(collector, events, how):
    raw = "\n".join(json.dumps(e) for e in events).encode() if how == "ndjson" else json.dumps(events).encode()
    body, headers = _encode(raw, how)
    prepared = collector.prepare(headers, body)
    assert fuzz.problems(prepared) == []
    assert prepared is not None
    if prepared.status == 400:  # a body JSON cannot carry (a lone surrogate escape): refused whole, kept
        assert len(prepared.dead_letters) == 1
    else:
        assert prepared.accepted + len(prepared.errors) == len(events)


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.binary(max_size=2000),
    st.sampled_from([None, "gzip", "zstd", "identity", "br", "gzip, zstd"]),
    st.sampled_from([None, "application/json", "application/x-ndjson"]),
)
def test_arbitrary_bytes_under_any_encoding_never_raise_or_get_a_5xx(collector, body, encoding, ctype):
    headers = dict(fuzz.HEADERS)
    if encoding:
        headers["content-encoding"] = encoding
    if ctype:
        headers["content-type"] = ctype
    assert fuzz.problems(collector.prepare(headers, body)) == []


def test_the_benchmarks_mutation_fuzzer_finds_nothing_in_two_seconds(tmp_path: Path):
    report = fuzz.run(seconds=2, seed=7, findings_dir=tmp_path / "findings", workdir=tmp_path / "var")
    assert report.executions > 100
    assert report.findings == []
    assert {202, 400} <= set(report.statuses)  # the run reached both valid and broken bodies


def test_the_fuzz_oracle_notices_a_leak():
    """The check the fuzzers rely on can fail: a record holding the marker is a finding."""
    from features.deadletter import DeadLetter
    from serving.collector import Prepared

    leaked = Prepared(202, "demo", dead_letters=[DeadLetter(received_at=0, reason="r", raw=f'{{"x": "{MARKER}"}}')])
    assert fuzz.problems(leaked) == ["a policy-dropped value reached a dead letter"]
    assert fuzz.problems(Prepared(500, "demo", message="boom")) == ["status 500: boom"]
