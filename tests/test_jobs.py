"""The job registry and the shared command line of the lake jobs."""

from __future__ import annotations

import pytest
from event_factory import event, put_dead_letters, put_events

from pipelines import bronze, gold, jobs, silver
from pipelines.session import table_path


def test_the_lake_pass_runs_in_data_flow_order_and_upkeep_apart():
    assert [(name, jobs.JOBS[name]) for name in jobs.LAKE_PASS] == [
        ("bronze", bronze.run),
        ("silver", silver.run),
        ("gold", gold.run),
    ]
    assert "maintain" in jobs.JOBS and "maintain" not in jobs.LAKE_PASS


def test_a_job_refuses_an_unknown_env_before_starting_spark(capsys):
    assert bronze.main(["--env", "no-such-env"]) == 1
    assert "no configuration for env 'no-such-env'" in capsys.readouterr().err


@pytest.mark.spark
def test_run_all_takes_stream_events_to_feature_rows(spark, settings):
    put_events(settings, [event("session_start", "p1"), event("purchase", "p2", properties={"price_usd": 1})])
    put_dead_letters(settings, ["not json"])

    metrics = jobs.run_all(spark, settings)

    assert list(metrics) == ["bronze", "silver", "gold"]
    assert metrics["bronze"] == {"bronze.player_events": 2, "bronze.dead_letter": 1}
    assert (metrics["silver"]["silver.player_events"], metrics["silver"]["silver.quarantine"]) == (1, 1)
    assert metrics["gold"] == {
        "gold.player_daily": 1,
        "gold.player_features_v1": 1,
        "gold.player_activity_v2": 1,
        "gold.player_activity_v3": 1,
    }
    row = spark.read.format("delta").load(table_path(settings, "gold.player_features_v1")).first()
    assert (row.player_id, row.session_count_1d) == ("p1", 1)
