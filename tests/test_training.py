"""Training: point-in-time sets from the lake, MLflow runs, then validation, promotion and rollback
of the versions training registers (tests/test_promotion.py covers the gate's records in depth).

Tiny stand-ins for ``silver.player_events`` and ``gold.player_features_v1`` are written here
with the shared Spark session: players who viewed the store more on a day are more likely to buy
the next day, so a model has something to learn, and every other feature is noise.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from features.config import MlflowConfig, Settings, load_settings
from features.definitions import PLAYER_ACTIVITY_V1
from features.errors import PromotionRefused, TableNotFound, TrainingFailed
from features.model_config import LabelSpec, load_model_config
from pipelines.session import table_path
from training.dataset import build_training_set, label_snapshots
from training.promote import list_models, promote, rollback
from training.registry import ensure_experiment, tracking_client, version_by_alias
from training.reproduce import reproduce
from training.train import train_model
from training.validate import validate

pytestmark = pytest.mark.spark

DAY0 = date(2026, 10, 1)
SNAPSHOT_DAYS = 20
PLAYERS = 40
FEATURES = PLAYER_ACTIVITY_V1.feature_names
COUNTS = {a.output_name(w) for a in PLAYER_ACTIVITY_V1.aggregations if a.op == "count" for w in a.windows}
GOLD_DDL = "game_id STRING, player_id STRING, as_of_date DATE, as_of TIMESTAMP, " + ", ".join(
    f"{n} {'LONG' if n in COUNTS else 'DOUBLE'}" for n in FEATURES
)
SILVER_DDL = (
    "event_id STRING, event_type STRING, player_id STRING, game_id STRING, event_time TIMESTAMP, "
    "event_date DATE, received_at TIMESTAMP, price_usd DOUBLE, sku STRING"
)


def end_of(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 23, 59, 59, 999_000, tzinfo=UTC)


def p_purchase(store_views: int) -> float:
    return 1 / (1 + math.exp(3.0 - 1.2 * store_views))


def snapshot(player: str, day: date, game_id: str = "demo", **values: Any) -> tuple[Any, ...]:
    return (game_id, player, day, end_of(day), *[values.get(n) for n in FEATURES])


def event(n: int, player: str, etype: str, at: datetime, game_id: str = "demo") -> tuple[Any, ...]:
    price, sku = (4.99, "starter") if etype == "purchase" else (None, None)
    return (f"e{n}", etype, player, game_id, at, at.date(), at, price, sku)


def write_lake(spark: Any, settings: Settings, snaps: list[tuple[Any, ...]], events: list[tuple[Any, ...]]) -> None:
    spark.createDataFrame(snaps, GOLD_DDL).write.format("delta").mode("overwrite").save(
        table_path(settings, "gold.player_features_v1")
    )
    spark.createDataFrame(events, SILVER_DDL).write.format("delta").mode("overwrite").save(
        table_path(settings, "silver.player_events")
    )


def learnable_lake(seed: int = 7) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], pd.DataFrame]:
    """Snapshots, events, and the true next-day purchase probability of every snapshot."""
    rng = np.random.default_rng(seed)
    snaps, events, truth = [], [], []
    for p in range(PLAYERS):
        player, intent = f"p{p:03d}", rng.uniform(0.2, 3.0)
        for d in range(SNAPSHOT_DAYS):
            day = DAY0 + timedelta(days=d)
            views = int(rng.poisson(intent))
            snaps.append(
                snapshot(
                    player,
                    day,
                    store_view_count_1d=views,
                    store_view_count_7d=views + int(rng.poisson(3 * intent)),
                    session_count_7d=int(rng.poisson(5)),
                    ad_view_count_7d=int(rng.poisson(4)),
                    match_count_1d=int(rng.poisson(2)),
                    days_since_last_event=float(rng.uniform(0, 2)) if rng.random() > 0.1 else None,
                )
            )
            truth.append((player, day + timedelta(days=1), p_purchase(views)))
            if rng.random() < p_purchase(views):
                at = end_of(day) + timedelta(hours=float(rng.uniform(0.01, 23.9)))
                events.append(event(len(events), player, "purchase", at))
            events.append(event(len(events), player, "session_start", end_of(day) - timedelta(hours=3)))
    last = end_of(DAY0 + timedelta(days=SNAPSHOT_DAYS - 1)) + timedelta(hours=24)
    events.append(event(len(events), "p000", "session_start", last))
    return snaps, events, pd.DataFrame(truth, columns=["player_id", "date", "p_purchase"])


def model_yaml(name: str, features: list[str], min_auc: float, **training: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{name} (test)",
        "feature_set": "player_activity_v1",
        "features": features,
        "label": {"event_type": "purchase", "horizon_hours": 24, "ground_truth": "p_purchase"},
        "training": {
            "test_days": 4,
            "min_history_days": 3,
            "num_boost_round": 40,
            "early_stopping_rounds": 5,
            "xgboost": {"max_depth": 3, "eta": 0.2},
            **training,
        },
        # 160 holdout rows: sampling noise alone puts a calibrated model's ECE near 0.04
        "quality_gate": {"min_auc": min_auc, "max_auc_drop_vs_champion": 0.02, "max_calibration_error": 0.1},
        "response": {
            "tiers": [
                {"min_score": 0.35, "content": {"offer": "premium_bundle"}},
                {"min_score": 0.0, "content": {"offer": "free_daily_gift"}},
            ]
        },
        "fallback": {"content": {"offer": "free_daily_gift"}},
    }


GOOD = ["store_view_count_1d", "store_view_count_7d", "session_count_7d", "ad_view_count_7d"]
NOISE = ["ad_view_count_7d", "match_count_1d"]


@pytest.fixture(scope="module")
def lake(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path]:
    """Settings whose lake holds the learnable tables, and the ground-truth parquet."""
    base = tmp_path_factory.mktemp("training-lake")
    settings = load_settings("local", base / "var")
    snaps, events, truth = learnable_lake()
    write_lake(spark, settings, snaps, events)
    truth_path = base / "truth.parquet"
    truth.to_parquet(truth_path)
    return settings, truth_path


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite file with its schema created: copying it skips ~6 s of migrations per test."""
    folder = tmp_path_factory.mktemp("mlflow-template")
    settings = load_settings("local", folder / "var").model_copy(
        update={"mlflow": MlflowConfig(tracking_uri=f"sqlite:///{folder}/mlflow.db", artifact_root=str(folder))}
    )
    tracking_client(settings).search_experiments()
    return folder / "mlflow.db"


