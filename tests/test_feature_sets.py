"""Feature sets are first-class: online or not, their gold table, the inputs the stream folds.

A second set is defined here and handed to the code under test explicitly (``registry``,
``ProfileBatchWriter(feature_sets=...)``, ``Predictor(feature_sets=...)``, ``check_features(sets=...)``),
the way a new set in ``features/definitions.py`` would reach it through ``FEATURE_SETS``.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from features.config import Settings, load_settings
from features.definitions import PLAYER_ACTIVITY_V1, Aggregation, FeatureSet, Ratio, Recency, registry
from features.errors import ConfigError, ModelNotFound
from features.model_config import ModelConfig, parse_model_config
from features.online import OnlineStore, open_online_store
from pipelines.profile_updates import update_players
from pipelines.profiles_stream import ProfileBatchWriter
from serving.model_files import check_features
from serving.models import CHAMPION, ChampionModel
from serving.predict import Predictor

NOW = 1_790_000_000_000
DAY = 86_400_000
P1 = ("demo", "p1")
REPO = Path(__file__).parent.parent

ENGAGEMENT_V1 = FeatureSet(
    "engagement",
    1,
    aggregations=(
        Aggregation("ad_watch", ("ad_view",), "count", (3,)),
        Aggregation("session", ("session_start",), "count", (14,)),  # shared with player_activity_v1, alike
    ),
    recencies=(Recency("level_up", ("level_up",)),),
)
"""A second online set: one input of its own, one shared with ``player_activity_v1``."""

SETS = registry(PLAYER_ACTIVITY_V1, ENGAGEMENT_V1)


def stream_row(event_type: str, position: int, t: int = NOW - 60_000, props: dict[str, Any] | None = None) -> dict:
    """A stream row as the profiles job hands it to the fold."""
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "event_time": t,
        "sent_at": None,
        "received_at": t + 1000,
        "stream_at": t + 1005,
        "properties": json.dumps(props or {}),
        "stream_shard": "0",
        "stream_position": str(position),
    }


def engaged_player_rows() -> list[dict]:
    return [
        stream_row("ad_view", 1, props={"ad_type": "rewarded"}),
        stream_row("ad_view", 2, t=NOW - 2 * DAY, props={"ad_type": "rewarded"}),
        stream_row("session_start", 3, t=NOW - 10 * DAY),
        stream_row("level_up", 4, t=NOW - DAY, props={"level": 3}),
    ]


def declaration(feature_set: str = "player_activity_v1", **changes: Any) -> dict[str, Any]:
    return {
        "name": "offer",
        "feature_set": feature_set,
        "features": ["session_count_7d"],
        "label": {"event_type": "purchase", "horizon_hours": 24},
        "training": {"test_days": 1},
        "quality_gate": {"min_auc": 0.5, "max_auc_drop_vs_champion": 0.05},
        "response": {"tiers": [{"min_score": 0.0, "content": {"offer": "gift"}}]},
        "fallback": {"content": {"offer": "fallback_gift"}},
        **changes,
    }


def champion_on(fs: FeatureSet, feature: str) -> ChampionModel:
    """A real booster on one feature of ``fs`` that scores high when the feature is above 0.5."""
    import xgboost as xgb

    x = np.repeat(np.array([[0.0], [1.0]], dtype=np.float32), 100, axis=0)
    y = x[:, 0].copy()
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 1, "nthread": 1}, xgb.DMatrix(x, y, feature_names=[feature]), 20
    )
    return ChampionModel("offer", 1, booster, (feature,), fs.full_name)


class OneChampion:
    """The ``Champions`` role without a registry."""

    def __init__(self, model: ChampionModel):
        self.model = model

    def get(self, name: str, alias: str = CHAMPION) -> ChampionModel:
        if alias != CHAMPION:
            raise ModelNotFound(f"no {alias}")
        return self.model


# --- the set names its table ------------------------------------------------------------------


def test_a_feature_sets_gold_table_is_named_after_the_set() -> None:
    assert ENGAGEMENT_V1.table == "gold.engagement_v1"
    assert FeatureSet("engagement", 2, ENGAGEMENT_V1.aggregations).table == "gold.engagement_v2"


def test_player_activity_v1_keeps_the_table_existing_lakes_hold() -> None:
    assert PLAYER_ACTIVITY_V1.table == "gold.player_features_v1"


def test_two_sets_writing_one_table_are_refused() -> None:
    twin = FeatureSet("twin", 1, ENGAGEMENT_V1.aggregations, gold_table="gold.engagement_v1")

    with pytest.raises(ValueError, match=r"engagement_v1 and twin_v1 both write gold\.engagement_v1"):
        registry(ENGAGEMENT_V1, twin)


# --- ratios, raw and shrunk --------------------------------------------------------------------


def test_a_raw_ratio_is_undefined_without_a_denominator() -> None:
    trend = Ratio("trend", "a", "b", scale=7.0)
    assert trend.value(2, 14) == pytest.approx(1.0)
    assert trend.value(2, 0) is None and trend.value(None, 3) is None and trend.value(1, None) is None


def test_a_shrunk_ratio_tells_a_thin_history_from_a_long_one() -> None:
    """0 purchases in 2 sessions and 0 in 60 are both a raw rate of 0; with a prior of 0.5
    purchases in 20 sessions the thin history stays near the prior's 0.025."""
    rate = Ratio("purchase_rate", "purchases", "sessions", prior_numerator=0.5, prior_denominator=20.0)
    assert rate.value(0, 2) == pytest.approx(0.5 / 22)
    assert rate.value(0, 60) == pytest.approx(0.5 / 80)
    assert rate.value(0, 0) == pytest.approx(0.025)  # no sessions yet: the prior itself
    assert rate.value(6, 60) == pytest.approx(6.5 / 80)
    assert rate.value(None, 5) is None


