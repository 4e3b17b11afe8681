"""What every ``Stream`` backend promises the collector and the Spark source.

Each test runs against the embedded SQLite stream and against ``KinesisStream`` over HTTP on the
session's local server. Payloads carry their own partition key and sequence so that order and
placement can be checked from what is read back (a ``ReadRecord`` has no partition key).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from features.config import KinesisStreamConfig, SqliteStreamConfig
from features.streams import ReadRecord, Stream, StreamRecord, decode_batch, encode_batch, open_stream

SHARDS = 2
KEYS = [f"player-{i}" for i in range(6)]


@pytest.fixture(params=["sqlite", "kinesis"])
def stream(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stream]:
    """An empty two-shard stream of the parametrised backend."""
    config: SqliteStreamConfig | KinesisStreamConfig
    if request.param == "sqlite":
        config = SqliteStreamConfig(path=str(tmp_path / "stream.db"), shards=SHARDS)
    else:
        config = KinesisStreamConfig(
            stream_name=f"contract-{uuid.uuid4().hex[:12]}",
            endpoint_url=request.getfixturevalue("aws_endpoint"),
            create_if_missing=True,
            shard_count=SHARDS,
        )
    with open_stream(config) as s:
        yield s


def _records(keys: list[str], per_key: int) -> list[StreamRecord]:
    """Interleaved records: key order varies within the batch, put order within a key is 0, 1, …"""
    return [StreamRecord(k, f"{k}|{n}".encode()) for n in range(per_key) for k in keys]


def _read_all(stream: Stream) -> list[ReadRecord]:
    out = []
    for shard, latest in stream.latest_positions().items():
        if latest is not None:
            out.extend(stream.read(shard, None, latest))
    return out


def _parse(rec: ReadRecord) -> tuple[str, int]:
    key, n = rec.data.decode().split("|")
    return key, int(n)


def _busiest_shard(stream: Stream) -> tuple[str, list[ReadRecord]]:
    latest = stream.latest_positions()
    shard = max((s for s in latest if latest[s] is not None), key=lambda s: len(stream.read(s, None, latest[s])))
    return shard, stream.read(shard, None, latest[shard])  # type: ignore[arg-type]


def test_put_then_read_returns_exactly_the_records_in_put_order_per_partition_key(stream: Stream) -> None:
    stream.put(_records(KEYS, per_key=3))

    by_key: dict[str, list[int]] = {}
    for rec in _read_all(stream):
        key, n = _parse(rec)
        by_key.setdefault(key, []).append(n)

    assert by_key == {k: [0, 1, 2] for k in KEYS}


def test_all_records_of_one_partition_key_land_in_one_shard(stream: Stream) -> None:
    stream.put(_records(KEYS, per_key=3))
    stream.put(_records(KEYS, per_key=2))

    shards_of: dict[str, set[str]] = {}
    for rec in _read_all(stream):
        shards_of.setdefault(_parse(rec)[0], set()).add(rec.shard)

    assert set(shards_of) == set(KEYS)
    assert all(len(s) == 1 for s in shards_of.values())


def test_shards_lists_every_shard_and_reads_name_their_shard(stream: Stream) -> None:
    stream.put(_records(KEYS, per_key=1))

    assert len(stream.shards()) == SHARDS
    assert {rec.shard for rec in _read_all(stream)} <= set(stream.shards())


def test_positions_of_a_shard_compare_as_integers_in_put_order(stream: Stream) -> None:
    stream.put(_records(KEYS, per_key=3))

    _, records = _busiest_shard(stream)
    positions = [int(r.position) for r in records]

    assert len(records) >= 2
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)


def test_read_excludes_after_and_includes_upto(stream: Stream) -> None:
    stream.put(_records(KEYS, per_key=3))
    shard, records = _busiest_shard(stream)
    assert len(records) >= 4

    got = stream.read(shard, records[0].position, records[2].position)

    assert got == records[1:3]


def test_read_without_after_starts_at_the_first_record(stream: Stream) -> None:
    stream.put(_records(KEYS, per_key=2))
    shard, records = _busiest_shard(stream)

    assert stream.read(shard, None, records[1].position) == records[:2]


def test_reading_the_same_range_twice_returns_the_same_records(stream: Stream) -> None:
    stream.put(_records(KEYS, per_key=3))
    shard, records = _busiest_shard(stream)
    first = stream.read(shard, records[0].position, records[-1].position)

    stream.put(_records(KEYS, per_key=2))

    assert stream.read(shard, records[0].position, records[-1].position) == first


def test_read_returns_at_most_limit_records_from_the_start_of_the_range(stream: Stream) -> None:
    stream.put(_records(KEYS, per_key=3))
    shard, records = _busiest_shard(stream)

    assert stream.read(shard, None, records[-1].position, limit=2) == records[:2]


def test_read_of_an_empty_range_is_empty(stream: Stream) -> None:
    stream.put(_records(KEYS, per_key=2))
    shard, records = _busiest_shard(stream)

    assert stream.read(shard, records[-1].position, records[-1].position) == []


def test_latest_positions_are_none_for_every_shard_of_an_empty_stream(stream: Stream) -> None:
    assert stream.latest_positions() == {s: None for s in stream.shards()}


def test_latest_position_of_a_shard_is_its_newest_record_and_moves_after_a_put(stream: Stream) -> None:
    stream.put(_records(KEYS, per_key=1))
    shard, before = _busiest_shard(stream)
    assert stream.latest_positions()[shard] == before[-1].position

    stream.put(_records(KEYS, per_key=1))

    latest = stream.latest_positions()[shard]
    assert latest is not None and int(latest) > int(before[-1].position)
    added = stream.read(shard, before[-1].position, latest)
    assert [r.data for r in added] == [r.data for r in before]  # same keys, so the same shard
    assert added[-1].position == latest


def test_latest_positions_see_records_put_by_another_stream_object(stream: Stream) -> None:
    """The Spark source opens a new stream object per micro-batch: nothing may go stale."""
    stream.put(_records(KEYS, per_key=1))
    with open_stream(stream.config) as other:  # type: ignore[attr-defined]
        first = other.latest_positions()
    stream.put(_records(KEYS, per_key=1))

    with open_stream(stream.config) as other:  # type: ignore[attr-defined]
        second = other.latest_positions()

    assert second != first
    assert all(int(second[s] or 0) >= int(first[s] or 0) for s in second)
    assert second == stream.latest_positions()


def test_position_after_is_the_count_th_record_after_after(stream: Stream) -> None:
    stream.put(_records(KEYS, per_key=3))
    shard, records = _busiest_shard(stream)

    assert stream.position_after(shard, None, 2) == records[1].position
    assert stream.position_after(shard, records[0].position, 2) == records[2].position


def test_position_after_stops_at_the_newest_record_when_fewer_follow(stream: Stream) -> None:
    stream.put(_records(KEYS, per_key=2))
    shard, records = _busiest_shard(stream)

    assert stream.position_after(shard, records[0].position, 1000) == records[-1].position


def test_position_after_the_newest_record_is_after_itself(stream: Stream) -> None:
    stream.put(_records(KEYS, per_key=2))
    shard, records = _busiest_shard(stream)

    assert stream.position_after(shard, records[-1].position, 5) == records[-1].position


def test_position_after_in_an_empty_shard_is_none(stream: Stream) -> None:
    assert stream.position_after(stream.shards()[0], None, 5) is None


def test_put_of_no_records_changes_nothing(stream: Stream) -> None:
    stream.put([])

    assert stream.latest_positions() == {s: None for s in stream.shards()}


def test_encoded_batches_round_trip_through_the_stream(stream: Stream) -> None:
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "player_id": "p-1",
            "event_type": "purchase",
            "properties": {"sku": "gems_100", "price_usd": 4.99},
            "country": None,
        },
        {
            "event_id": str(uuid.uuid4()),
            "player_id": "p-1",
            "event_type": "level_up",
            "properties": {"level": 7, "name": "Ünïcødé ✓"},
        },
    ]
    stream.put([StreamRecord("p-1", encode_batch(events, stream_at_ms=1_700_000_000_123))])

    (rec,) = _read_all(stream)

    assert decode_batch(rec.data) == (1_700_000_000_123, events)


def test_arbitrary_bytes_round_trip_unchanged(stream: Stream) -> None:
    payload = bytes(range(256)) * 3
    stream.put([StreamRecord("p-bin", payload), StreamRecord("p-bin", b"\x00")])

    assert [r.data for r in _read_all(stream)] == [payload, b"\x00"]


def test_read_all_replays_every_record_of_every_shard(stream: Stream) -> None:
    records = _records(["a", "b", "c"], 3)
    stream.put(records)
    assert sorted(r.data for r in stream.read_all()) == sorted(r.data for r in records)


def test_every_record_read_carries_the_streams_own_stamp_of_its_durable_write(stream: Stream) -> None:
    import time

    before = int(time.time() * 1000)
    stream.put(_records(["a", "b"], 2))
    after = int(time.time() * 1000)

    stamps = [r.stream_at for r in _read_all(stream)]

    # Kinesis' ApproximateArrivalTimestamp is approximate: a second either side
    assert len(stamps) == 4
    assert all(s is not None and before - 1000 <= s <= after + 1000 for s in stamps)


def test_a_sqlite_stream_file_from_before_the_stamp_column_opens_and_stamps_new_records(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.executescript(
            "CREATE TABLE records (seq INTEGER PRIMARY KEY AUTOINCREMENT, shard INTEGER NOT NULL, "
            "partition_key TEXT NOT NULL, data BLOB NOT NULL);"
            "INSERT INTO records (shard, partition_key, data) VALUES (0, 'p', x'01');"
        )

    with open_stream(SqliteStreamConfig(path=str(path), shards=1)) as stream:
        stream.put([StreamRecord("p", b"\x02")])
        records = list(stream.read_all())

    assert [(r.data, r.stream_at is None) for r in records] == [(b"\x01", True), (b"\x02", False)]
