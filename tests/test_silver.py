"""silver.player_events and silver.quarantine: typed, skew-corrected, deduplicated, quarantined."""

from __future__ import annotations

from datetime import date

import pytest
from event_factory import event, ms, put_events

from features.config import SilverConfig
from features.errors import DataQualityError
from features.expectations import PROPERTIES, ArrivedInTime, Between, NotNull
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


def test_another_game_reusing_an_event_id_keeps_both_events(spark, settings):
    in_a = event("purchase", properties={"sku": "gem", "price_usd": 1.0}, game_id="alpha")
    in_b = {**event(game_id="beta"), "event_id": in_a["event_id"]}

    _land(spark, settings, [in_a, in_b])
    reused_later = {**event("ad_view", game_id="gamma"), "event_id": in_a["event_id"]}
    _land(spark, settings, [reused_later])

    rows = _table(spark, settings, silver.EVENTS_TABLE).collect()
    assert sorted((r.game_id, r.event_type) for r in rows) == [
        ("alpha", "purchase"),
        ("beta", "session_start"),
        ("gamma", "ad_view"),
    ]
    assert {r.event_id for r in rows} == {in_a["event_id"]}


def test_a_copy_arriving_in_a_later_run_is_dropped(spark, settings):
    original = event()
    assert _land(spark, settings, [original, event()])[silver.EVENTS_TABLE] == 2

    metrics = _land(spark, settings, [{**original, "received_at": original["received_at"] + 60_000}])

    assert metrics == {"rows_in": 1, silver.EVENTS_TABLE: 0, silver.QUARANTINE_TABLE: 0}
    assert _table(spark, settings, silver.EVENTS_TABLE).count() == 2


def test_a_later_copy_whose_corrected_time_falls_on_another_day_is_still_dropped(spark, settings):
    # silver's MERGE reads only the days a copy can lie on: the copy's own, give or take the skew
    t = ms("2026-11-02T23:00:00")
    original = event(event_time=t, sent_at=t, received_at=t + 1_000)
    _land(spark, settings, [original])
    # re-sent 12 h later still stamped with its first sent_at: corrected to 11:00 on the 3rd
    copy = {**original, "received_at": t + 12 * 3_600_000}

    metrics = _land(spark, settings, [copy])

    assert metrics[silver.EVENTS_TABLE] == 0
    assert [r.event_date for r in _table(spark, settings, silver.EVENTS_TABLE).collect()] == [date(2026, 11, 2)]


def _with_silver(settings, **fields):
    return settings.model_copy(update={"silver": SilverConfig(**{**settings.silver.model_dump(), **fields})})


def test_rows_breaking_an_expectation_are_quarantined_with_the_first_one_they_break(spark, settings):
    no_sku_bad_price = event("purchase", properties={"price_usd": -3})
    level_zero = event("level_up", properties={"level": 0})
    metrics = _land(spark, settings, [no_sku_bad_price, level_zero, event("ad_view"), event("ad_view"), event()])

    assert (metrics[silver.EVENTS_TABLE], metrics[silver.QUARANTINE_TABLE]) == (3, 2)
    reasons = {r.event_id: r.quarantine_reason for r in _table(spark, settings, silver.QUARANTINE_TABLE).collect()}
    assert NotNull("sku", "purchase") in PROPERTIES and Between("level", "level_up", 1.0, 100_000.0) in PROPERTIES
    assert reasons == {
        no_sku_bad_price["event_id"]: NotNull("sku", "purchase").reason,
        level_zero["event_id"]: Between("level", "level_up", 1.0, 100_000.0).reason,
    }
    assert sorted(r.event_type for r in _table(spark, settings, silver.EVENTS_TABLE).collect()) == [
        "ad_view",
        "ad_view",
        "session_start",
    ]


def test_a_batch_mostly_failing_fails_the_run_and_leaves_silver_unchanged(spark, settings):
    settings = _with_silver(settings, max_failing_share=0.5)
    _land(spark, settings, [event("ad_view"), event("purchase", properties={"sku": "gem", "price_usd": -1})])
    before = {name: _table(spark, settings, name).count() for name in (silver.EVENTS_TABLE, silver.QUARANTINE_TABLE)}
    broken = [event("purchase", properties={"price_usd": 1.0}) for _ in range(3)]  # no sku

    with pytest.raises(DataQualityError, match=r"3 of 4 rows \(75\.0%\).*max_failing_share = 0\.5.*sku"):
        _land(spark, settings, [*broken, event("ad_view")])

    after = {name: _table(spark, settings, name).count() for name in (silver.EVENTS_TABLE, silver.QUARANTINE_TABLE)}
    assert after == before == {silver.EVENTS_TABLE: 1, silver.QUARANTINE_TABLE: 1}


def test_events_later_than_the_horizon_are_quarantined_and_later_ones_keep_their_own_date(spark, settings):
    settings = _with_silver(settings, late_after_days=7)
    three_days_late = event(event_time="2026-11-02T10:00:00", received_at=ms("2026-11-05T10:00:00"))
    eight_days_late = event(event_time="2026-11-02T10:00:00", received_at=ms("2026-11-10T10:00:01"))

    metrics = _land(spark, settings, [three_days_late, eight_days_late, event(), event()])

    assert (metrics[silver.EVENTS_TABLE], metrics[silver.QUARANTINE_TABLE]) == (3, 1)
    [late] = _table(spark, settings, silver.QUARANTINE_TABLE).collect()
    assert (late.event_id, late.quarantine_reason) == (eight_days_late["event_id"], ArrivedInTime(7).reason)
    assert "too late" in late.quarantine_reason
    dates = {r.event_id: r.event_date for r in _table(spark, settings, silver.EVENTS_TABLE).collect()}
    assert dates[three_days_late["event_id"]] == date(2026, 11, 2)


def test_silver_is_partitioned_by_event_date(spark, settings):
    from delta.tables import DeltaTable

    _land(spark, settings, [event()])

    detail = DeltaTable.forPath(spark, table_path(settings, silver.EVENTS_TABLE)).detail().first()
    assert detail.partitionColumns == ["event_date"]


def test_silver_needs_bronze_first(spark, settings):
    from features.errors import TableNotFound

    with pytest.raises(TableNotFound, match="run the bronze job first"):
        silver.run(spark, settings)


def test_silver_keeps_running_after_rows_are_deleted_from_bronze(spark, settings):
    """Erasure and retention delete bronze rows; silver's stream over bronze must not wedge on it."""
    from delta.tables import DeltaTable

    first = [event("session_start", player_id="keep"), event("session_start", player_id="gone")]
    _land(spark, settings, first)
    DeltaTable.forPath(spark, table_path(settings, "bronze.player_events")).delete("player_id = 'gone'")
    metrics = _land(spark, settings, [event("session_start", player_id="later")])
    assert metrics[silver.EVENTS_TABLE] == 1