def isolated(settings: Settings, folder: Path, template: Path | None = None) -> Settings:
    """The same lake with a models_dir and an MLflow store of its own under ``folder``."""
    (folder / "models").mkdir(parents=True)
    if template is not None:
        shutil.copyfile(template, folder / "mlflow.db")
    mlflow = MlflowConfig(tracking_uri=f"sqlite:///{folder}/mlflow.db", artifact_root=str(folder / "artifacts"))
    return settings.model_copy(update={"mlflow": mlflow, "models_dir": str(folder / "models")})


def declare(settings: Settings, cfg: dict[str, Any]) -> None:
    (Path(settings.models_dir) / f"{cfg['name']}.yaml").write_text(yaml.safe_dump(cfg))


@pytest.fixture
def fresh(lake: tuple[Settings, Path], empty_store: Path, tmp_path: Path) -> Settings:
    """The shared lake, an empty MLflow store, and a learnable declaration of model 'offer'."""
    settings = isolated(lake[0], tmp_path / "own", empty_store)
    declare(settings, model_yaml("offer", GOOD, min_auc=0.6))
    return settings


@pytest.fixture(scope="module")
def first_run(spark: Any, lake: tuple[Settings, Path], tmp_path_factory: pytest.TempPathFactory):
    """One training run of a learnable model into an empty store, with ground truth."""
    settings = isolated(lake[0], tmp_path_factory.mktemp("first-run"))
    declare(settings, model_yaml("offer", GOOD, min_auc=0.6))
    return settings, train_model(spark, settings, "offer", ground_truth_path=str(lake[1]))


