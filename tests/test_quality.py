"""Great Expectations on what silver commits: built from features.expectations, run on every micro-batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from event_factory import event, put_events

from features.expectations import TABLE, Between, row_expectations
from pipelines import bronze, silver
from pipelines.quality import silver_expectations, silver_validator
from pipelines.session import table_path

pytestmark = pytest.mark.spark


def _table(spark, settings, name):
    return spark.read.format("delta").load(table_path(settings, name))


def test_the_suite_holds_one_gx_expectation_per_declared_expectation_described_by_its_reason():
    declared = [*row_expectations(7.0), *TABLE]

    suite = silver_expectations(7.0)

    assert [e.description for e in suite] == [e.reason for e in declared]
    assert [e.expectation_type for e in suite] == [e.gx_type for e in declared]


def test_each_committed_batch_is_validated_and_its_result_kept_as_json(spark, settings):
    put_events(settings, [event("purchase", properties={"sku": "gem", "price_usd": 2.5}), event()])
    bronze.ingest_events(spark, settings)

    metrics = silver.run(spark, settings)

    [path] = metrics["quality"]["reports"]
    report = json.loads(Path(path).read_text())
    assert metrics["quality"]["success"] is True
    assert report["success"] is True
    assert report["statistics"]["evaluated_expectations"] == len(row_expectations()) + len(TABLE)


def test_a_store_view_priced_out_of_range_is_quarantined_and_later_runs_proceed(spark, settings):
    # the wedge of issue 7: no rule on a store_view's price, but the suite bounds price_usd everywhere
    wedge = event("store_view", properties={"price_usd": 5000})
    put_events(settings, [event("ad_view"), wedge, event("purchase", properties={"sku": "gem", "price_usd": 4.99})])
    bronze.ingest_events(spark, settings)

    first = silver.run(spark, settings)

    [row] = _table(spark, settings, silver.QUARANTINE_TABLE).collect()
    assert (row.event_id, row.quarantine_reason) == (
        wedge["event_id"],
        Between("price_usd", low=0.0, high=1000.0).reason,
    )
    assert row.quarantine_reason.startswith("expect_column_values_to_be_between(column=price_usd")
    assert (first[silver.EVENTS_TABLE], first["quality"]["success"]) == (2, True)

    put_events(settings, [event("ad_view"), event()])
    bronze.ingest_events(spark, settings)
    second = silver.run(spark, settings)

    assert (second[silver.EVENTS_TABLE], second[silver.QUARANTINE_TABLE], second["quality"]["success"]) == (2, 0, True)
    assert _table(spark, settings, silver.EVENTS_TABLE).count() == 4


def test_rows_the_split_let_through_by_mistake_fail_the_suite_naming_the_expectations(spark, settings):
    same_id = event()
    put_events(settings, [same_id, {**same_id, "received_at": same_id["received_at"] + 5}, event("teleport")])
    bronze.ingest_events(spark, settings)
    # silver's rows before the split: a copy of one event and an event type the contract does not know
    rows = silver.silver_rows(_table(spark, settings, bronze.EVENTS_TABLE)).drop("quarantine_reason")

    report = silver_validator(settings.reports_dir).validate(rows)

    assert report.success is False
    failed = "; ".join(report.failed)
    assert "expect_compound_columns_to_be_unique(column_list=['game_id', 'event_id'])" in failed
    assert "expect_column_values_to_be_in_set(column=event_type)" in failed
    assert report.path.is_file()
