"""The collector behind API Gateway + Lambda answers exactly like the ASGI app."""

from __future__ import annotations

import base64
import copy
import gzip
import json
from pathlib import Path

import pytest

from features.config import Settings
from features.streams import decode_batch, open_stream
from tests_support import make_event

SAMPLE = json.loads((Path(__file__).parent / "events" / "http_api_events.json").read_text())


@pytest.fixture
def lambda_env(settings: Settings, monkeypatch):
    from serving import lambda_handler

    monkeypatch.setenv("PLAYERPULSE_ENV", "local")
    monkeypatch.setenv("PLAYERPULSE_WORKDIR", settings.workdir)
    lambda_handler._runtime.cache_clear()
    yield lambda_handler
    lambda_handler._runtime.cache_clear()


def invoke(module, body: bytes, **headers: str) -> dict:
    event = copy.deepcopy(SAMPLE)
    event["headers"].update({k.lower(): v for k, v in headers.items()})
    event["body"] = base64.b64encode(body).decode()
    return module.handler(event, None)


def test_gzip_batch_through_lambda_lands_on_the_stream(lambda_env, settings):
    events = [make_event("p1"), make_event("p2")]
    out = invoke(lambda_env, gzip.compress(json.dumps(events).encode()))
    assert out["statusCode"] == 202
    assert json.loads(out["body"]) == {"accepted": 2, "rejected": 0, "errors": []}
    with open_stream(settings.stream) as s:
        landed = [e for r in s.read_all() for e in decode_batch(r.data)[1]]
    assert {e["event_id"] for e in landed} == {e["event_id"] for e in events}


def test_bad_key_through_lambda_gets_401(lambda_env):
    out = invoke(lambda_env, gzip.compress(b"[]"), authorization="Bearer nope")
    assert out["statusCode"] == 401


def test_unknown_encoding_through_lambda_gets_415(lambda_env):
    out = invoke(lambda_env, b"[]", **{"content-encoding": "br"})
    assert out["statusCode"] == 415


def test_invalid_event_through_lambda_is_reported_by_index(lambda_env):
    out = invoke(lambda_env, gzip.compress(json.dumps([make_event(), {"event_id": 1}]).encode()))
    body = json.loads(out["body"])
    assert out["statusCode"] == 202
    assert body["accepted"] == 1 and body["errors"][0]["index"] == 1


def test_stream_failure_through_lambda_gets_503_with_retry_after(lambda_env, monkeypatch):
    from features.errors import StreamUnavailable
    from features.streams.sqlite import SqliteStream

    def refuse(self, records):
        raise StreamUnavailable("disk full")

    monkeypatch.setattr(SqliteStream, "put", refuse)
    out = invoke(lambda_env, gzip.compress(json.dumps([make_event()]).encode()))
    assert out["statusCode"] == 503
    assert out["headers"]["Retry-After"].isdigit()


@pytest.mark.parametrize(
    "body, is_base64",
    [("not base64 at all!!", True), ('[{"event_id": "\ud800"}]', False), ("\udcff\udcfe", False)],
    ids=["bad-base64", "lone-surrogate-in-json", "lone-surrogates"],
)
def test_an_undecodable_lambda_body_is_refused_never_a_500(lambda_env, body, is_base64):
    """A 400 for the body, or a 202 that rejects (and dead-letters) the one broken event."""
    event = copy.deepcopy(SAMPLE)
    event["headers"].pop("content-encoding", None)
    event["body"], event["isBase64Encoded"] = body, is_base64
    out = lambda_env.handler(event, None)
    assert out["statusCode"] in (400, 202)
    if out["statusCode"] == 202:
        assert json.loads(out["body"])["accepted"] == 0


def test_an_accepted_request_emits_its_collector_hop_as_an_emf_metric(lambda_env, capsys):
    out = invoke(lambda_env, gzip.compress(json.dumps([make_event("p3")]).encode()))

    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"HopLatency"' in line]

    assert out["statusCode"] == 202 and [b["hop"] for b in blobs] == ["collector"]
    assert blobs[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "PlayerPulse"
    assert 0 <= blobs[0]["HopLatency"][0] < 60_000