def test_a_ratio_refuses_negative_priors() -> None:
    with pytest.raises(ValueError, match="pseudo-counts"):
        Ratio("r", "a", "b", prior_numerator=-1.0)


# --- one input, one definition -----------------------------------------------------------------


def test_two_sets_defining_one_input_from_different_sources_are_refused_naming_both() -> None:
    rival = FeatureSet("rival", 1, aggregations=(Aggregation("ad_watch", ("store_view",), "count", (7,)),))

    both = r"input 'ad_watch' is defined differently by feature sets engagement_v1 and rival_v1"
    with pytest.raises(ValueError, match=both):
        registry(PLAYER_ACTIVITY_V1, ENGAGEMENT_V1, rival)


def test_two_sets_defining_one_recency_differently_are_refused_naming_both() -> None:
    rival = FeatureSet(
        "rival",
        1,
        aggregations=(Aggregation("ad_watch", ("ad_view",), "count", (7,)),),
        recencies=(Recency("level_up", ("session_start",)),),
    )

    with pytest.raises(ValueError, match=r"recency input 'level_up' .* engagement_v1 and rival_v1"):
        registry(ENGAGEMENT_V1, rival)


# --- the stream folds every online set ---------------------------------------------------------


def fold_engaged_player(settings: Settings, *sets: FeatureSet) -> OnlineStore:
    """The online store after the streaming fold of ``engaged_player_rows`` with the sets the
    job is given (``player_activity_v1`` and ``sets``), as the job's executors fold them."""
    store = open_online_store(settings.online_store)
    ctx = ProfileBatchWriter(settings, "cp", (PLAYER_ACTIVITY_V1, *sets)).context(batch_id=0)
    update_players(store, [(P1, engaged_player_rows())], ctx, clock=lambda: NOW)
    return store


def test_a_profile_folds_the_inputs_of_every_online_set(settings: Settings) -> None:
    store = fold_engaged_player(settings, ENGAGEMENT_V1)

    profile = store.get(*P1)
    assert profile is not None
    assert profile.feature_set == "player_activity_v1,engagement_v1"
    assert profile.features["ad_watch_count_3d"] == 2
    assert profile.features["session_count_14d"] == 1
    assert profile.features["session_count_7d"] == 0  # player_activity_v1's own window, 10 days back
    assert profile.features["days_since_last_level_up"] == pytest.approx(1.0, abs=0.01)


def test_a_set_that_is_not_online_is_not_folded(settings: Settings) -> None:
    offline = FeatureSet("archive", 1, ENGAGEMENT_V1.aggregations, ENGAGEMENT_V1.recencies, online=False)
    store = fold_engaged_player(settings, offline)

    profile = store.get(*P1)
    assert profile is not None
    assert profile.feature_set == "player_activity_v1"
    assert "ad_watch_count_3d" not in profile.features
    assert "ad_watch" not in {bucket for day in profile.state["days"].values() for bucket in day}


def test_serving_scores_a_second_online_sets_champion_from_the_folded_profile(settings: Settings) -> None:
    store = fold_engaged_player(settings, ENGAGEMENT_V1)
    predictor = Predictor(
        settings,
        store,
        OneChampion(champion_on(ENGAGEMENT_V1, "ad_watch_count_3d")),
        clock_ms=lambda: NOW + 2 * DAY,  # one of the two ads is still in the 3-day window
        configs={"offer": ModelConfig.model_validate(declaration())},
        feature_sets=SETS,
    )

    out = predictor.predict("offer", *P1)

    assert out["fallback"] is False
    assert out["prediction"]["score"] > 0.9


