"""What a game gets when serving cannot score, and how challenger traffic is split.

Every failure is fallback content with a bounded ``reason``; slow reads are cut off by the
store's read budget on real stores (a locked SQLite file, a DynamoDB endpoint that never
answers); challenger traffic is sticky per player.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from typing import Any

import numpy as np
import pytest
from aws_server import DUMMY_AWS_ENV

from features.config import DynamoDBOnlineStoreConfig, Settings
from features.errors import ModelNotFound, OnlineStoreTimeout
from features.model_config import ModelConfig
from features.online import Profile, open_online_store
from features.online.dynamodb import DynamoDBOnlineStore
from serving.models import CHALLENGER, CHAMPION, ChampionModel
from serving.predict import FALLBACK_REASONS, Predictor, challenger_bucket

FEATURES = ["store_view_count_1d", "session_count_7d"]


def constant_model(version: int, score: float) -> ChampionModel:
    """A real booster whose every prediction is ``score`` (trained on one constant label rate)."""
    import xgboost as xgb

    x = np.zeros((200, 2), dtype=np.float32)
    y = (np.arange(200) < score * 200).astype(np.float32)
    booster = xgb.train(
        {"objective": "binary:logistic", "base_score": 0.5, "max_depth": 1, "nthread": 1},
        xgb.DMatrix(x, y, feature_names=FEATURES),
        200,
    )
    return ChampionModel("offer", version, booster, tuple(FEATURES), "player_activity_v1")


class Versions:
    """Two aliases with real boosters: the ``Champions`` role without a registry."""

    def __init__(self, **aliases: ChampionModel):
        self.aliases = aliases

    def get(self, name: str, alias: str = CHAMPION) -> ChampionModel:
        if alias not in self.aliases:
            raise ModelNotFound(f"no {alias}")
        return self.aliases[alias]


def declaration(challenger: dict[str, Any] | None = None) -> ModelConfig:
    return ModelConfig.model_validate(
        {
            "name": "offer",
            "feature_set": "player_activity_v1",
            "features": FEATURES,
            "label": {"event_type": "purchase", "horizon_hours": 24},
            "training": {"test_days": 1},
            "quality_gate": {"min_auc": 0.5, "max_auc_drop_vs_champion": 0.05},
            "response": {"tiers": [{"min_score": 0.0, "content": {"offer": "gift"}}]},
            "fallback": {"content": {"offer": "fallback_gift"}},
            "serving": {"challenger": challenger or {"mode": "off"}},
        }
    )


def profile(player: str) -> Profile:
    return Profile(game_id="demo", player_id=player, version=1, as_of=1, features={}, state={})


@pytest.fixture(scope="module")
def models() -> dict[str, ChampionModel]:
    return {CHAMPION: constant_model(1, 0.2), CHALLENGER: constant_model(2, 0.8)}


def predictor_for(settings: Settings, models, challenger=None, read_timeout_ms=None) -> Predictor:
    store = open_online_store(settings.online_store, read_timeout_ms)
    store.put([profile(f"p{i}") for i in range(400)])
    return Predictor(settings, store, Versions(**models), configs={"offer": declaration(challenger)})


def test_a_locked_store_read_past_its_budget_is_fallback_store_timeout(settings, models):
    predictor = predictor_for(settings, models, read_timeout_ms=100)
    predictor.store.close()  # this thread's connection: the lock below needs the file to itself
    locker = sqlite3.connect(settings.online_store.path, isolation_level=None)
    locker.execute("PRAGMA locking_mode=EXCLUSIVE")
    locker.execute("BEGIN EXCLUSIVE")
    locker.execute("DELETE FROM profiles WHERE player_id = 'nobody'")
    result: dict[str, Any] = {}

    def serve() -> None:  # a serving thread opens its own connection, as the gateway's do
        started = time.monotonic()
        result["out"] = predictor.predict("offer", "demo", "p1")
        result["took"] = time.monotonic() - started

    try:
        worker = threading.Thread(target=serve)
        worker.start()
        worker.join(30)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    out = result["out"]
    assert (out["fallback"], out["reason"]) == (True, "store_timeout")
    assert out["prediction"] == {"score": None, "offer": "fallback_gift"}
    assert result["took"] < 5  # cut off near the budget, not at the jobs' 10 s lock wait


def test_a_dynamodb_endpoint_that_never_answers_times_out_within_the_budget(monkeypatch):
    for name, value in DUMMY_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        held: list[socket.socket] = []
        stop = threading.Event()

        def accept_and_ignore() -> None:
            server.settimeout(0.2)
            while not stop.is_set():
                try:
                    held.append(server.accept()[0])
                except (TimeoutError, OSError):
                    continue

        threading.Thread(target=accept_and_ignore, daemon=True).start()
        config = DynamoDBOnlineStoreConfig(
            table_name="profiles", endpoint_url=f"http://127.0.0.1:{server.getsockname()[1]}"
        )
        store = DynamoDBOnlineStore(config, read_timeout_ms=200)
        started = time.monotonic()
        with pytest.raises(OnlineStoreTimeout):
            store.get("demo", "p1")
        took = time.monotonic() - started
        stop.set()
        time.sleep(0.3)  # the acceptor sees the flag before the socket closes
        for s in held:
            s.close()
    assert took < 3  # two attempts of 0.2 s plus back-off, not botocore's 10 s × 3


def test_a_failing_store_is_fallback_store_error(settings, models, aws_endpoint):
    missing = DynamoDBOnlineStoreConfig(table_name="no-such-table", endpoint_url=aws_endpoint)
    predictor = Predictor(
        settings, DynamoDBOnlineStore(missing, 5000), Versions(**models), configs={"offer": declaration()}
    )
    out = predictor.predict("offer", "demo", "p1")
    assert (out["fallback"], out["reason"]) == (True, "store_error")


def test_every_fallback_reason_is_one_of_the_documented_labels(settings, models):
    predictor = predictor_for(settings, {}, read_timeout_ms=100)
    out = predictor.predict("offer", "demo", "p1")
    assert out["reason"] == "no_champion" and out["reason"] in FALLBACK_REASONS


def test_with_the_challenger_off_the_champion_answers_everyone(settings, models):
    predictor = predictor_for(settings, models)
    assert {predictor.predict("offer", "demo", f"p{i}")["version"] for i in range(50)} == {1}


def test_a_split_serves_about_its_share_of_players_from_the_challenger(settings, models):
    predictor = predictor_for(settings, models, {"mode": "split", "share": 0.25})
    versions = [predictor.predict("offer", "demo", f"p{i}")["version"] for i in range(400)]
    assert 0.18 < versions.count(2) / 400 < 0.32


def test_a_split_is_sticky_per_player(settings, models):
    predictor = predictor_for(settings, models, {"mode": "split", "share": 0.5})
    first = [predictor.predict("offer", "demo", f"p{i}")["version"] for i in range(40)]
    again = [predictor.predict("offer", "demo", f"p{i}")["version"] for i in range(40)]
    assert first == again
    assert all((v == 2) == (challenger_bucket("demo", f"p{i}") < 0.5) for i, v in enumerate(first))


def test_in_shadow_mode_the_challenger_scores_and_is_logged_but_never_answers(settings, models, caplog):
    predictor = predictor_for(settings, models, {"mode": "shadow"})
    with caplog.at_level("INFO", logger="serving.predict"):
        outs = [predictor.predict("offer", "demo", f"p{i}") for i in range(20)]
    assert {o["version"] for o in outs} == {1}
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("prediction ")]
    assert len(logged) == 20
    assert all("'champion': 1" in m and "'challenger': 2" in m and "'challenger_score'" in m for m in logged)
    assert not any("p1'" in m for m in logged)  # players appear as digests
