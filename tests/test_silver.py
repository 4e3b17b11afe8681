"""silver.player_events and silver.quarantine: typed, skew-corrected, deduplicated, quarantined."""

from __future__ import annotations

from datetime import date

import pytest
from event_factory import event, ms, put_events

from features.properties import QUALITY_RULES
from pipelines import bronze, silver
from pipelines.session import table_path

pytestmark = pytest.mark.spark


def _land(spark, settings, events):
    put_events(settings, events)
    bronze.ingest_events(spark, settings)
    return silver.run(spark, settings, validate=False)


def _table(spark, settings, name):
    return spark.read.format("delta").load(table_path(settings, name))


def test_event_time_is_corrected_for_device_clock_skew_and_dates_the_row(spark, settings):
    # the device clock runs an hour ahead: it says 00:30 on the 3rd, the server's clock 23:30 on the 2nd
    skewed = event(
        "session_start",
        event_time="2026-11-03T00:30:00",
        sent_at=ms("2026-11-03T00:31:00"),
        received_at=ms("2026-11-02T23:31:00"),
    )
    _land(spark, settings, [skewed])

    row = (
        _table(spark, settings, silver.EVENTS_TABLE)
        .selectExpr("unix_millis(event_time) AS t", "unix_millis(device_event_time) AS device_t", "event_date")
        .first()
    )
    assert row.t == ms("2026-11-02T23:30:00")
    assert row.device_t == ms("2026-11-03T00:30:00")
    assert row.event_date == date(2026, 11, 2)


def test_properties_become_typed_columns_with_booleans_as_doubles(spark, settings):
    _land(
        spark,
        settings,
        [
            event("purchase", properties={"sku": "gem", "price_usd": "4.99"}),
            event("match_end", properties={"won": "true", "score": 1200}),
        ],
    )

    rows = {r.event_type: r for r in _table(spark, settings, silver.EVENTS_TABLE).collect()}
    assert (rows["purchase"].sku, rows["purchase"].price_usd, rows["purchase"].won) == ("gem", 4.99, None)
    assert (rows["match_end"].won, rows["match_end"].score) == (1.0, 1200.0)
    assert dict(_table(spark, settings, silver.EVENTS_TABLE).dtypes)["won"] == "double"


def test_copies_of_one_event_in_a_batch_keep_the_one_received_first(spark, settings):
    first = event(received_at=ms("2026-11-02T10:00:05"))
    resent = {**first, "received_at": ms("2026-11-02T10:00:09"), "country": "FR"}
    _land(spark, settings, [resent, first])

    rows = _table(spark, settings, silver.EVENTS_TABLE).collect()
    assert [(r.event_id, r.country) for r in rows] == [(first["event_id"], "DE")]


def test_a_copy_arriving_in_a_later_run_is_dropped(spark, settings):
    original = event()
    assert _land(spark, settings, [original, event()])[silver.EVENTS_TABLE] == 2

    metrics = _land(spark, settings, [{**original, "received_at": original["received_at"] + 60_000}])

    assert metrics == {"rows_in": 1, silver.EVENTS_TABLE: 0, silver.QUARANTINE_TABLE: 0}
    assert _table(spark, settings, silver.EVENTS_TABLE).count() == 2


def test_rows_breaking_a_rule_are_quarantined_with_the_first_rule_they_break(spark, settings):
    no_sku_bad_price = event("purchase", properties={"price_usd": -3})
    level_zero = event("level_up", properties={"level": 0})
    metrics = _land(spark, settings, [no_sku_bad_price, level_zero, event("ad_view")])

    assert (metrics[silver.EVENTS_TABLE], metrics[silver.QUARANTINE_TABLE]) == (1, 2)
    reasons = {r.event_id: r.quarantine_reason for r in _table(spark, settings, silver.QUARANTINE_TABLE).collect()}
    by_rule = {(rule.event_type, rule.prop): rule.reason for rule in QUALITY_RULES}
    assert reasons == {
        no_sku_bad_price["event_id"]: by_rule[("purchase", "sku")],
        level_zero["event_id"]: by_rule[("level_up", "level")],
    }
    assert [r.event_type for r in _table(spark, settings, silver.EVENTS_TABLE).collect()] == ["ad_view"]


def test_silver_is_partitioned_by_event_date(spark, settings):
    from delta.tables import DeltaTable

    _land(spark, settings, [event()])

    detail = DeltaTable.forPath(spark, table_path(settings, silver.EVENTS_TABLE)).detail().first()
    assert detail.partitionColumns == ["event_date"]


def test_silver_needs_bronze_first(spark, settings):
    from features.errors import TableNotFound

    with pytest.raises(TableNotFound, match="run the bronze job first"):
        silver.run(spark, settings)
