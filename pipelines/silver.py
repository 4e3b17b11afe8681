"""Silver: bronze events typed, skew-corrected, quality-checked and deduplicated, incrementally.

A Structured Streaming query over bronze.player_events (``trigger(availableNow=True)``, its own
checkpoint) hands each micro-batch to ``foreachBatch``, which

- moves ``event_time`` onto the server clock (``features.contract.corrected_event_time_ms``)
  and keeps the device's as ``device_event_time``; ``event_date`` is the corrected UTC date;
- adds one typed column per property in ``PROPERTY_TYPES`` (booleans as DOUBLE 1.0/0.0, the
  way ``features.properties.coerce`` gives them to the feature folds);
- sends rows that break one of silver's expectations (``features.expectations``: envelope,
  properties, and the lateness horizon ``silver.late_after_days``) to silver.quarantine, with
  the first expectation broken as ``quarantine_reason``;
- fails the run, committing nothing of the batch, if the share of such rows exceeds
  ``silver.max_failing_share`` (something upstream is broken; quarantining it all would hide it);
- keeps, per ``(game_id, event_id)``, the clean row received first, validates those rows with Great
  Expectations built from the same declaration (``pipelines.quality``), and only then MERGEs
  them into silver.player_events (insert when not matched), so re-sent events are dropped
  across batches. The MERGE looks for earlier copies only in the ``event_date`` partitions a
  copy can sit in (the batch's dates give or take the clock skew two copies may differ by,
  ``copy_dates``), so Delta reads those days' files, not the whole table.

Both writes are insert-only MERGEs on ``(game_id, event_id)``, so a micro-batch replayed after a crash
changes nothing. Because a bad row is quarantined before it is committed, it can never make a
later run fail: silver does not wedge. The streaming profiles job applies the same
expectations (``ProfileState.apply``), which is what keeps batch and online features equal.

Run it:

    PYSPARK_PYTHON=.venv/bin/python .venv/bin/spark-submit --jars "$(ls jvm/jars/*.jar | paste -sd, -)" \\
        pipelines/silver.py --env local --workdir ./var
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING

from features.config import Settings
from features.errors import DataQualityError
from features.expectations import DEFAULT_LATE_AFTER_DAYS
from pipelines.entrypoint import job_main
from pipelines.expressions import corrected_event_time, quarantine_reason, utc_date, with_typed_properties
from pipelines.lake import read_table, rows_added_since, table_version
from pipelines.session import table_path

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SOURCE_TABLE = "bronze.player_events"
EVENTS_TABLE = "silver.player_events"
QUARANTINE_TABLE = "silver.quarantine"
EVENT_KEY = ("game_id", "event_id")
"""What identifies an event (shared/ARCHITECTURE.md, "Identity"): silver deduplicates on it."""
# The first of several copies of one event that silver keeps: the one received first.
ARRIVAL_ORDER = ("received_at", "stream_at", "stream_shard", "stream_position_len", "stream_position")


def silver_rows(bronze_rows: DataFrame, late_after_days: float = DEFAULT_LATE_AFTER_DAYS) -> DataFrame:
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
        {"quarantine_reason": quarantine_reason(late_after_days), "event_date": utc_date(F.col("event_time"))}
    )


def first_received(rows: DataFrame) -> DataFrame:
    """One row per ``(game_id, event_id)``: the copy received first (ties broken by stream
    position). Event ids are client-made, so only the game makes them unique: another game
    reusing an id must not suppress this game's event."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.partitionBy(*EVENT_KEY).orderBy(*ARRIVAL_ORDER)
    return (
        rows.withColumn("stream_position_len", F.length("stream_position"))
        .withColumn("__copy", F.row_number().over(order))
        .where("__copy = 1")
        .drop("__copy", "stream_position_len")
    )


def split_batch(
    bronze_rows: DataFrame, late_after_days: float = DEFAULT_LATE_AFTER_DAYS
) -> tuple[DataFrame, DataFrame]:
    """``(clean, quarantined)`` rows of one batch, each with one row per ``(game_id, event_id)``."""
    return split_rows(silver_rows(bronze_rows, late_after_days))


def split_rows(rows: DataFrame) -> tuple[DataFrame, DataFrame]:
    """``(clean, quarantined)`` of silver rows (``silver_rows``), one row per ``(game_id, event_id)``."""
    clean = first_received(rows.where("quarantine_reason IS NULL")).drop("quarantine_reason")
    quarantined = first_received(rows.where("quarantine_reason IS NOT NULL"))
    return clean, quarantined


def copy_dates(rows: DataFrame, drift_days: int) -> list[date]:
    """The ``event_date``s on which silver may already hold a copy of one of ``rows``' events:
    each of their dates, give or take ``drift_days``.

    Copies of one event carry the same device ``event_time`` but their own ``sent_at`` and
    ``received_at``, so their skew-corrected times (hence dates) can differ by as much as two
    device clocks may be off: the collector bounds each by ``collector.max_clock_skew_hours``.
    """

    dates = {r[0] for r in rows.select("event_date").distinct().collect() if r[0] is not None}
    return sorted({d + timedelta(days=k) for d in dates for k in range(-drift_days, drift_days + 1)})


def drift_days(settings: Settings) -> int:
    """Days two copies of one event may lie apart in silver (see ``copy_dates``)."""
    return math.ceil(2 * settings.collector.max_clock_skew_hours / 24)