# --- a model on a set that is not online is refused --------------------------------------------


def test_a_champion_on_a_set_that_is_not_online_is_refused_at_start_up() -> None:
    offline = FeatureSet("engagement", 1, ENGAGEMENT_V1.aggregations, ENGAGEMENT_V1.recencies, online=False)
    cfg = ModelConfig.model_validate(declaration())

    with pytest.raises(ConfigError, match=r"model 'offer' uses feature set engagement_v1, which is not served online"):
        check_features(champion_on(offline, "ad_watch_count_3d"), cfg, sets=registry(PLAYER_ACTIVITY_V1, offline))


def test_serving_answers_fallback_for_a_version_trained_on_a_set_no_longer_online(settings: Settings) -> None:
    offline = FeatureSet("engagement", 1, ENGAGEMENT_V1.aggregations, ENGAGEMENT_V1.recencies, online=False)
    store = open_online_store(settings.online_store)
    update_players(store, [(P1, engaged_player_rows())], ProfileBatchWriter(settings, "cp").context(0), lambda: NOW)
    predictor = Predictor(
        settings,
        store,
        OneChampion(champion_on(offline, "ad_watch_count_3d")),
        clock_ms=lambda: NOW,
        configs={"offer": ModelConfig.model_validate(declaration())},
        feature_sets=registry(PLAYER_ACTIVITY_V1, offline),
    )

    out = predictor.predict("offer", *P1)

    assert (out["fallback"], out["reason"]) == (True, "model_error")


def test_a_model_declared_on_a_set_that_is_not_online_is_refused(tmp_path: Path, monkeypatch) -> None:
    from features import definitions

    offline = FeatureSet("engagement", 1, ENGAGEMENT_V1.aggregations, ENGAGEMENT_V1.recencies, online=False)
    monkeypatch.setitem(definitions.FEATURE_SETS, offline.full_name, offline)  # as if defined in the module
    source = tmp_path / "offer.yaml"
    source.write_text(yaml.safe_dump(declaration("engagement_v1", features=["ad_watch_count_3d"])))

    refused = r"'feature_set'.*model 'offer' uses feature set engagement_v1, which is not served online"
    with pytest.raises(ConfigError, match=refused):
        parse_model_config(source)


# --- streaming state keeps the longest online window -------------------------------------------


def conf_with_state_days(tmp_path: Path, days: int) -> Path:
    raw = yaml.safe_load((REPO / "conf" / "local.yaml").read_text())
    raw.setdefault("streaming", {})["state_days"] = days
    conf = tmp_path / "conf"
    conf.mkdir(exist_ok=True)
    (conf / "local.yaml").write_text(yaml.safe_dump(raw))
    return conf


def test_settings_keeping_fewer_days_than_the_longest_online_window_are_refused_naming_both(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("PLAYERPULSE_CONF_DIR", str(conf_with_state_days(tmp_path, 7)))

    with pytest.raises(ConfigError) as refused:
        load_settings("local", tmp_path / "var")

    message = str(refused.value)
    assert "'streaming.state_days'" in message
    assert "is 7, shorter than the 30-day window of online feature set player_activity_v1" in message
    assert "at least 30" in message


def test_settings_keeping_the_longest_online_window_load(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PLAYERPULSE_CONF_DIR", str(conf_with_state_days(tmp_path, 30)))

    assert load_settings("local", tmp_path / "var").streaming.state_days == 30


def test_the_stream_refuses_given_sets_whose_window_outlasts_its_state(settings: Settings) -> None:
    quarterly = FeatureSet("quarterly", 1, aggregations=(Aggregation("ad_watch", ("ad_view",), "count", (90,)),))

    refused = r"streaming.state_days is 30, shorter than the 90-day window of online feature set quarterly_v1"
    with pytest.raises(ConfigError, match=refused):
        ProfileBatchWriter(settings, "cp", (PLAYER_ACTIVITY_V1, quarterly))


def test_a_long_window_of_a_set_that_is_not_online_needs_no_streaming_state(settings: Settings) -> None:
    archive = FeatureSet(
        "archive", 1, aggregations=(Aggregation("ad_watch", ("ad_view",), "count", (365,)),), online=False
    )

    assert ProfileBatchWriter(settings, "cp", (PLAYER_ACTIVITY_V1, archive)).context(0).feature_sets == (
        PLAYER_ACTIVITY_V1,
    )
