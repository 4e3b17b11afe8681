"""Pseudonymous player ids: raw ids never reach storage, and the game never has to change.

The collector stores HMAC-SHA256(secret, player_id) as ``p_`` + 40 hex digits; serving hashes the
id the game sends the same way, trying the newest secret first and then the older ones while a
rotation overlaps. Secrets come from ``${VARS}`` or AWS Secrets Manager (tested over HTTP
against moto_server).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import msgspec
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from features.config import DEVELOPMENT_KEYS, GameConfig, Settings
from features.contract import PLAYER_ID_PATTERN
from features.deadletter import open_dead_letter_store
from features.errors import ConfigError
from features.online import open_online_store
from features.pseudonyms import GamePseudonyms, pseudonym
from features.streams import decode_batch, open_stream
from serving.app import create_app
from serving.collector import Collector
from tests_support import make_event, sessions_profile

INGEST = {"authorization": f"Bearer {DEVELOPMENT_KEYS['ingest']}"}
SERVE = {"Authorization": f"Bearer {DEVELOPMENT_KEYS['serve']}"}
NEW = "new-secret-0123456789abcdef"
OLD = "old-secret-0123456789abcdef"


def with_demo(settings: Settings, **fields: Any) -> Settings:
    """The demo game with extra (validated) fields, e.g. ``pseudonymise``."""
    game = GameConfig.model_validate({**settings.games["demo"].model_dump(exclude_none=True), **fields})
    return settings.model_copy(update={"games": {"demo": game}})


def put_profile(settings: Settings, player_id: str, sessions: int) -> None:
    with open_online_store(settings.online_store) as store:
        store.put([sessions_profile("demo", player_id, sessions)])


@given(st.text(max_size=200))
def test_every_pseudonym_is_within_the_contracts_player_id_pattern(player_id):
    p = pseudonym(NEW.encode(), player_id)
    assert re.fullmatch(PLAYER_ID_PATTERN, p) and len(p) == 42


def test_an_id_that_already_looks_like_a_pseudonym_is_hashed_like_any_other():
    looks_hashed = pseudonym(NEW.encode(), "p1")
    assert pseudonym(NEW.encode(), looks_hashed) not in (looks_hashed, pseudonym(NEW.encode(), "p1"))


def test_the_same_id_in_two_games_gets_two_unrelated_pseudonyms():
    assert pseudonym(b"game-a-secret-0123456789", "p1") != pseudonym(b"game-b-secret-0123456789", "p1")


def test_the_stream_and_dead_letters_never_hold_the_raw_player_id(settings):
    settings = with_demo(settings, pseudonymise={"secrets": [NEW]})
    collector = Collector.from_settings(settings)
    raw_id = "alice-raw-id-42"
    body = json.dumps([make_event(raw_id), make_event(raw_id, event_type="teleport")]).encode()
    prepared = collector.prepare(INGEST, body)
    assert prepared is not None and (prepared.accepted, len(prepared.dead_letters)) == (1, 1)
    stored = pseudonym(NEW.encode(), raw_id)
    [record] = prepared.records
    assert record.partition_key == stored
    assert [e["player_id"] for e in decode_batch(record.data)[1]] == [stored]
    assert raw_id.encode() not in record.data and raw_id not in msgspec.json.encode(prepared.dead_letters).decode()
    assert json.loads(prepared.dead_letters[0].raw)["player_id"] == stored


def test_a_player_id_that_breaks_the_pattern_is_rejected_and_its_dead_letter_keeps_only_the_pseudonym(settings):
    settings = with_demo(settings, pseudonymise={"secrets": [NEW]})
    bad = "bob@example.com (" + "x" * 80 + ")"
    prepared = Collector.from_settings(settings).prepare(INGEST, json.dumps([make_event(bad)]).encode())
    assert prepared is not None and prepared.accepted == 0
    [letter] = prepared.dead_letters
    assert "bob@example.com" not in letter.raw
    assert json.loads(letter.raw)["player_id"] == pseudonym(NEW.encode(), bad)


def test_over_http_the_game_posts_and_reads_with_its_own_ids(settings):
    settings = with_demo(settings, pseudonymise={"secrets": [NEW]})
    with TestClient(create_app(settings)) as client:
        r = client.post("/v1/events", content=json.dumps([make_event("carol")]).encode(), headers=INGEST)
        assert r.status_code == 202
        put_profile(settings, pseudonym(NEW.encode(), "carol"), 5)
        got = client.get("/v1/players/carol/profile", headers=SERVE)
        assert got.status_code == 200
        assert (got.json()["player_id"], got.json()["features"]["session_count_1d"]) == ("carol", 5)
        assert client.get(f"/v1/players/{pseudonym(NEW.encode(), 'carol')}/profile", headers=SERVE).status_code == 404
    with open_stream(settings.stream) as s:
        assert [e["player_id"] for rec in s.read_all() for e in decode_batch(rec.data)[1]] == [
            pseudonym(NEW.encode(), "carol")
        ]


def test_during_a_rotation_serving_finds_profiles_written_under_the_old_secret(settings):
    settings = with_demo(settings, pseudonymise={"secrets": [NEW, OLD]})
    put_profile(settings, pseudonym(OLD.encode(), "dave"), 2)  # written before the rotation
    put_profile(settings, pseudonym(NEW.encode(), "erin"), 7)
    put_profile(settings, pseudonym(OLD.encode(), "erin"), 1)  # stale: the new one wins
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/players/dave/profile", headers=SERVE).json()["features"]["session_count_1d"] == 2
        assert client.get("/v1/players/erin/profile", headers=SERVE).json()["features"]["session_count_1d"] == 7


def test_during_a_rotation_the_collector_writes_with_the_newest_secret_only(settings):
    settings = with_demo(settings, pseudonymise={"secrets": [NEW, OLD]})
    prepared = Collector.from_settings(settings).prepare(INGEST, json.dumps([make_event("frank")]).encode())
    assert prepared is not None and [r.partition_key for r in prepared.records] == [pseudonym(NEW.encode(), "frank")]


def test_a_game_without_pseudonymisation_keeps_raw_ids(settings):
    prepared = Collector.from_settings(settings).prepare(INGEST, json.dumps([make_event("gina")]).encode())
    assert prepared is not None and [r.partition_key for r in prepared.records] == ["gina"]


@pytest.mark.parametrize(
    "pseudonymise, complaint",
    [
        ({"secrets": ["short"]}, "at least 16"),
        ({}, "exactly one of"),
        ({"secrets": [NEW], "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"}, "exactly one"),
        ({"secrets": [NEW, NEW]}, "twice"),
    ],
)
def test_a_weak_or_ambiguous_secret_configuration_is_refused(settings, pseudonymise, complaint):
    with pytest.raises(ValueError, match=complaint):
        with_demo(settings, pseudonymise=pseudonymise)


def test_a_secret_from_an_unset_environment_variable_stops_start_up(tmp_path, monkeypatch):
    from features.config import load_settings

    conf = tmp_path / "conf"
    conf.mkdir()
    text = (
        Path("conf/local.yaml")
        .read_text()
        .replace(
            "    serve_keys: [c634", '    pseudonymise: {secrets: ["${PP_TEST_UNSET_SECRET}"]}\n    serve_keys: [c634'
        )
    )
    (conf / "local.yaml").write_text(text)
    monkeypatch.setenv("PLAYERPULSE_CONF_DIR", str(conf))
    monkeypatch.delenv("PP_TEST_UNSET_SECRET", raising=False)
    with pytest.raises(ConfigError, match="PP_TEST_UNSET_SECRET"):
        load_settings("local", tmp_path / "var")
    monkeypatch.setenv("PP_TEST_UNSET_SECRET", NEW)
    assert load_settings("local", tmp_path / "var").games["demo"].pseudonymise.secrets == [NEW]


def _secret(aws_endpoint: str, name: str, value: str) -> str:
    client = boto3.client("secretsmanager", endpoint_url=aws_endpoint, region_name="us-east-1")
    return client.create_secret(Name=name, SecretString=value)["ARN"]


def test_secrets_manager_holds_the_rotation_list_newest_first(settings, aws_endpoint):
    arn = _secret(aws_endpoint, "pp-test-rotation", json.dumps([NEW, OLD]))
    settings = with_demo(settings, pseudonymise={"secret_arn": arn, "endpoint_url": aws_endpoint})
    p = GamePseudonyms.of(settings.games).for_game("demo")
    assert p is not None and p.candidates("p1") == [pseudonym(NEW.encode(), "p1"), pseudonym(OLD.encode(), "p1")]


def test_secrets_manager_holds_a_single_secret_as_plain_text(settings, aws_endpoint):
    arn = _secret(aws_endpoint, "pp-test-single", NEW)
    settings = with_demo(settings, pseudonymise={"secret_arn": arn, "endpoint_url": aws_endpoint})
    assert GamePseudonyms.of(settings.games).stored_ids("demo", "p1") == [pseudonym(NEW.encode(), "p1")]


@pytest.mark.parametrize("value", ["short", json.dumps([NEW, 3]), "[not json", json.dumps([])])
def test_an_unusable_secret_in_secrets_manager_stops_start_up(settings, aws_endpoint, value):
    arn = _secret(aws_endpoint, f"pp-test-bad-{abs(hash(value))}", value)
    settings = with_demo(settings, pseudonymise={"secret_arn": arn, "endpoint_url": aws_endpoint})
    with pytest.raises(ConfigError, match=r"pseudonymise\.secret_arn"):
        Collector.from_settings(settings)


def test_a_missing_secrets_manager_secret_stops_start_up_naming_it(settings, aws_endpoint):
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:pp-nowhere-AbCdEf"
    settings = with_demo(settings, pseudonymise={"secret_arn": arn, "endpoint_url": aws_endpoint})
    with pytest.raises(ConfigError, match=r"games\.demo\.pseudonymise\.secret_arn: cannot read"):
        Collector.from_settings(settings)


def test_dead_letters_in_the_store_hold_pseudonyms_only(settings):
    settings = with_demo(settings, pseudonymise={"secrets": [NEW]})
    with TestClient(create_app(settings)) as client:
        client.post("/v1/events", content=json.dumps([make_event("hank", platform="fridge")]).encode(), headers=INGEST)
    store = open_dead_letter_store(settings.dead_letter)
    try:
        [(_, letter)] = store.read(None, 10)
    finally:
        store.close()
    assert "hank" not in letter.raw and json.loads(letter.raw)["player_id"] == pseudonym(NEW.encode(), "hank")
