"""Silver: bronze events typed, skew-corrected, quality-checked and deduplicated, incrementally.

A Structured Streaming query over bronze.player_events (``trigger(availableNow=True)``, its own
checkpoint) hands each micro-batch to ``foreachBatch``, which

- moves ``event_time`` onto the server clock (``features.contract.corrected_event_time_ms``)
  and keeps the device's as ``device_event_time``; ``event_date`` is the corrected UTC date;
- adds one typed column per property in ``PROPERTY_TYPES`` (booleans as DOUBLE 1.0/0.0, the
  way ``features.properties.coerce`` gives them to the feature folds);
- sends rows that break a quality rule to silver.quarantine with ``quarantine_reason``;
- keeps, per ``event_id``, the clean row received first, and MERGEs it into
  silver.player_events (insert when not matched), so re-sent events are dropped across batches.

Both writes are insert-only MERGEs on ``event_id``, so a micro-batch replayed after a crash
changes nothing. The streaming profiles job applies the same rules in the same order
(``ProfileState.apply``), which is what keeps batch and online features equal. After the
stream stops, ``pipelines.quality.validate_silver`` checks the whole table and fails the run
(before gold reads it) if the suite fails.

Run it:

    PYSPARK_PYTHON=.venv/bin/python .venv/bin/spark-submit --jars "$(ls jvm/jars/*.jar | paste -sd, -)" \\
        pipelines/silver.py --env local --workdir ./var
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from features.config import Settings
from pipelines.entrypoint import job_main
from pipelines.expressions import corrected_event_time, quarantine_reason, utc_date, with_typed_properties
from pipelines.lake import read_table, rows_added_since, table_version
from pipelines.session import table_path

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SOURCE_TABLE = "bronze.player_events"
EVENTS_TABLE = "silver.player_events"
QUARANTINE_TABLE = "silver.quarantine"
# The first of several copies of one event_id that silver keeps: the one received first.
ARRIVAL_ORDER = ("received_at", "stream_at", "stream_shard", "stream_position_len", "stream_position")


def silver_rows(bronze_rows: DataFrame) -> DataFrame:
    """Bronze rows as silver rows (typed, corrected, with ``quarantine_reason``), not yet split."""
    from pyspark.sql import functions as F

    needed = {"event_id", "event_type", "event_time", "sent_at", "received_at", "properties"}
    missing = sorted(needed - set(bronze_rows.columns))
    if missing:
        raise ValueError(f"bronze rows lack columns {missing}")
    corrected = bronze_rows.withColumnRenamed("event_time", "device_event_time").withColumn(
        "event_time", corrected_event_time(F.col("device_event_time"), F.col("sent_at"), F.col("received_at"))
    )
    typed = with_typed_properties(corrected.drop("event_date"))
    front = ["event_id", "schema_version", "event_type", "player_id", "game_id", "event_time", "device_event_time"]
    rest = [c for c in typed.columns if c not in front]
    return typed.select(*front, *rest).withColumns(
        {"quarantine_reason": quarantine_reason(F.col("event_type")), "event_date": utc_date(F.col("event_time"))}
    )


def first_received(rows: DataFrame) -> DataFrame:
    """One row per ``event_id``: the copy received first (ties broken by stream position)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.partitionBy("event_id").orderBy(*ARRIVAL_ORDER)
    return (
        rows.withColumn("stream_position_len", F.length("stream_position"))
        .withColumn("__copy", F.row_number().over(order))
        .where("__copy = 1")
        .drop("__copy", "stream_position_len")
    )


def split_batch(bronze_rows: DataFrame) -> tuple[DataFrame, DataFrame]:
    """``(clean, quarantined)`` rows of one batch, each with one row per ``event_id``."""
    rows = silver_rows(bronze_rows)
    clean = first_received(rows.where("quarantine_reason IS NULL")).drop("quarantine_reason")
    quarantined = first_received(rows.where("quarantine_reason IS NOT NULL"))
    return clean, quarantined


def insert_new(spark: SparkSession, path: str, rows: DataFrame) -> None:
    """MERGE ``rows`` into the Delta table at ``path``, inserting only unseen ``event_id``s."""
    from delta.tables import DeltaTable

    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(rows.alias("s"), "t.event_id = s.event_id")
        .whenNotMatchedInsertAll()
        .execute()
    )


def ensure_tables(spark: SparkSession, settings: Settings, bronze: DataFrame) -> None:
    """Create silver.player_events and silver.quarantine (empty) so MERGE always has a target."""
    from delta.tables import DeltaTable

    clean, quarantined = split_batch(bronze.limit(0))
    for name, frame, partitions in (
        (EVENTS_TABLE, clean, ["event_date"]),
        (QUARANTINE_TABLE, quarantined, []),
    ):
        builder = DeltaTable.createIfNotExists(spark).location(table_path(settings, name)).addColumns(frame.schema)
        builder.partitionedBy(*partitions).execute()


def run(spark: SparkSession, settings: Settings, validate: bool = True) -> dict:
    """Process the bronze rows added since the last run, then validate silver; rows in and out.

    ``validate=False`` skips the (slow, whole-table) quality suite: for tests of the merge logic
    and for backfills that validate once at the end; scheduled runs keep the default.
    """
    bronze = read_table(spark, settings, SOURCE_TABLE, produced_by="bronze")
    ensure_tables(spark, settings, bronze)
    events_path = table_path(settings, EVENTS_TABLE)
    quarantine_path = table_path(settings, QUARANTINE_TABLE)
    before = {events_path: table_version(spark, events_path), quarantine_path: table_version(spark, quarantine_path)}
    rows_in = 0

    def process(batch: DataFrame, batch_id: int) -> None:
        nonlocal rows_in
        batch = batch.persist()
        try:
            rows_in += batch.count()
            clean, quarantined = split_batch(batch)
            for path, rows in ((quarantine_path, quarantined), (events_path, clean)):
                if not rows.isEmpty():
                    insert_new(batch.sparkSession, path, rows)
        finally:
            batch.unpersist()

    query = (
        spark.readStream.format("delta")
        .load(table_path(settings, SOURCE_TABLE))
        .writeStream.foreachBatch(process)
        .option("checkpointLocation", f"{settings.lake.checkpoints.rstrip('/')}/silver")
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    metrics: dict = {
        "rows_in": rows_in,
        EVENTS_TABLE: rows_added_since(spark, events_path, before[events_path]),
        QUARANTINE_TABLE: rows_added_since(spark, quarantine_path, before[quarantine_path]),
    }
    if validate:
        from pipelines.quality import validate_silver

        report = validate_silver(spark, settings)
        metrics["quality"] = {"success": report.success, "report": str(report.path)}
    return metrics


def main(argv: list[str] | None = None) -> int:
    return job_main(run, "silver", argv)


if __name__ == "__main__":
    raise SystemExit(main())