@pytest.fixture(scope="module")
def first_champion(first_run: tuple[Settings, Any]):
    """The first run's version validated, then promoted: train → validate → promote."""
    settings, result = first_run
    return settings, result, validate(settings, "offer", result.version), promote(settings, "offer", result.version)


def ship(spark: Any, settings: Settings) -> int:
    """Train, validate and promote a version (asserting it passes); its number."""
    version = train_model(spark, settings, "offer").version
    assert validate(settings, "offer", version).passed
    promote(settings, "offer", version)
    return version


# --- point-in-time training sets -------------------------------------------------------------


@pytest.fixture(scope="module")
def leak_set(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, dict[str, Any]]]:
    """Four players snapshotted on day D, purchases at the label window's edges, and player
    "twin" in two games, buying in game "rival" only: the training set built from them, and the
    snapshot rows as they were before the build."""
    base = tmp_path_factory.mktemp("leak")
    settings = isolated(load_settings("local", base / "var"), base / "own")
    d = DAY0 + timedelta(days=5)
    as_of = end_of(d)
    snaps = [snapshot(p, d, store_view_count_1d=i) for i, p in enumerate(["at", "end", "after", "none"])]
    snaps += [snapshot("twin", d, store_view_count_1d=5), snapshot("twin", d, "rival", store_view_count_1d=6)]
    events = [
        event(0, "at", "purchase", as_of),
        event(1, "end", "purchase", as_of + timedelta(hours=24)),
        event(2, "after", "purchase", as_of + timedelta(hours=24, milliseconds=1)),
        event(3, "none", "session_start", end_of(DAY0)),
        event(4, "twin", "purchase", as_of + timedelta(hours=1), "rival"),
    ]
    write_lake(spark, settings, snaps, events)
    declare(settings, model_yaml("offer", GOOD, min_auc=0.6, min_history_days=0))
    gold = table_path(settings, "gold.player_features_v1")
    before = {(r["game_id"], r["player_id"]): r.asDict() for r in spark.read.format("delta").load(gold).collect()}
    return build_training_set(spark, settings, load_model_config(settings, "offer")), before, settings


def labels_of(ts: Any, game_id: str = "demo") -> dict[str, int]:
    rows = ts.df.where(f"game_id = '{game_id}'").select("player_id", "label").collect()
    return {r["player_id"]: r["label"] for r in rows}


def test_an_event_exactly_at_as_of_is_not_in_the_label(leak_set: tuple[Any, Any, Settings]) -> None:
    assert labels_of(leak_set[0])["at"] == 0


def test_an_event_exactly_at_the_end_of_the_horizon_is_in_the_label(leak_set: tuple[Any, Any, Settings]) -> None:
    assert labels_of(leak_set[0])["end"] == 1


def test_an_event_one_ms_after_the_horizon_is_not_in_the_label(leak_set: tuple[Any, Any, Settings]) -> None:
    assert labels_of(leak_set[0])["after"] == 0


def test_a_player_without_label_events_is_negative(leak_set: tuple[Any, Any, Settings]) -> None:
    assert labels_of(leak_set[0])["none"] == 0


def test_a_label_event_of_the_same_player_id_in_another_game_is_not_this_games_label(
    leak_set: tuple[Any, Any, Settings],
) -> None:
    assert (labels_of(leak_set[0])["twin"], labels_of(leak_set[0], "rival")["twin"]) == (0, 1)


def test_rows_are_keyed_by_game_player_and_snapshot_with_game_id_no_feature(
    leak_set: tuple[Any, Any, Settings],
) -> None:
    ts = leak_set[0]
    assert ts.df.columns == ["game_id", "player_id", "as_of_date", "as_of", *FEATURES, "label"]
    assert ts.df.select("game_id", "player_id", "as_of").distinct().count() == ts.df.count() == 6


