"""The Great Expectations suite over silver.player_events: it passes clean data and stops bad data."""

from __future__ import annotations

import json
import uuid

import pytest
from event_factory import event, put_events

from features.errors import DataQualityError
from pipelines import bronze, silver
from pipelines.quality import validate_silver
from pipelines.session import table_path

pytestmark = pytest.mark.spark


def test_clean_silver_passes_and_the_result_is_kept_as_json(spark, settings):
    put_events(settings, [event("purchase", properties={"sku": "gem", "price_usd": 2.5}), event()])
    bronze.ingest_events(spark, settings)

    metrics = silver.run(spark, settings)

    report = json.loads((settings.reports_dir / "quality").glob("*.json").__next__().read_text())
    assert metrics["quality"]["success"] is True
    assert report["success"] is True and report["statistics"]["evaluated_expectations"] >= 10


def test_duplicate_ids_and_unknown_event_types_fail_with_a_named_error(spark, settings):
    silver_path = table_path(settings, silver.EVENTS_TABLE)
    same_id = str(uuid.uuid4())
    bad = spark.createDataFrame(
        [(same_id, "purchase"), (same_id, "teleport")], "event_id string, event_type string"
    ).selectExpr(
        "*",
        "'p1' AS player_id",
        "'demo' AS game_id",
        "current_timestamp() AS event_time",
        "current_timestamp() AS received_at",
        "current_date() AS event_date",
        "'ios' AS platform",
        "CAST(NULL AS DOUBLE) AS price_usd",
        "CAST(NULL AS DOUBLE) AS won",
    )
    bad.write.format("delta").save(silver_path)

    with pytest.raises(DataQualityError) as failure:
        validate_silver(spark, settings)

    message = str(failure.value)
    assert "expect_column_values_to_be_unique(column=event_id)" in message
    assert "expect_column_values_to_be_in_set(column=event_type)" in message
    assert list((settings.reports_dir / "quality").glob("*.json"))


def test_silver_run_fails_when_clean_rows_break_the_suite(spark, settings):
    # no quality rule covers a store_view's price, but the suite bounds price_usd everywhere
    put_events(settings, [event("store_view", properties={"price_usd": 5000})])
    bronze.ingest_events(spark, settings)

    with pytest.raises(DataQualityError, match="price_usd"):
        silver.run(spark, settings)
