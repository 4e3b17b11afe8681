"""Bronze: the event stream and the dead-letter store landed in Delta as they came, exactly once.

``bronze.player_events`` is the stream's rows with epoch-ms times turned into TIMESTAMPs,
``ingested_at`` (this hop's ``processed_at`` stamp) and ``event_date``, partitioned by
``event_date``, zstd Parquet. ``event_time`` stays as the device sent it, but ``event_date`` is
the UTC date of the skew-corrected time (``corrected_event_time``, as silver computes it): the
collector bounds that time to its accepted window, so no sender can create partitions for 1970
or 2999 by setting its clock there. A Structured
Streaming query with ``trigger(availableNow=True)`` reads everything new and stops; its
checkpoint plus Delta's idempotent streaming sink make a re-run add only what is new.

``bronze.dead_letter`` copies new entries of the dead-letter store. Its resume point lives in
the table itself, so data and cursor commit atomically: the cursor is the greatest ``position``
copied (positions ordered by length, then text: numeric order for the integer positions stores
hand out). Each copy is an idempotent Delta write (``txnAppId`` fixed, ``txnVersion`` = the
table version the cursor was read at, plus one): if another run copied in between, Delta skips
ours instead of duplicating, and the loop simply reads the new cursor. Commit metadata would be
lost to log clean-up and a side file would not commit with the data; this keeps neither risk.

Run it:

    PYSPARK_PYTHON=.venv/bin/python .venv/bin/spark-submit --jars "$(ls jvm/jars/*.jar | paste -sd, -)" \\
        pipelines/bronze.py --env local --workdir ./var
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from features.config import Settings
from features.deadletter import DeadLetter, open_dead_letter_store
from pipelines.entrypoint import job_main
from pipelines.expressions import corrected_event_time, utc_date
from pipelines.lake import job_tag, rows_added_since, table_version
from pipelines.session import table_path

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

EVENTS_TABLE = "bronze.player_events"
DEAD_LETTER_TABLE = "bronze.dead_letter"
EPOCH_MS_COLUMNS = ("event_time", "sent_at", "received_at", "stream_at")
DEAD_LETTER_DDL = (
    "received_at BIGINT, reason STRING, raw STRING, game_id STRING, index INT, request_id STRING, position STRING"
)
DEAD_LETTER_APP_ID = "playerpulse.bronze.dead_letter"
DEAD_LETTER_PAGE = 5000


def bronze_events(stream_rows: DataFrame) -> DataFrame:
    """Stream rows (``STREAM_EVENT_DDL``) as bronze rows: TIMESTAMPs, ``ingested_at``, and
    ``event_date`` from the skew-corrected event time."""
    from pyspark.sql import functions as F

    missing = [c for c in EPOCH_MS_COLUMNS if c not in stream_rows.columns]
    if missing:
        raise ValueError(f"stream rows lack the epoch-ms columns {missing}: expected STREAM_EVENT_DDL")
    times = {c: F.timestamp_millis(F.col(c)) for c in EPOCH_MS_COLUMNS}
    return stream_rows.withColumns(times).withColumns(
        {
            "ingested_at": F.current_timestamp(),
            "event_date": utc_date(corrected_event_time(F.col("event_time"), F.col("sent_at"), F.col("received_at"))),
        }
    )


def ingest_events(spark: SparkSession, settings: Settings) -> int:
    """Append everything new on the stream to bronze.player_events; the rows appended."""
    from pipelines.stream_source import read_event_stream

    path = table_path(settings, EVENTS_TABLE)
    before = table_version(spark, path)
    source = read_event_stream(spark, settings, settings.streaming.ingest_records_per_batch)
    # one file per event_date a micro-batch touches, instead of one per date per stream shard
    rows = bronze_events(source).repartition("event_date")
    query = (
        rows.writeStream.format("delta")
        .outputMode("append")
        .partitionBy("event_date")
        .option("checkpointLocation", f"{settings.lake.checkpoints.rstrip('/')}/bronze_events")
        .trigger(availableNow=True)
        .start(path)
    )
    query.awaitTermination()
    return rows_added_since(spark, path, before)


def _position_key(position: str) -> tuple[int, str]:
    return len(position), position


def dead_letter_cursor(spark: SparkSession, path: str) -> tuple[int, str | None]:
    """``(table version, greatest position copied)`` read from one snapshot of bronze.dead_letter."""
    from pyspark.sql import functions as F

    version = table_version(spark, path)
    if version < 0:
        return version, None
    snapshot = spark.read.format("delta").option("versionAsOf", version).load(path)
    order = F.struct(F.length("position"), F.col("position"))
    return version, snapshot.agg(F.max_by("position", order)).first()[0]


def _check_order(after: str | None, page: list[tuple[str, DeadLetter]]) -> None:
    previous = _position_key(after) if after is not None else None
    for position, _ in page:
        key = _position_key(position)
        if previous is not None and key <= previous:
            raise ValueError(
                f"the dead-letter store returned position {position!r} after {after!r}: positions must grow "
                "(by length, then text) for bronze.dead_letter to resume without gaps or duplicates"
            )
        previous, after = key, position


def copy_dead_letters(spark: SparkSession, settings: Settings, page_size: int = DEAD_LETTER_PAGE) -> int:
    """Copy dead letters after the table's cursor into bronze.dead_letter; rows this run added."""
    from pyspark.sql import functions as F

    if page_size < 1:
        raise ValueError(f"page_size must be >= 1, got {page_size}")
    path = table_path(settings, DEAD_LETTER_TABLE)
    store = open_dead_letter_store(settings.dead_letter)
    tag = job_tag(DEAD_LETTER_TABLE, uuid.uuid4().hex)
    first_version = table_version(spark, path)
    try:
        while True:
            version, after = dead_letter_cursor(spark, path)
            page = store.read(after, page_size)
            if not page:
                break
            _check_order(after, page)
            rows = [
                (x.received_at, x.reason, x.raw, x.game_id, x.index, x.request_id, position) for position, x in page
            ]
            frame = spark.createDataFrame(rows, DEAD_LETTER_DDL).withColumns(
                {"received_at": F.timestamp_millis("received_at"), "ingested_at": F.current_timestamp()}
            )
            (
                frame.write.format("delta")
                .mode("append")
                .option("txnAppId", DEAD_LETTER_APP_ID)
                .option("txnVersion", str(version + 1))
                .option("userMetadata", tag)
                .save(path)
            )
            if len(page) < page_size:
                break
    finally:
        store.close()
    return rows_added_since(spark, path, first_version, user_metadata=tag)


def run(spark: SparkSession, settings: Settings) -> dict:
    """Land new events and new dead letters; rows written per table."""
    return {
        EVENTS_TABLE: ingest_events(spark, settings),
        DEAD_LETTER_TABLE: copy_dead_letters(spark, settings),
    }


def main(argv: list[str] | None = None) -> int:
    return job_main(run, "bronze", argv)


if __name__ == "__main__":
    raise SystemExit(main())