@pytest.fixture(scope="module")
def kinds(spark: Any) -> dict[str, dict[str, Any]]:
    """Label kind → player → label, for snapshots at D's end and purchases at the window's edges:
    "two" buys twice inside the window (4.99 each), "edges" at as_of and 1 ms past the end only."""
    d = DAY0 + timedelta(days=5)
    as_of = end_of(d)
    keys = "game_id STRING, player_id STRING, as_of_date DATE, as_of TIMESTAMP"
    snaps = spark.createDataFrame([snapshot(p, d)[:4] for p in ("two", "edges", "none")], keys)
    events = spark.createDataFrame(
        [
            event(0, "two", "purchase", as_of + timedelta(hours=1)),
            event(1, "two", "purchase", as_of + timedelta(hours=24)),
            event(2, "edges", "purchase", as_of),
            event(3, "edges", "purchase", as_of + timedelta(hours=24, milliseconds=1)),
            event(4, "none", "session_start", as_of + timedelta(hours=2)),
        ],
        SILVER_DDL,
    )
    out = {}
    for kind in ("occurrence", "absence", "regression"):
        label = LabelSpec(
            kind=kind, event_type="purchase", horizon_hours=24, value="price_usd" if kind == "regression" else None
        )
        out[kind] = {r["player_id"]: r["label"] for r in label_snapshots(snaps, events, label).collect()}
    return out


def test_an_absence_label_is_1_exactly_where_no_label_event_falls_in_the_window(kinds: dict[str, Any]) -> None:
    assert kinds["absence"] == {"two": 0, "edges": 1, "none": 1}
    assert all(kinds["absence"][p] == 1 - kinds["occurrence"][p] for p in kinds["absence"])


def test_a_regression_label_sums_the_value_over_the_window_and_is_0_without_events(kinds: dict[str, Any]) -> None:
    assert kinds["regression"] == pytest.approx({"two": 9.98, "edges": 0.0, "none": 0.0})


def test_features_are_copied_from_the_snapshot_untouched(leak_set: tuple[Any, Any, Settings]) -> None:
    ts, before, _ = leak_set
    for row in ts.df.collect():
        key = (row["game_id"], row["player_id"])
        assert {n: row[n] for n in FEATURES} == {n: before[key][n] for n in FEATURES}
    assert ts.inputs["gold.player_features_v1"] == 0  # read, never rewritten


def test_a_set_rebuilt_at_its_recorded_versions_ignores_events_that_arrived_later(
    spark: Any, leak_set: tuple[Any, Any, Settings]
) -> None:
    ts, _, settings = leak_set
    late = event(9, "none", "purchase", end_of(DAY0 + timedelta(days=5)) + timedelta(hours=1))
    spark.createDataFrame([late], SILVER_DDL).write.format("delta").mode("append").save(
        table_path(settings, "silver.player_events")
    )
    cfg = load_model_config(settings, "offer")
    pinned, current = build_training_set(spark, settings, cfg, ts.inputs), build_training_set(spark, settings, cfg)
    assert (labels_of(pinned)["none"], labels_of(current)["none"]) == (0, 1)
    assert pinned.inputs == ts.inputs
    assert current.inputs["silver.player_events"] == ts.inputs["silver.player_events"] + 1


def test_snapshots_whose_label_window_is_not_fully_observed_are_dropped(spark: Any, fresh: Settings) -> None:
    settings = fresh
    ts = build_training_set(spark, settings, load_model_config(settings, "offer"))
    days = {r["as_of_date"] for r in ts.df.select("as_of_date").distinct().collect()}
    assert max(days) == DAY0 + timedelta(days=SNAPSHOT_DAYS - 1)  # last event is exactly its horizon end

    later = model_yaml("offer", GOOD, min_auc=0.6)
    later["label"]["horizon_hours"] = 24.001
    declare(settings, later)
    ts = build_training_set(spark, settings, load_model_config(settings, "offer"))
    days = {r["as_of_date"] for r in ts.df.select("as_of_date").distinct().collect()}
    assert max(days) == DAY0 + timedelta(days=SNAPSHOT_DAYS - 2)


