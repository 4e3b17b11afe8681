"""bronze.player_events and bronze.dead_letter: what lands, how it is stored, and that it lands once."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from event_factory import event, ms, put_dead_letters, put_events

from features.deadletter import DeadLetter
from pipelines import bronze
from pipelines.session import table_path

pytestmark = pytest.mark.spark


def _events(spark, settings):
    return spark.read.format("delta").load(table_path(settings, bronze.EVENTS_TABLE))


def test_events_land_with_device_times_and_the_corrected_event_date(spark, settings):
    late = event(
        "purchase",
        event_time="2026-11-02T23:59:59.999",
        sent_at=ms("2026-11-03T00:00:01"),
        received_at=ms("2026-11-03T00:00:03"),
        properties={"sku": "gem", "price_usd": 1.5},
    )
    put_events(settings, [event(event_time="2026-11-01T08:00:00"), late])

    assert bronze.ingest_events(spark, settings) == 2

    row = (
        _events(spark, settings)
        .where(f"event_id = '{late['event_id']}'")
        .selectExpr(
            "unix_millis(event_time) AS event_ms",
            "unix_millis(sent_at) AS sent_ms",
            "unix_millis(received_at) AS received_ms",
            "stream_at",
            "ingested_at",
            "event_date",
            "properties",
        )
        .first()
    )
    assert (row.event_ms, row.sent_ms, row.received_ms) == (late["event_time"], late["sent_at"], late["received_at"])
    assert row.event_date == date(2026, 11, 3)  # 23:59:59.999 on a clock 2 s slow: the 3rd, as silver says
    assert row.ingested_at is not None and row.stream_at is not None
    assert row.properties == '{"sku":"gem","price_usd":1.5}'
    schema = dict(_events(spark, settings).dtypes)
    assert list(schema) == [
        "event_id",
        "schema_version",
        "event_type",
        "player_id",
        "game_id",
        "event_time",
        "sent_at",
        "received_at",
        "stream_at",
        "platform",
        "app_version",
        "country",
        "session_id",
        "properties",
        "stream_shard",
        "stream_position",
        "ingested_at",
        "event_date",
    ]
    times = ("event_time", "sent_at", "received_at", "stream_at", "ingested_at")
    assert [schema[c] for c in times] == ["timestamp"] * len(times)
    assert schema["event_date"] == "date"


def test_events_are_partitioned_by_event_date_in_zstd_parquet(spark, settings):
    from delta.tables import DeltaTable

    put_events(settings, [event(event_time="2026-11-01T08:00:00"), event(event_time="2026-11-02T08:00:00")])
    bronze.ingest_events(spark, settings)

    path = table_path(settings, bronze.EVENTS_TABLE)
    assert DeltaTable.forPath(spark, path).detail().first().partitionColumns == ["event_date"]
    files = sorted(Path(path).glob("event_date=*/*.parquet"))
    assert {f.parent.name for f in files} == {"event_date=2026-11-01", "event_date=2026-11-02"}
    assert {pq.ParquetFile(f).metadata.row_group(0).column(0).compression for f in files} == {"ZSTD"}


def test_a_device_clock_set_to_1970_does_not_create_a_1970_partition(spark, settings):
    clock_off = event(
        event_time="1970-01-01T00:00:00", sent_at=ms("1970-01-01T00:00:05"), received_at=ms("2026-11-02T10:00:05")
    )
    put_events(settings, [clock_off])
    bronze.ingest_events(spark, settings)

    files = Path(table_path(settings, bronze.EVENTS_TABLE)).glob("event_date=*/*.parquet")
    assert {f.parent.name for f in files} == {"event_date=2026-11-02"}
    row = _events(spark, settings).selectExpr("unix_millis(event_time) AS t").first()
    assert row.t == 0  # the device's own time is kept as sent


def test_rerun_adds_only_records_put_since_the_last_run(spark, settings):
    put_events(settings, [event(player_id="p1"), event(player_id="p2")])
    assert bronze.ingest_events(spark, settings) == 2
    assert bronze.ingest_events(spark, settings) == 0

    put_events(settings, [event(player_id="p3")])
    assert bronze.ingest_events(spark, settings) == 1

    ids = [r.player_id for r in _events(spark, settings).collect()]
    assert sorted(ids) == ["p1", "p2", "p3"]


def test_dead_letters_are_copied_once_and_new_ones_picked_up(spark, settings):
    put_dead_letters(settings, ["bad uuid", "unknown event_type"])
    assert bronze.copy_dead_letters(spark, settings) == 2
    assert bronze.copy_dead_letters(spark, settings) == 0
    put_dead_letters(settings, ["event_time too old"])
    assert bronze.copy_dead_letters(spark, settings) == 1

    rows = spark.read.format("delta").load(table_path(settings, bronze.DEAD_LETTER_TABLE)).collect()
    assert sorted(r.reason for r in rows) == ["bad uuid", "event_time too old", "unknown event_type"]
    assert sorted(r.position for r in rows) == ["1", "2", "3"]
    assert rows[0].received_at.year == 2026 and rows[0].request_id.startswith("req-")


def test_dead_letter_cursor_orders_positions_numerically(spark, settings):
    put_dead_letters(settings, [f"r{i}" for i in range(12)])
    bronze.copy_dead_letters(spark, settings, page_size=5)  # three pages; position "12" > "9"

    _, cursor = bronze.dead_letter_cursor(spark, table_path(settings, bronze.DEAD_LETTER_TABLE))
    assert cursor == "12"
    assert bronze.copy_dead_letters(spark, settings) == 0


def test_a_copy_that_lost_the_race_to_another_run_adds_nothing(spark, settings, monkeypatch):
    put_dead_letters(settings, ["a"])
    bronze.copy_dead_letters(spark, settings)
    path = table_path(settings, bronze.DEAD_LETTER_TABLE)
    stale = bronze.dead_letter_cursor(spark, path)
    put_dead_letters(settings, ["b"])
    assert bronze.copy_dead_letters(spark, settings) == 1  # the run that won

    real = bronze.dead_letter_cursor
    calls = iter([lambda *a: stale])  # the loser read its cursor before the winner committed
    monkeypatch.setattr(bronze, "dead_letter_cursor", lambda *a: next(calls, real)(*a))

    assert bronze.copy_dead_letters(spark, settings) == 0
    assert spark.read.format("delta").load(path).count() == 2


def test_positions_that_do_not_grow_stop_the_copy(spark, settings, monkeypatch):
    class ShuffledStore:
        def read(self, after, limit):
            letter = DeadLetter(received_at=0, reason="r", raw="x")
            return [("7", letter), ("5", letter)]

        def close(self):
            pass

    monkeypatch.setattr(bronze, "open_dead_letter_store", lambda config: ShuffledStore())
    with pytest.raises(ValueError, match="positions must grow"):
        bronze.copy_dead_letters(spark, settings)


def test_run_reports_rows_written_per_table(spark, settings):
    put_events(settings, [event(), event()])
    put_dead_letters(settings, ["x"])

    assert bronze.run(spark, settings) == {"bronze.player_events": 2, "bronze.dead_letter": 1}
