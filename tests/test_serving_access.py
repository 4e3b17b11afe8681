"""Who may read what over HTTP: keys per game and role, checked before anything else is read.

The ingest key ships inside game clients, so it must never read a player; a serve key reads its
own game's players only; /metrics needs its own key or port; client errors leak nothing.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from features.config import DEVELOPMENT_KEYS, Settings, hash_api_key
from features.errors import ModelNotFound
from features.online import Profile, open_online_store
from serving.app import create_app
from serving.auth import GameKeys
from serving.predict import Predictor
from tests_support import call_asgi, sessions_profile

INGEST = {"Authorization": f"Bearer {DEVELOPMENT_KEYS['ingest']}"}
SERVE = {"Authorization": f"Bearer {DEVELOPMENT_KEYS['serve']}"}
METRICS = {"Authorization": f"Bearer {DEVELOPMENT_KEYS['metrics']}"}
OTHER_SERVE_KEY = "pp-serve-key-of-another-game"


def two_games(settings: Settings) -> Settings:
    """The demo game plus game 'rival', whose serve key is OTHER_SERVE_KEY."""
    rival = settings.games["demo"].model_copy(
        update={"ingest_keys": [hash_api_key("pp-ingest-rival")], "serve_keys": [hash_api_key(OTHER_SERVE_KEY)]}
    )
    return settings.model_copy(update={"games": {**settings.games, "rival": rival}})


def put_profile(settings: Settings, game: str, player: str, sessions: int) -> None:
    with open_online_store(settings.online_store) as store:
        store.put([sessions_profile(game, player, sessions)])


@pytest.fixture
def client(settings: Settings):
    with TestClient(create_app(two_games(settings))) as c:
        yield c


# --- profiles ---------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, INGEST, {"Authorization": "Basic cDE6"}])
def test_a_profile_read_needs_the_serve_key(client, settings, headers):
    put_profile(settings, "demo", "p1", 3)
    assert client.get("/v1/players/p1/profile", headers=headers).status_code == 401


def test_a_serve_key_reads_its_own_games_player(client, settings):
    put_profile(settings, "demo", "p1", 3)
    r = client.get("/v1/players/p1/profile", headers=SERVE)
    assert r.status_code == 200
    assert (r.json()["game_id"], r.json()["features"]["session_count_1d"]) == ("demo", 3)


def test_another_games_player_is_indistinguishable_from_an_unknown_one(client, settings):
    put_profile(settings, "demo", "p1", 3)
    other = {"Authorization": f"Bearer {OTHER_SERVE_KEY}"}
    theirs = client.get("/v1/players/p1/profile", headers=other)
    unknown = client.get("/v1/players/nobody/profile", headers=other)
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == unknown.json()


def test_the_same_player_id_in_two_games_reads_two_profiles(client, settings):
    put_profile(settings, "demo", "p1", 3)
    put_profile(settings, "rival", "p1", 7)
    other = {"Authorization": f"Bearer {OTHER_SERVE_KEY}"}
    assert client.get("/v1/players/p1/profile", headers=SERVE).json()["features"]["session_count_1d"] == 3
    assert client.get("/v1/players/p1/profile", headers=other).json()["features"]["session_count_1d"] == 7


@pytest.mark.parametrize("player", ["a%0Ab", "x" * 65, "semi;colon", "%C3%A9t%C3%A9"])
def test_a_profile_read_refuses_a_player_id_outside_the_contract(client, player):
    r = client.get(f"/v1/players/{player}/profile", headers=SERVE)
    assert r.status_code == 400
    assert "A-Z a-z 0-9" in r.json()["error"]


# --- predictions ------------------------------------------------------------------------------


def predict(client: TestClient, body: Any, headers: dict[str, str] = SERVE, model: str = "store_offer"):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(f"/v1/models/{model}/predict", content=content, headers=headers)


def test_the_ingest_key_cannot_ask_for_predictions(client):
    assert predict(client, {"player_id": "p1"}, INGEST).status_code == 401


def test_predict_without_a_key_is_refused_before_its_body_is_read(settings):
    """An ASGI-level check: the app answers 401 without pulling a single chunk of the body."""
    app = create_app(settings)
    chunks_read = 0

    async def receive() -> dict[str, Any]:
        nonlocal chunks_read
        chunks_read += 1
        return {"type": "http.request", "body": b"x" * 1_000_000, "more_body": True}

    path = "/v1/models/store_offer/predict"
    sent = asyncio.run(call_asgi(app, "POST", path, {"content-type": "application/json"}, receive))
    assert sent[0]["status"] == 401
    assert chunks_read == 0


def test_an_invalid_predict_body_is_a_generic_400_that_echoes_nothing(client):
    secret = "drop table players; <script>"
    r = predict(client, {"player_id": "p1", "context": {"nested": {"x": secret}}, "extra": secret})
    assert r.status_code == 400
    assert secret not in r.text


def test_a_predict_body_over_the_limit_is_413(client, settings):
    r = predict(client, {"player_id": "p1", "context": {"pad": "x" * settings.serving.max_request_bytes}})
    assert r.status_code == 413


def test_a_context_with_too_many_fields_is_400(client, settings):
    context = {f"k{i}": i for i in range(settings.serving.max_context_keys + 1)}
    r = predict(client, {"player_id": "p1", "context": context})
    assert r.status_code == 400
    assert "context" in r.json()["error"]


@pytest.mark.parametrize("body", [b"[" * 10_000 + b"]" * 10_000, b'{"player_id": "p\xff\xfe"}', b"\x00\x01"])
def test_hostile_predict_bodies_are_400s(client, body):
    assert predict(client, body).status_code == 400


def test_predict_refuses_a_player_id_outside_the_contract(client):
    r = predict(client, {"player_id": "p1\nINFO forged log line"})
    assert r.status_code == 400


def test_an_unknown_model_is_a_404_that_names_no_path_or_model_list(client, settings):
    r = predict(client, {"player_id": "p1"}, model="nosuch")
    assert r.status_code == 404
    assert r.json() == {"error": "no such model"}
    assert settings.models_dir not in r.text and "store_offer" not in r.text


def test_a_model_name_with_a_trailing_newline_is_not_a_model(client):
    assert predict(client, {"player_id": "p1"}, model="store_offer%0A").status_code == 404


# --- metrics ----------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, INGEST, SERVE])
def test_metrics_need_the_metrics_key(client, headers):
    assert client.get("/metrics", headers=headers).status_code == 401


def test_the_metrics_key_reads_metrics(client):
    r = client.get("/metrics", headers=METRICS)
    assert r.status_code == 200
    assert "playerpulse_requests" in r.text


def test_with_a_metrics_port_metrics_leave_the_api_port(settings):
    from playerpulse.gateway import free_port

    port = free_port()
    metrics = settings.serving.metrics.model_copy(update={"keys": [], "port": port})
    settings = settings.model_copy(update={"serving": settings.serving.model_copy(update={"metrics": metrics})})
    with TestClient(create_app(settings)) as c:
        assert c.get("/metrics", headers=METRICS).status_code == 404
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert scraped.status_code == 200
    assert "playerpulse_requests" in scraped.text


# --- keys ---------------------------------------------------------------------------------------


def test_several_keys_per_role_are_live_at_once_so_a_key_rotates_with_overlap(settings):
    old, new = "pp-serve-old", "pp-serve-new"
    demo = settings.games["demo"].model_copy(update={"serve_keys": [hash_api_key(old), hash_api_key(new)]})
    keys = GameKeys({"demo": demo})
    assert keys.game_for(f"Bearer {old}", "serve") == keys.game_for(f"Bearer {new}", "serve") == "demo"
    assert keys.game_for(f"Bearer {old}", "ingest") is None


class NoChampions:
    """A registry with no champion yet: the prediction falls back, with the profile's hops."""

    def get(self, name: str, alias: str = "champion"):
        raise ModelNotFound(f"no {alias} of {name}")