def test_snapshots_start_after_min_history_days_of_data(spark: Any, fresh: Settings) -> None:
    settings = fresh
    declare(settings, model_yaml("offer", GOOD, min_auc=0.6, min_history_days=3))
    ts = build_training_set(spark, settings, load_model_config(settings, "offer"))
    first = ts.df.agg({"as_of_date": "min"}).first()[0]
    assert first == DAY0 + timedelta(days=2)  # days 0, 1, 2 of data lie behind it


def test_a_weekly_cadence_keeps_one_snapshot_day_in_seven_from_the_first_day(spark: Any, fresh: Settings) -> None:
    declare(fresh, model_yaml("offer", GOOD, min_auc=0.6, min_history_days=0, snapshot_every_days=7))
    ts = build_training_set(spark, fresh, load_model_config(fresh, "offer"))
    days = sorted(r["as_of_date"] for r in ts.df.select("as_of_date").distinct().collect())
    assert days == [DAY0, DAY0 + timedelta(days=7), DAY0 + timedelta(days=14)]


def test_the_training_set_is_written_and_names_the_versions_it_read(spark: Any, fresh: Settings) -> None:
    settings = fresh
    ts = build_training_set(spark, settings, load_model_config(settings, "offer"))
    assert ts.table == "gold.training_offer"
    assert spark.read.format("delta").load(table_path(settings, ts.table)).count() == ts.df.count() > 0
    assert set(ts.inputs) == {"gold.player_features_v1", "silver.player_events"}


def test_a_missing_input_table_says_what_to_run(spark: Any, settings: Settings, tmp_path: Path) -> None:
    own = isolated(settings, tmp_path / "own")
    declare(own, model_yaml("offer", GOOD, min_auc=0.6))
    with pytest.raises(TableNotFound, match=r"gold\.player_features_v1 does not exist.*playerpulse pipeline"):
        build_training_set(spark, own, load_model_config(own, "offer"))


# --- one training run ------------------------------------------------------------------------


def test_training_registers_a_version_and_validation_then_promotion_make_it_champion(
    first_champion: tuple[Settings, Any, Any, Any],
) -> None:
    settings, result, validation, move = first_champion
    assert result.version == 1
    assert validation.passed, validation.reason
    assert validation.metrics["auc"] == pytest.approx(result.metrics["test_auc"])  # the same holdout rows
    assert move.changed and move.champion == 1
    champion = version_by_alias(tracking_client(settings), "offer", "champion")
    assert champion is not None and int(champion.version) == 1


def test_training_alone_gives_a_version_no_alias(spark: Any, fresh: Settings) -> None:
    result = train_model(spark, fresh, "offer")
    assert tracking_client(fresh).get_model_version("offer", str(result.version)).aliases == []


def test_the_run_logs_test_metrics_that_show_the_signal_was_learned(first_run: tuple[Settings, Any]) -> None:
    settings, result = first_run
    metrics = tracking_client(settings).get_run(result.run_id).data.metrics
    assert {"test_auc", "test_logloss", "base_rate", "rows"} <= set(metrics)
    assert metrics["test_auc"] > 0.7
    assert 0 < metrics["base_rate"] < 1


def test_the_run_logs_calibration_lift_and_importance_with_their_plots(first_run: tuple[Settings, Any]) -> None:
    import mlflow

    settings, result = first_run
    client = tracking_client(settings)
    metrics = client.get_run(result.run_id).data.metrics
    assert {"test_brier", "test_calibration_error", "test_top_decile_lift"} <= set(metrics)
    assert metrics["test_top_decile_lift"] > 1.5  # the top-scored tenth buys far more often than the average
    files = {f.path for f in client.list_artifacts(result.run_id, "evaluation")}
    assert files == {
        f"evaluation/{n}" for n in ("reliability.csv", "reliability.png", "importance_gain.csv", "importance_gain.png")
    }
    importance = pd.read_csv(
        mlflow.artifacts.download_artifacts(f"runs:/{result.run_id}/evaluation/importance_gain.csv")
    )
    assert importance["feature"].iloc[0] == "store_view_count_1d"  # the only feature that drives the label
    assert sorted(importance["feature"]) == sorted(GOOD)


