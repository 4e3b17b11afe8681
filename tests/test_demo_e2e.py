"""The whole platform end to end at tiny size: what `make demo` does, asserted."""

from __future__ import annotations

import pytest
from rich.console import Console

from features.config import Settings

pytestmark = [pytest.mark.spark, pytest.mark.e2e]


@pytest.fixture(scope="module")
def demo_run(spark, tmp_path_factory):
    from features.config import load_settings
    from playerpulse.demo import run_demo

    settings = load_settings("local", tmp_path_factory.mktemp("demo") / "var")
    summary = run_demo(
        settings,
        players=150,
        days=21,
        seed=3,
        console=Console(quiet=True),
        spark=spark,
        live_players=2,
        latency_rounds=5,
        predict_calls=20,
    )
    return settings, summary


def test_every_lake_table_has_rows(demo_run):
    _, summary = demo_run
    for table in (
        "bronze.player_events",
        "bronze.dead_letter",
        "silver.player_events",
        "silver.quarantine",
        "gold.player_daily",
        "gold.player_features_v1",
        "gold.training_store_offer",
        "gold.training_churn_risk",
    ):
        assert summary.table_rows[table] > 0, table


def test_silver_holds_each_accepted_event_once(demo_run, spark):
    summary = demo_run[1]
    silver = spark.table("silver.player_events")
    assert silver.count() == silver.select("event_id").distinct().count()
    assert summary.table_rows["bronze.player_events"] > summary.table_rows["silver.player_events"]


def test_store_offer_is_registered_with_a_champion(demo_run):
    import mlflow

    settings: Settings = demo_run[0]
    client = mlflow.MlflowClient(
        tracking_uri=settings.mlflow.tracking_uri,
        registry_uri=settings.mlflow.registry_uri or settings.mlflow.tracking_uri,
    )
    champion = client.get_model_version_by_alias("store_offer", "champion")
    assert int(champion.version) >= 1
    assert demo_run[1].models["store_offer"]["test_auc"] > 0.5


def test_both_models_were_trained_validated_and_promoted_with_their_ceiling_gap(demo_run):
    models = demo_run[1].models
    assert sorted(models) == ["churn_risk", "store_offer"]
    for name, figures in models.items():
        assert "champion" in figures["aliases"], name
        assert figures["auc_gap_to_ceiling"] == figures["auc_ceiling"] - figures["auc_on_ceiling_rows"]
    assert models["churn_risk"]["test_auc"] > 0.7


def test_churn_risk_answers_with_a_retention_action(demo_run):
    served = [p for p in demo_run[1].predictions if p["model"] == "churn_risk" and not p["fallback"]]
    assert served
    assert {p["prediction"]["action"] for p in served} <= {"comeback_reward", "reminder_push", "none"}


def test_a_live_event_changed_the_players_profile(demo_run):
    _, summary = demo_run
    assert summary.profile_changes
    assert all(change["changed"] for change in summary.profile_changes)
    assert all(ms >= 0 for ms in summary.event_to_profile_ms)


def test_the_champion_answered_with_an_offer(demo_run):
    _, summary = demo_run
    served = [p for p in summary.predictions if not p["fallback"]]
    assert served
    assert 0.0 <= served[0]["prediction"]["score"] <= 1.0
    assert served[0]["model"] == "store_offer"
    assert summary.predict_ms


def test_the_demo_lands_its_own_traffic_and_renders_every_report(demo_run, spark):
    from pathlib import Path

    from pipelines.session import table_path

    settings, summary = demo_run
    predictions = spark.read.format("delta").load(table_path(settings, "gold.predictions"))
    landed, offers = predictions.count(), predictions.filter("model = 'store_offer'").count()
    latency = Path(summary.reports["pages"]["latency"]).read_text()
    model = Path(summary.reports["pages"]["store_offer"]).read_text()

    assert summary.reports["latency_rows"] > 0
    assert summary.reports["prediction_rows"] == landed
    assert "data:image/png;base64," in latency
    assert "store_offer" in model and f"{offers} logged predictions" in model
    assert "churn_risk" in Path(summary.reports["pages"]["churn_risk"]).read_text()
