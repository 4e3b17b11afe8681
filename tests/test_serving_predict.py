"""Serving: one prediction from an online profile, a registered champion and the model's declaration.

Tiny boosters are trained directly with xgboost and registered in an MLflow store under tmp, the
way ``training.train`` registers them (feature names in the model metadata); profiles live in a
real ``SqliteOnlineStore``.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from features.config import MlflowConfig, ServingConfig, Settings, load_settings
from features.definitions import PLAYER_ACTIVITY_V1
from features.errors import ModelNotFound
from features.online import Profile
from features.online.sqlite import SqliteOnlineStore
from features.profile_state import DAY_MS, ProfileState
from serving.models import ChampionCache
from serving.predict import Predictor
from training.registry import ensure_experiment, tracking_client

NOW_MS = int(datetime(2026, 11, 28, 12, 0, tzinfo=UTC).timestamp() * 1000)
FEATURES = ["store_view_count_1d", "session_count_7d"]
TIERS = [
    {"min_score": 0.5, "content": {"offer": "premium_bundle", "price_usd": 19.99}},
    {"min_score": 0.0, "content": {"offer": "free_daily_gift", "price_usd": 0.0}},
]
FALLBACK = {"offer": "fallback_gift", "price_usd": 0.0}


def declaration(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "feature_set": "player_activity_v1",
        "features": FEATURES,
        "label": {"event_type": "purchase", "horizon_hours": 24},
        "training": {"test_days": 1},
        "quality_gate": {"min_auc": 0.5, "max_auc_drop_vs_champion": 0.05},
        "response": {"tiers": TIERS},
        "fallback": {"content": FALLBACK},
    }


def booster(buyers_view_the_store: bool) -> Any:
    """High scores for players with ≥ 3 store views today (or, inverted, for those with fewer)."""
    import xgboost as xgb

    rng = np.random.default_rng(1)
    X = np.column_stack([rng.integers(0, 8, 400), rng.integers(0, 20, 400)]).astype(np.float32)
    y = (X[:, 0] >= 3) if buyers_view_the_store else (X[:, 0] < 3)
    data = xgb.DMatrix(X, label=y.astype(int), feature_names=FEATURES)
    return xgb.train({"objective": "binary:logistic", "max_depth": 2, "nthread": 1}, data, 20)


def register(settings: Settings, name: str, model: Any, champion: bool) -> int:
    import mlflow
    import mlflow.xgboost

    client = tracking_client(settings)
    with mlflow.start_run(experiment_id=ensure_experiment(settings, client)):
        info = mlflow.xgboost.log_model(
            model,
            name="model",
            registered_model_name=name,
            metadata={"feature_names": FEATURES, "feature_set": "player_activity_v1"},
            pip_requirements=["xgboost-cpu"],  # skips MLflow's slow requirement inference
        )
    version = int(info.registered_model_version)
    if champion:
        client.set_registered_model_alias(name, "champion", str(version))
    return version


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """'offer' v1 is champion; 'offer_two' has v1 (champion) and v2 (not yet); 'offer_new' has
    no version at all."""
    base = tmp_path_factory.mktemp("serving")
    (base / "models").mkdir()
    for name in ("offer", "offer_two", "offer_new"):
        (base / "models" / f"{name}.yaml").write_text(yaml.safe_dump(declaration(name)))
    settings = load_settings("local", base / "var").model_copy(
        update={
            "models_dir": str(base / "models"),
            "mlflow": MlflowConfig(tracking_uri=f"sqlite:///{base}/mlflow.db", artifact_root=str(base / "art")),
            "serving": ServingConfig(model_cache_seconds=30),
        }
    )
    register(settings, "offer", booster(True), champion=True)
    register(settings, "offer_two", booster(True), champion=True)
    register(settings, "offer_two", booster(False), champion=False)
    return settings


def profile(
    player_id: str, store_views_at: list[int], state: dict[str, Any] | None = None, game_id: str = "demo"
) -> Profile:
    folded = ProfileState()
    for i, t in enumerate(store_views_at):
        event = {"event_id": f"{player_id}-{i}", "event_type": "store_view", "properties": {}}
        folded.apply(PLAYER_ACTIVITY_V1, event, t, max_seen=100)
    last = max(store_views_at, default=NOW_MS)
    return Profile(
        game_id=game_id,
        player_id=player_id,
        version=1,
        as_of=last,
        features=folded.features(PLAYER_ACTIVITY_V1, last),
        state=state if state is not None else folded.to_dict(),
        timestamps={"event_time": last, "received_at": last + 40, "stream_at": last + 45, "processed_at": last + 300},
        feature_set=PLAYER_ACTIVITY_V1.full_name,
    )


@pytest.fixture
def store(tmp_path: Path) -> SqliteOnlineStore:
    from features.config import SqliteOnlineStoreConfig

    s = SqliteOnlineStore(SqliteOnlineStoreConfig(path=str(tmp_path / "profiles.db")))
    hour = 3_600_000
    s.put(
        [
            profile("keen", [NOW_MS - 2 * hour, NOW_MS - hour, NOW_MS - hour // 2, NOW_MS - 60_000]),
            profile("lukewarm", [NOW_MS - hour]),
            profile("keen_yesterday", [NOW_MS - DAY_MS - i * 60_000 for i in range(5)]),
            profile("corrupt", [NOW_MS - hour], state={"days": {"2026-11-28": {"store_view": "garbage"}}}),
            # the same player id in another game: a player who has never viewed the store there
            profile("keen", [], game_id="rival"),
        ]
    )
    yield s
    s.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def predictor(registry: Settings, store: SqliteOnlineStore) -> Predictor:
    return Predictor(registry, store, clock_ms=lambda: NOW_MS)


def test_a_known_player_gets_a_score_and_the_content_of_its_tier(predictor: Predictor) -> None:
    out = predictor.predict("offer", "demo", "keen", {"placement": "store"})
    assert set(out) == {"model", "version", "player_id", "prediction", "fallback", "timestamps"}
    assert (out["model"], out["version"], out["player_id"], out["fallback"]) == ("offer", 1, "keen", False)
    assert out["prediction"]["score"] > 0.5
    assert out["prediction"] == {"score": out["prediction"]["score"], **TIERS[0]["content"]}


def test_a_prediction_reads_the_profile_of_the_callers_game_not_another_games_same_id(
    predictor: Predictor,
) -> None:
    in_demo = predictor.predict("offer", "demo", "keen")
    in_rival = predictor.predict("offer", "rival", "keen")

    assert in_demo["prediction"]["offer"] == "premium_bundle"
    assert (in_rival["fallback"], in_rival["prediction"]["offer"]) == (False, "free_daily_gift")


def test_a_player_known_in_another_game_only_gets_the_fallback(predictor: Predictor) -> None:
    out = predictor.predict("offer", "rival", "lukewarm")
    assert out["fallback"] is True and out["reason"] == "no_profile"


def test_a_low_score_gets_the_lowest_tier(predictor: Predictor) -> None:
    out = predictor.predict("offer", "demo", "lukewarm", None)
    assert out["prediction"]["score"] < 0.5 and out["prediction"]["offer"] == "free_daily_gift"


def test_features_are_computed_as_of_the_request_not_as_of_the_last_event(predictor: Predictor) -> None:
    stored = predictor.store.get("demo", "keen_yesterday")
    assert stored is not None and stored.features["store_view_count_1d"] == 5
    out = predictor.predict("offer", "demo", "keen_yesterday")
    assert out["prediction"]["offer"] == "free_daily_gift"  # today's window holds no store view


def test_the_timestamps_carry_every_hop_for_end_to_end_latency(predictor: Predictor) -> None:
    ts = predictor.predict("offer", "demo", "keen")["timestamps"]
    assert ts["event_time"] < ts["received_at"] < ts["stream_at"] < ts["processed_at"] <= ts["profile_written_at"]
    assert ts["served_at"] == NOW_MS and ts["features_as_of"] == NOW_MS


def test_an_unknown_player_gets_the_fallback_content(predictor: Predictor) -> None:
    out = predictor.predict("offer", "demo", "stranger")
    assert out["fallback"] is True and out["reason"] == "no_profile"
    assert out["prediction"] == {"score": None, **FALLBACK}
    assert out["timestamps"] == {"served_at": NOW_MS}


def test_a_declared_model_without_a_champion_answers_with_the_fallback(predictor: Predictor) -> None:
    out = predictor.predict("offer_new", "demo", "keen")
    assert (out["fallback"], out["reason"], out["version"]) == (True, "no_champion", None)
    assert out["prediction"]["offer"] == "fallback_gift"


def test_a_failure_while_predicting_answers_with_the_fallback_not_an_exception(predictor: Predictor) -> None:
    out = predictor.predict("offer", "demo", "corrupt")
    assert (out["fallback"], out["reason"]) == (True, "model_error")
    assert out["prediction"]["offer"] == "fallback_gift"


def test_an_undeclared_model_is_not_found(predictor: Predictor) -> None:
    with pytest.raises(ModelNotFound):
        predictor.predict("churn_risk", "demo", "keen")


def test_a_promotion_is_picked_up_once_the_cache_expires(registry: Settings, store: SqliteOnlineStore) -> None:
    clock = FakeClock()
    predictor = Predictor(registry, store, ChampionCache(registry, clock=clock), clock_ms=lambda: NOW_MS)
    assert predictor.predict("offer_two", "demo", "keen")["version"] == 1

    tracking_client(registry).set_registered_model_alias("offer_two", "champion", "2")
    clock.now += 29
    assert predictor.predict("offer_two", "demo", "keen")["version"] == 1
    clock.now += 2
    out = predictor.predict("offer_two", "demo", "keen")
    assert out["version"] == 2 and out["prediction"]["score"] < 0.5


def test_a_missing_feature_reaches_the_booster_as_nan(registry: Settings) -> None:
    model = ChampionCache(registry).get("offer")
    row = model.row({"session_count_7d": 4, "store_view_count_1d": None})
    assert row.dtype == np.float32 and row.shape == (1, 2)
    assert np.isnan(row[0, 0]) and row[0, 1] == 4.0


def test_importing_serving_loads_neither_spark_nor_mlflow() -> None:
    code = (
        "import sys, serving.predict, serving.models; "
        "print(sorted(m for m in ('pyspark', 'mlflow', 'xgboost') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_champion_loads_from_the_configured_registry_whatever_the_process_default(
    registry: Settings, store: SqliteOnlineStore, tmp_path: Path
) -> None:
    import mlflow

    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    elsewhere = f"sqlite:///{tmp_path / 'someone-elses.db'}"
    mlflow.set_tracking_uri(elsewhere)
    mlflow.set_registry_uri(elsewhere)
    try:
        out = Predictor(registry, store, clock_ms=lambda: NOW_MS).predict("offer", "demo", "keen", {})
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])
    assert out["fallback"] is False
