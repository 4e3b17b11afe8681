"""The stream source's rows as Arrow columns: what Spark gets from ``read`` (no Spark needed)."""

from __future__ import annotations

from event_factory import event

from features.contract import Event
from features.streams import encode_batch
from features.streams.base import ReadRecord
from features.streams.codec import encode_events
from pipelines import stream_source
from pipelines.stream_source import arrow_schema, record_batches


def _rows(records: list[ReadRecord]) -> list[dict]:
    return [row for batch in record_batches(records) for row in batch.to_pylist()]


def test_batches_have_exactly_the_arrow_schema_spark_checks_for():
    [batch] = record_batches([ReadRecord("0", "1", encode_batch([event()], 5), None)])

    assert batch.schema.equals(arrow_schema())
    assert [f.name for f in batch.schema] == [n.split()[0] for n in stream_source.STREAM_EVENT_DDL.split(", ")]


def test_each_event_becomes_one_row_with_its_record_shard_position_and_stamp():
    first, second = event(properties={"sku": "gem", "price_usd": 2.5}), event("ad_view")
    records = [ReadRecord("2", "7", encode_batch([first, second], 1_000), 1_234)]

    rows = _rows(records)

    assert [r["event_id"] for r in rows] == [first["event_id"], second["event_id"]]
    assert rows[0]["properties"] == '{"sku":"gem","price_usd":2.5}'
    assert rows[1]["properties"] == "{}"
    assert {(r["stream_shard"], r["stream_position"], r["stream_at"]) for r in rows} == {("2", "7", 1_234)}
    assert rows[0]["event_time"] == first["event_time"] and rows[0]["received_at"] == first["received_at"]


def test_a_record_without_the_streams_own_stamp_keeps_the_collectors():
    [row] = _rows([ReadRecord("0", "1", encode_batch([event()], 999), None)])

    assert row["stream_at"] == 999


def test_collector_records_are_normalised_like_any_other():
    sent = Event(
        event_id="0B5F3A6C-1D2E-4F70-8A9B-0C1D2E3F4A5B",
        event_type="purchase",
        player_id="p9",
        game_id="demo",
        event_time="2026-11-02T10:00:00Z",
        platform="pc",
        app_version="2.0.0",
        properties={"sku": "gem", "price_usd": 1.0},
    )
    [row] = _rows([ReadRecord("1", "3", encode_events([sent], 1_793_620_000_000, 1_793_620_000_005), None)])

    assert row["event_id"] == "0b5f3a6c-1d2e-4f70-8a9b-0c1d2e3f4a5b"
    assert (row["event_time"], row["received_at"], row["sent_at"]) == (1_793_613_600_000, 1_793_620_000_000, None)
    assert (row["stream_at"], row["schema_version"], row["country"]) == (1_793_620_000_005, 1, None)


def test_a_long_range_is_cut_into_batches_of_about_page_events(monkeypatch):
    monkeypatch.setattr(stream_source, "PAGE_EVENTS", 3)
    records = [ReadRecord("0", str(i), encode_batch([event(), event()], 5), None) for i in range(1, 5)]

    sizes = [b.num_rows for b in record_batches(records)]

    assert sizes == [4, 4]


def _range(shard: str) -> stream_source.ShardRange:
    return stream_source.ShardRange(shard, None, "9")


def test_a_partition_reads_a_whole_shard_family_parents_first():
    ranges = [_range(s) for s in ("a", "a1", "a2", "b")]

    parts = stream_source.slices(ranges, [["a", "a1", "a2"], ["b"]], max_partitions=None)

    assert [[r.shard for r in p.ranges] for p in parts] == [["a", "a1", "a2"], ["b"]]


def test_families_are_packed_into_the_cores_without_splitting_one():
    ranges = [_range(s) for s in ("0", "1", "2", "3", "p", "c")]
    families = [["0"], ["1"], ["2"], ["3"], ["p", "c"]]

    parts = stream_source.slices(ranges, families, max_partitions=2)

    read = [[r.shard for r in p.ranges] for p in parts]
    assert len(read) == 2
    assert sorted(s for p in read for s in p) == ["0", "1", "2", "3", "c", "p"]
    assert any(p[:2] == ["p", "c"] for p in read)


def test_a_shard_no_family_names_is_still_read():
    parts = stream_source.slices([_range("0"), _range("new")], [["0"]], max_partitions=None)

    assert [[r.shard for r in p.ranges] for p in parts] == [["0"], ["new"]]