def insert_new(spark: SparkSession, path: str, rows: DataFrame, within_dates: Sequence[date] | None = None) -> None:
    """MERGE ``rows`` into the Delta table at ``path``, inserting only unseen ``(game_id, event_id)``s.

    ``within_dates`` limits the search for earlier copies to those ``event_date`` partitions
    (``copy_dates``): Delta then reads only their files, so a run over a few new days costs
    what those days hold, not what the whole table does.
    """
    from delta.tables import DeltaTable

    condition = " AND ".join(f"t.{c} = s.{c}" for c in EVENT_KEY)
    if within_dates is not None:
        days = ", ".join(f"DATE'{d.isoformat()}'" for d in within_dates) or "NULL"
        condition += f" AND t.event_date IN ({days})"
    (DeltaTable.forPath(spark, path).alias("t").merge(rows.alias("s"), condition).whenNotMatchedInsertAll().execute())


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


def check_failing_share(rows: DataFrame, total: int, max_share: float, batch_id: int) -> None:
    """Raise ``DataQualityError`` if more than ``max_share`` of a batch's ``total`` silver rows are quarantined."""
    counts = {
        r.quarantine_reason: r["count"]
        for r in rows.where("quarantine_reason IS NOT NULL").groupBy("quarantine_reason").count().collect()
    }
    failing = sum(counts.values())
    if total == 0 or failing / total <= max_share:
        return
    worst = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    raise DataQualityError(
        f"silver micro-batch {batch_id}: {failing} of {total} rows ({failing / total:.1%}) break silver's "
        f"expectations, more than silver.max_failing_share = {max_share:g}, so nothing of it was committed. "
        "Most broken: " + "; ".join(f"{n} × {reason}" for reason, n in worst) + ". Fix the source of these "
        "events (or raise silver.max_failing_share if they are expected), then run silver again: it resumes "
        "at this batch."
    )


def run(spark: SparkSession, settings: Settings, validate: bool = True) -> dict:
    """Process the bronze rows added since the last run, validating each batch before it commits.

    ``validate=False`` skips the Great Expectations run on each batch (it imports GX and scans
    every batch once per expectation): for tests of the merge logic. The row-level quarantine
    and ``silver.max_failing_share`` apply either way; scheduled runs keep the default.
    """
    from pyspark.errors import StreamingQueryException

    bronze = read_table(spark, settings, SOURCE_TABLE, produced_by="bronze")
    ensure_tables(spark, settings, bronze)
    events_path = table_path(settings, EVENTS_TABLE)
    quarantine_path = table_path(settings, QUARANTINE_TABLE)
    before = {events_path: table_version(spark, events_path), quarantine_path: table_version(spark, quarantine_path)}
    cfg = settings.silver
    drift = drift_days(settings)
    validator = None
    if validate:
        from pipelines.quality import silver_validator

        validator = silver_validator(settings.reports_location, cfg.late_after_days, settings)
    rows_in = 0
    reports: list[str] = []
    failure: DataQualityError | None = None

    def process(batch: DataFrame, batch_id: int) -> None:
        nonlocal rows_in, failure
        # one cache of the batch's silver rows; the bronze rows are read once, by the count
        rows = silver_rows(batch, cfg.late_after_days).persist()
        clean = None
        try:
            total = rows.count()
            check_failing_share(rows, total, cfg.max_failing_share, batch_id)
            clean, quarantined = split_rows(rows)
            clean = clean.persist()
            dates = copy_dates(clean, drift)  # empty when nothing is clean
            if validator is not None and dates:
                report = validator.validate(clean, label=f"batch{batch_id}")
                reports.append(str(report.path))
                if not report.success:
                    raise DataQualityError(
                        f"rows about to be committed to {EVENTS_TABLE} (micro-batch {batch_id}) failed "
                        f"{len(report.failed)} of {report.evaluated} checks: " + "; ".join(report.failed) + ". "
                        "Silver's row split and its Great Expectations suite come from one declaration "
                        "(features.expectations), so they have drifted apart: fix pipelines/expressions.py "
                        f"or pipelines/quality.py; nothing of the batch was committed (full result: {report.path})"
                    )
            if not quarantined.isEmpty():
                insert_new(batch.sparkSession, quarantine_path, quarantined)
            if dates:
                insert_new(batch.sparkSession, events_path, clean, dates)
            rows_in += total
        except DataQualityError as exc:
            failure = exc
            raise
        finally:
            for frame in (clean, rows):
                if frame is not None:
                    frame.unpersist()

    query = (
        spark.readStream.format("delta")
        # Bronze is append-only for silver: erasure and retention deletes rewrite its files,
        # and without this option the stream would fail on every later run.
        .option("skipChangeCommits", "true")
        .load(table_path(settings, SOURCE_TABLE))
        .writeStream.foreachBatch(process)
        .option("checkpointLocation", f"{settings.lake.checkpoints.rstrip('/')}/silver")
        .trigger(availableNow=True)
        .start()
    )
    try:
        query.awaitTermination()
    except StreamingQueryException:
        if failure is not None:
            raise failure from None
        raise
    metrics: dict = {
        "rows_in": rows_in,
        EVENTS_TABLE: rows_added_since(spark, events_path, before[events_path]),
        QUARANTINE_TABLE: rows_added_since(spark, quarantine_path, before[quarantine_path]),
    }
    if validate:
        metrics["quality"] = {"success": True, "reports": reports}
    return metrics


def main(argv: list[str] | None = None) -> int:
    return job_main(run, "silver", argv)


if __name__ == "__main__":
    raise SystemExit(main())