def test_the_training_set_validation_result_is_attached_to_the_run(first_run: tuple[Settings, Any]) -> None:
    import mlflow

    settings, result = first_run
    run = tracking_client(settings).get_run(result.run_id)
    assert run.data.tags["data_validation"] == "passed"
    report = mlflow.artifacts.load_dict(f"runs:/{result.run_id}/data_validation/training_set.json")
    assert report["success"] is True and len(report["results"]) == 5  # keys and label non-null


def test_a_training_set_breaking_an_expectation_stops_the_run_and_names_it(spark: Any, fresh: Settings) -> None:
    declared = model_yaml("offer", GOOD, min_auc=0.6)
    declared["expectations"] = {"label_share": {"low": 0.9, "high": 1.0}}
    declare(fresh, declared)
    with pytest.raises(TrainingFailed, match=r"failed 1 of 6 expectations.*expectations\.label_share.*\[0\.9, 1\.0\]"):
        train_model(spark, fresh, "offer")
    client = tracking_client(fresh)
    [run] = client.search_runs([ensure_experiment(fresh, client)])
    assert (run.info.status, run.data.tags["data_validation"]) == ("FAILED", "failed")
    assert {f.path for f in client.list_artifacts(run.info.run_id, "data_validation")} == {
        "data_validation/training_set.json"
    }
    assert client.search_model_versions("name = 'offer'") == []


def test_a_run_reproduced_from_its_recorded_versions_has_identical_metrics(
    spark: Any, first_run: tuple[Settings, Any]
) -> None:
    settings, result = first_run
    again = reproduce(spark, settings, "offer", result.run_id)
    assert again.identical, again.differences
    assert again.inputs == result.inputs and again.same_code is True
    assert {"test_auc", "test_logloss", "auc_ceiling"} <= set(again.metrics)
    client = tracking_client(settings)
    assert client.get_run(again.run_id).data.tags["reproduces"] == result.run_id
    assert len(client.search_model_versions("name = 'offer'")) == 1  # a reproduction registers nothing


