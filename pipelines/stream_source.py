"""Spark data source ``playerpulse_stream``: the event stream as rows, batch or streaming.

Any ``Stream`` backend (SQLite, Kinesis) reads through this one source, so the bronze and the
profiles jobs never know which stream is configured. Offsets are ``{shard: position}``; one
micro-batch reads ``(start, end]`` of every shard, and re-reading the same range yields the same
rows, which makes checkpointed queries exactly-once.

A Spark partition reads whole shard families (``Stream.shard_families``: a shard, or a resharded
shard's lineage, parents first), so the partition key's records in one micro-batch are all in one
partition: the streaming profiles job folds each partition without a shuffle. Option
``maxPartitions`` packs the families into at most that many partitions (the profiles job: the
cores it has), so a micro-batch is one wave of tasks however many shards the stream has.

    spark.dataSource.register(StreamEventsDataSource)
    df = (spark.readStream.format("playerpulse_stream")
          .option("stream", settings.stream.model_dump_json()).load())
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from pyspark.sql.datasource import DataSource, DataSourceReader, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadLimit, ReadMaxRows, SupportsTriggerAvailableNow
from pyspark.sql.types import StructType

from features.contract import STREAM_EVENT_DDL

if TYPE_CHECKING:  # features.streams imports the config models: kept off the planner workers' start
    from features.streams.base import ReadRecord

SOURCE_NAME = "playerpulse_stream"
Offset = dict[str, Any]


def _open(options: dict[str, str]):
    from pydantic import TypeAdapter

    from features.config import StreamConfig
    from features.streams import open_stream

    if "stream" not in options:
        raise ValueError("the playerpulse_stream source needs option 'stream' (the stream config as JSON)")
    return open_stream(TypeAdapter(StreamConfig).validate_python(json.loads(options["stream"])))


class ShardRange(InputPartition):
    def __init__(self, shard: str, after: str | None, upto: str):
        super().__init__((shard, after, upto))
        self.shard, self.after, self.upto = shard, after, upto


class StreamSlice(InputPartition):
    """What one Spark partition reads: ranges of whole shard families, each family's oldest
    shard first."""

    def __init__(self, ranges: list[ShardRange]):
        super().__init__(tuple(r.value for r in ranges))
        self.ranges = ranges


_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (name, kind) for name, kind in (part.strip().split(" ") for part in STREAM_EVENT_DDL.split(","))
)
_ARROW_TYPES = {"STRING": "string", "INT": "int32", "BIGINT": "int64"}
PAGE_EVENTS = 20_000
"""Events per Arrow batch handed to Spark: a few MB of columns, whatever the record sizes."""


def arrow_schema():
    """``STREAM_EVENT_DDL`` as the Arrow schema Spark expects from ``read`` (it checks equality)."""
    import pyarrow as pa

    return pa.schema([pa.field(name, getattr(pa, _ARROW_TYPES[kind])()) for name, kind in _COLUMNS])


def _event_rows(records: Iterable[ReadRecord]) -> Iterator[list[tuple]]:
    """Rows (``STREAM_EVENT_DDL`` order) of the events in ``records``, about ``PAGE_EVENTS`` a list."""
    import msgspec

    from features.streams import decode_batch

    encode = msgspec.json.encode
    rows: list[tuple] = []
    for rec in records:
        stamped, events = decode_batch(rec.data)
        # the stream's own stamp, after the durable write; the collector's (before it) if none
        stream_at = rec.stream_at if rec.stream_at is not None else stamped
        shard, position = rec.shard, rec.position
        rows.extend(
            (
                e["event_id"],
                e.get("schema_version", 1),
                e["event_type"],
                e["player_id"],
                e["game_id"],
                e["event_time"],
                e.get("sent_at"),
                e["received_at"],
                stream_at,
                e["platform"],
                e["app_version"],
                e.get("country"),
                e.get("session_id"),
                encode(e.get("properties") or {}).decode(),
                shard,
                position,
            )
            for e in events
        )
        if len(rows) >= PAGE_EVENTS:
            yield rows
            rows = []
    if rows:
        yield rows


def record_batches(records: Iterable[ReadRecord]) -> Iterator[Any]:
    """The events in ``records`` as ``pyarrow.RecordBatch``es of ``arrow_schema()``.

    Spark converts the tuples a data source yields with one Python call per value (16 per
    event); columns built by ``pyarrow.array`` (in C) leave decoding the records as the cost.
    """
    import pyarrow as pa

    schema = arrow_schema()
    for rows in _event_rows(records):
        columns = list(zip(*rows, strict=True))
        yield pa.RecordBatch.from_arrays(
            [pa.array(col, type=field.type) for col, field in zip(columns, schema, strict=True)], schema=schema
        )


def _batches(options: dict[str, str], part: StreamSlice) -> Iterator[Any]:
    stream = _open(options)
    try:
        yield from record_batches(rec for r in part.ranges for rec in stream.read(r.shard, r.after, r.upto))
    finally:
        stream.close()


def _ranges(start: Offset, end: Offset) -> list[ShardRange]:
    return [
        ShardRange(shard, start.get(shard), upto)
        for shard, upto in sorted(end.items())
        if upto is not None and upto != start.get(shard)
    ]


def slices(ranges: list[ShardRange], families: list[list[str]], max_partitions: int | None) -> list[StreamSlice]:
    """``ranges`` as partitions that never split a family of ``families`` (a shard no family
    names is its own), packed into at most ``max_partitions`` by number of ranges, largest first."""
    by_shard = {r.shard: r for r in ranges}
    groups: list[list[ShardRange]] = []
    placed: set[str] = set()
    for family in families:
        members = [by_shard[s] for s in family if s in by_shard]
        placed.update(family)
        if members:
            groups.append(members)
    groups.extend([r] for r in ranges if r.shard not in placed)
    if not max_partitions or len(groups) <= max_partitions:
        return [StreamSlice(g) for g in groups]
    bins: list[list[ShardRange]] = [[] for _ in range(max_partitions)]
    for group in sorted(groups, key=len, reverse=True):
        min(bins, key=len).extend(group)
    return [StreamSlice(b) for b in bins if b]


def _slices(options: dict[str, str], ranges: list[ShardRange], stream: Any | None = None) -> list[StreamSlice]:
    if not ranges:
        return []
    limit = int(options.get("maxPartitions", "0")) or None
    if stream is not None:
        return slices(ranges, stream.shard_families(), limit)
    opened = _open(options)
    try:
        return slices(ranges, opened.shard_families(), limit)
    finally:
        opened.close()


class StreamEventsReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    def __init__(self, options: dict[str, str]):
        self.options = dict(options)
        self.max_records = int(options.get("maxRecordsPerBatch", "0")) or None
        self._target: Offset | None = None

    def initialOffset(self) -> Offset:
        stream = _open(self.options)
        try:
            return {shard: None for shard in stream.shards()}
        finally:
            stream.close()

    def getDefaultReadLimit(self) -> ReadLimit:
        return ReadMaxRows(self.max_records) if self.max_records else ReadAllAvailable()

    def prepareForTriggerAvailableNow(self) -> None:
        self._target = self._latest()

    def _latest(self) -> Offset:
        stream = _open(self.options)
        try:
            return stream.latest_positions()
        finally:
            stream.close()

    def latestOffset(self, start: Offset, limit: ReadLimit) -> Offset:
        latest = self._target if self._target is not None else self._latest()
        if not isinstance(limit, ReadMaxRows):
            return {**start, **latest}
        stream = _open(self.options)
        try:
            per_shard = max(1, limit.max_rows // max(1, len(latest)))
            out: Offset = dict(start)
            for shard, newest in latest.items():
                if newest is None or newest == start.get(shard):
                    out[shard] = start.get(shard)
                    continue
                pos = stream.position_after(shard, start.get(shard), per_shard)
                # never past the AvailableNow target
                out[shard] = pos if pos is not None and int(pos) <= int(newest) else newest
            return out
        finally:
            stream.close()

    def partitions(self, start: Offset, end: Offset) -> list[StreamSlice]:
        return _slices(self.options, _ranges(start, end))

    def read(self, partition: StreamSlice) -> Iterator[Any]:
        return _batches(self.options, partition)

    def commit(self, end: Offset) -> None:
        """Nothing to release: records stay on the stream for other readers and replays."""


class StreamEventsBatchReader(DataSourceReader):
    def __init__(self, options: dict[str, str]):
        self.options = dict(options)

    def partitions(self) -> list[StreamSlice]:
        stream = _open(self.options)
        try:
            return _slices(self.options, _ranges({}, stream.latest_positions()), stream)
        finally:
            stream.close()

    def read(self, partition: StreamSlice) -> Iterator[Any]:
        return _batches(self.options, partition)


class StreamEventsDataSource(DataSource):
    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def schema(self) -> str:
        return STREAM_EVENT_DDL

    def reader(self, schema: StructType) -> DataSourceReader:
        return StreamEventsBatchReader(self.options)

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        return StreamEventsReader(self.options)


def register(spark) -> None:
    """Make ``format("playerpulse_stream")`` available in ``spark`` (idempotent)."""
    spark.dataSource.register(StreamEventsDataSource)


def read_event_stream(spark, settings, max_records: int | None = None, max_partitions: int | None = None):
    """The configured event stream as a streaming DataFrame, at most ``max_records`` stream
    records per micro-batch (default ``streaming.max_records_per_batch``) in at most
    ``max_partitions`` partitions (default: one per shard family): the one way the bronze and
    profiles jobs read it."""
    register(spark)
    limit = max_records if max_records is not None else settings.streaming.max_records_per_batch
    reader = (
        spark.readStream.format(SOURCE_NAME)
        .option("stream", settings.stream.model_dump_json())
        .option("maxRecordsPerBatch", str(limit))
    )
    if max_partitions:
        reader = reader.option("maxPartitions", str(max_partitions))
    return reader.load()