def test_a_prediction_times_the_hops_of_the_profile_it_read(client, settings):
    stamps = {"event_time": 1_000, "received_at": 1_200, "stream_at": 1_210, "processed_at": 1_500}
    with open_online_store(settings.online_store) as store:
        store.put(
            [Profile(game_id="demo", player_id="p9", version=1, as_of=1, features={}, state={}, timestamps=stamps)]
        )

    state = client.app.state.serving
    state._predictor = Predictor(state.settings, state.online, champions=NoChampions())  # no registry to start
    r = client.post("/v1/models/store_offer/predict", json={"player_id": "p9"}, headers=SERVE)

    text = client.get("/metrics", headers=METRICS).text
    assert r.status_code == 200 and "served_at" in r.json()["timestamps"]
    for hop in ("device", "stream", "profile_write", "serve"):
        assert f'playerpulse_hop_seconds_count{{hop="{hop}"}} 1.0' in text
    assert 'playerpulse_hop_seconds_bucket{hop="device",le="0.25"} 1.0' in text  # 200 ms
    assert 'playerpulse_hop_seconds_bucket{hop="device",le="0.1"} 0.0' in text


def test_the_gateway_logs_a_sample_of_predictions_beside_the_lake(settings, monkeypatch):
    from serving.prediction_log import log_folder, read_log

    monkeypatch.setattr("serving.predict.ChampionCache", lambda _settings: NoChampions())
    logged = settings.model_copy(
        update={
            "serving": settings.serving.model_copy(
                update={"prediction_log": settings.serving.prediction_log.model_copy(update={"sample_rate": 1.0})}
            )
        }
    )
    put_profile(logged, "demo", "p9", 1)
    with TestClient(create_app(logged)) as c:
        r = c.post("/v1/models/store_offer/predict", json={"player_id": "p9"}, headers=SERVE)

    (record,) = read_log(log_folder(logged.reports_location))  # written at shutdown at the latest
    assert r.status_code == 200
    assert (record["model"], record["reason"]) == ("store_offer", "no_champion")