def test_a_tuned_declaration_trains_with_the_best_trials_settings_and_reproduces_its_search(
    spark: Any, fresh: Settings
) -> None:
    cfg = model_yaml("offer", GOOD, min_auc=0.6)
    cfg["training"]["xgboost"]["nthread"] = 1  # two threads on a busy 2-core machine wait on each other
    cfg["tuning"] = {
        "trials": 4,
        "space": {"eta": {"low": 0.05, "high": 0.3, "log": True}, "max_depth": {"low": 2, "high": 4}},
    }
    declare(fresh, cfg)
    result = train_model(spark, fresh, "offer")
    client = tracking_client(fresh)
    params = client.get_run(result.run_id).data.params
    trials = client.search_runs(
        [ensure_experiment(fresh, client)], filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    assert len(trials) == 4 and params["tuning_trials"] == "4"
    assert (params["xgb_eta"], params["xgb_max_depth"]) == (params["tuning_best_eta"], params["tuning_best_max_depth"])
    assert params["rounds_used"] == params["tuning_best_rounds"]
    again = reproduce(spark, fresh, "offer", result.run_id)
    assert again.identical, again.differences
    assert "tuning_best_valid_auc" in again.metrics and "test_auc" in again.metrics


def test_the_run_compares_itself_to_the_ground_truth_ceiling(first_run: tuple[Settings, Any]) -> None:
    settings, result = first_run
    metrics = tracking_client(settings).get_run(result.run_id).data.metrics
    assert metrics["auc_ceiling"] > 0.7
    assert metrics["auc_gap_to_ceiling"] == pytest.approx(metrics["auc_ceiling"] - metrics["auc_on_ceiling_rows"])
    assert -0.05 <= metrics["auc_gap_to_ceiling"] < 0.15


def test_the_run_records_its_lineage(first_run: tuple[Settings, Any]) -> None:
    settings, result = first_run
    tags = tracking_client(settings).get_run(result.run_id).data.tags
    assert tags["lineage.silver.player_events"] == str(result.inputs["silver.player_events"])
    assert tags["lineage.gold.player_features_v1"] == str(result.inputs["gold.player_features_v1"])
    assert tags["feature_set"] == "player_activity_v1"
    assert json.loads(tags["features"]) == GOOD
    assert re.fullmatch(r"[0-9a-f]{40}", tags["git_commit"])  # these tests run inside the git repo


def test_the_feature_names_travel_with_the_model(first_run: tuple[Settings, Any]) -> None:
    import mlflow

    settings, result = first_run
    client = tracking_client(settings)
    artifact = mlflow.artifacts.load_dict(f"runs:/{result.run_id}/feature_names.json")
    info = mlflow.models.get_model_info(f"models:/offer/{result.version}")
    assert artifact["feature_names"] == info.metadata["feature_names"] == GOOD
    assert client.get_model_version("offer", str(result.version)).tags["feature_set"] == "player_activity_v1"


# --- the gate, promotion, rollback -----------------------------------------------------------


def test_a_worse_retrain_fails_validation_against_the_rescored_champion(spark: Any, fresh: Settings) -> None:
    first = ship(spark, fresh)
    declare(fresh, model_yaml("offer", NOISE, min_auc=0.0))
    worse = train_model(spark, fresh, "offer")
    result = validate(fresh, "offer", worse.version)
    assert "max_auc_drop_vs_champion" in result.failed_checks
    assert "below champion v1" in result.reason and "on the same holdout rows" in result.reason
    client = tracking_client(fresh)
    assert int(version_by_alias(client, "offer", "champion").version) == first
    assert int(version_by_alias(client, "offer", "challenger").version) == first
    with pytest.raises(PromotionRefused, match="failed validation"):
        promote(fresh, "offer", worse.version)


def test_a_version_below_min_auc_fails_validation_even_without_a_champion(spark: Any, fresh: Settings) -> None:
    declare(fresh, model_yaml("offer", NOISE, min_auc=0.75))
    result = validate(fresh, "offer", train_model(spark, fresh, "offer").version)
    assert result.failed_checks[0] == "min_auc" and "is below min_auc 0.75" in result.reason
    assert version_by_alias(tracking_client(fresh), "offer", "challenger") is None


def test_a_passing_retrain_becomes_challenger_and_promotion_makes_it_champion(spark: Any, fresh: Settings) -> None:
    first = ship(spark, fresh)
    second = train_model(spark, fresh, "offer")
    assert validate(fresh, "offer", second.version).aliases == ["challenger"]
    move = promote(fresh, "offer")
    assert (move.champion, move.previous_champion) == (second.version, first)
    client = tracking_client(fresh)
    assert int(version_by_alias(client, "offer", "champion").version) == second.version
    assert int(version_by_alias(client, "offer", "previous_champion").version) == first


def test_rollback_returns_the_champion_to_the_previous_one_once(spark: Any, fresh: Settings) -> None:
    first = ship(spark, fresh)
    ship(spark, fresh)
    move = rollback(fresh, "offer")
    assert move.champion == first
    assert int(version_by_alias(tracking_client(fresh), "offer", "champion").version) == first
    with pytest.raises(PromotionRefused, match="no previous champion"):
        rollback(fresh, "offer")


def test_promoting_without_a_challenger_is_refused(spark: Any, fresh: Settings) -> None:
    declare(fresh, model_yaml("offer", NOISE, min_auc=0.75))
    validate(fresh, "offer", train_model(spark, fresh, "offer").version)
    with pytest.raises(PromotionRefused, match="no challenger"):
        promote(fresh, "offer")


def test_the_models_listing_shows_versions_aliases_metrics_and_validation(
    first_champion: tuple[Settings, Any, Any, Any],
) -> None:
    settings, result, _, _ = first_champion
    [model] = list_models(settings)
    assert model["name"] == "offer"
    [version] = model["versions"]
    assert version["version"] == result.version
    assert version["aliases"] == ["challenger", "champion"]
    assert version["metrics"]["test_auc"] == pytest.approx(result.metrics["test_auc"])
    assert version["validation"] == "passed"
