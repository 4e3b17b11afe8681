"""Monitoring job: the latency samples and the prediction log, landed in Delta for reports.

    PYSPARK_PYTHON=.venv/bin/python .venv/bin/spark-submit --jars "$(ls jvm/jars/*.jar | paste -sd, -)" \\
        pipelines/monitoring.py --env local --workdir ./var

Two kinds of small JSON-lines files accumulate beside the lake (``lake.reports``): one per
micro-batch of the profiles stream (``latency/profiles/``, each hop's sampled latencies, the
batch's duration and iterator age) and the serving processes' prediction log
(``predictions/``, ``serving.prediction_log``). This job reads each folder with Spark's file
source under its own checkpoint (``availableNow``: every new file once, then stop), so a file
is landed exactly once however often the job runs:

- ``gold.latency``: one row per sample, ``(at, source, batch, hop, ms)``; ``hop`` is a hop of
  ``features.latency.HOPS``, or ``micro_batch`` (a batch's duration) and ``iterator_age`` (how
  far behind the stream it ran: the backlog). The ``serve`` hop comes from the prediction log.
- ``gold.predictions``: one row per logged prediction (features, the request-time context values
  used as text, score, versions, fallback reason, the player as a digest), partitioned by
  ``served_date``.

``label_predictions`` joins labels back to logged predictions for the model report's live AUC:
each prediction is labelled exactly as ``training.dataset`` labels a snapshot taken at
``served_at``, once its label window has ended.

Each micro-batch appends with ``txnAppId``/``txnVersion``, so a batch retried after a crash
between its two table writes adds nothing twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from features.config import Settings
from pipelines.entrypoint import job_main
from pipelines.lake import rows_added_since, table_version
from pipelines.lake_files import filesystem
from pipelines.session import table_path

if TYPE_CHECKING:
    from datetime import datetime

    from pyspark.sql import Column, DataFrame, SparkSession

    from features.model_config import LabelSpec

LATENCY_TABLE = "gold.latency"
PREDICTIONS_TABLE = "gold.predictions"
LATENCY_SCHEMA = "at TIMESTAMP, source STRING, batch BIGINT, hop STRING, ms DOUBLE"
PROFILES_JSON = "batch BIGINT, at BIGINT, batch_ms DOUBLE, iterator_age_ms DOUBLE, hops MAP<STRING, ARRAY<DOUBLE>>"
PREDICTIONS_JSON = (
    "served_at BIGINT, model STRING, version INT, champion INT, challenger INT, challenger_score DOUBLE, "
    "game_id STRING, player_key STRING, score DOUBLE, fallback BOOLEAN, reason STRING, "
    "features MAP<STRING, DOUBLE>, context MAP<STRING, STRING>, timestamps MAP<STRING, BIGINT>"
)


def profiles_latency_dir(settings: Settings) -> str:
    return f"{settings.reports_location}/latency/profiles"


def predictions_dir(settings: Settings) -> str:
    return f"{settings.reports_location}/predictions"


def profile_latency_rows(batch: DataFrame) -> DataFrame:
    """``gold.latency`` rows of profiles-stream reports: every hop sample, plus each batch's
    duration (``micro_batch``) and iterator age (``iterator_age``)."""
    from pyspark.sql import functions as F

    at = F.timestamp_millis("at").alias("at")
    source = F.lit("profiles").alias("source")
    hops = (
        batch.select(at, source, "batch", F.explode("hops").alias("hop", "values"))
        .select("at", "source", "batch", "hop", F.explode("values").alias("ms"))
        .where(F.col("ms").isNotNull())
    )
    durations = batch.select(at, source, "batch", F.lit("micro_batch").alias("hop"), F.col("batch_ms").alias("ms"))
    ages = batch.where(F.col("iterator_age_ms").isNotNull()).select(
        at, source, "batch", F.lit("iterator_age").alias("hop"), F.col("iterator_age_ms").alias("ms")
    )
    return hops.unionByName(durations).unionByName(ages.where(F.col("ms").isNotNull()))


def served_latency_rows(predictions: DataFrame) -> DataFrame:
    """``gold.latency`` rows of the ``serve`` hop (profile age when a prediction read it); the
    earlier hops are sampled by the profiles stream for every profile, not only those read."""
    from pyspark.sql import functions as F

    ts = F.col("timestamps")
    return predictions.where(ts["served_at"].isNotNull() & ts["profile_written_at"].isNotNull()).select(
        F.timestamp_millis(ts["served_at"]).alias("at"),
        F.lit("serving").alias("source"),
        F.lit(None).cast("bigint").alias("batch"),
        F.lit("serve").alias("hop"),
        (ts["served_at"] - ts["profile_written_at"]).cast("double").alias("ms"),
    )


def prediction_rows(predictions: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    served = F.timestamp_millis("served_at")
    return predictions.withColumn("served_date", F.to_date(served)).withColumn("served_at", served)


def player_key(player_id: Column) -> Column:
    """``features.pseudonyms.digest_for_log`` as a Spark expression: the first 12 hex digits of
    the SHA-256 of the UTF-8 id, as ``gold.predictions.player_key`` names a player."""
    from pyspark.sql import functions as F

    return F.substring(F.sha2(player_id, 256), 1, 12)


def label_predictions(predictions: DataFrame, events: DataFrame, label: LabelSpec) -> tuple[DataFrame, datetime | None]:
    """``predictions`` (rows of ``gold.predictions``) with ``label``: for each prediction whose
    window ``(served_at, served_at + horizon]`` ended by the newest event of ``events``
    (``silver.player_events``), the label ``training.dataset.label_snapshots`` gives a snapshot of
    that player taken at ``served_at``; null while the window is still open (or without
    ``game_id``, ``player_key`` or ``served_at``). The events' player ids are replaced by their
    log digest, so the training code path joins them to ``player_key`` unchanged. Also returns
    the newest event's time (UTC, naive), ``None`` when there are no events."""
    from datetime import datetime as dt
    from datetime import timedelta

    from pyspark.sql import functions as F

    from training.dataset import LABEL, label_snapshots, label_window_observed, last_event_us

    last_us = events.agg(last_event_us().alias("us")).first()["us"]
    if last_us is None:
        return predictions.withColumn(LABEL, F.lit(None).cast("double")), None
    keys = (
        predictions.where(
            F.col("game_id").isNotNull()
            & F.col("player_key").isNotNull()
            & F.col("served_at").isNotNull()
            & label_window_observed(F.col("served_at"), label, last_us)
        )
        .select("game_id", F.col("player_key").alias("player_id"), F.col("served_at").alias("as_of"))
        .distinct()
    )
    keyed_events = events.withColumn("player_id", player_key(F.col("player_id")))
    labels = label_snapshots(keys, keyed_events, label).select(
        "game_id",
        F.col("player_id").alias("player_key"),
        F.col("as_of").alias("served_at"),
        F.col(LABEL).cast("double").alias(LABEL),
    )
    newest = dt(1970, 1, 1) + timedelta(microseconds=int(last_us))
    return predictions.join(labels, ["game_id", "player_key", "served_at"], "left"), newest


class _Appender:
    """A ``foreachBatch`` body appending to Delta tables idempotently per batch id."""

    def __init__(self, settings: Settings, app_id: str, outputs):
        self.settings = settings
        self.app_id = app_id
        self.outputs = outputs  # [(table name, rows(batch) -> DataFrame, partition column | None)]

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        batch = batch.persist()
        try:
            for name, rows, partition in self.outputs:
                writer = (
                    rows(batch)
                    .write.format("delta")
                    .mode("append")
                    .option("txnAppId", f"{self.app_id}.{name}")
                    .option("txnVersion", batch_id)
                    .option("mergeSchema", "true")  # a table landed before a column was added (context)
                )
                if partition:
                    writer = writer.partitionBy(partition)
                writer.save(table_path(self.settings, name))
        finally:
            batch.unpersist()


def _exists(settings: Settings, folder: str) -> bool:
    from pyarrow import fs as pafs

    fs, path = filesystem(settings, folder)
    return fs.get_file_info(path).type == pafs.FileType.Directory


def _land(spark: SparkSession, settings: Settings, folder: str, schema: str, name: str, outputs) -> None:
    if not _exists(settings, folder):
        return
    checkpoint = f"{settings.lake.checkpoints.rstrip('/')}/monitoring_{name}"
    query = (
        spark.readStream.schema(schema)
        .json(folder)
        .writeStream.foreachBatch(_Appender(settings, f"playerpulse.monitoring.{name}", outputs))
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    if query.exception() is not None:
        raise RuntimeError(f"landing {folder} failed: {query.exception()}")


def run(spark: SparkSession, settings: Settings) -> dict:
    """Land every new latency report and prediction-log file; rows added per table."""
    latency, predictions = table_path(settings, LATENCY_TABLE), table_path(settings, PREDICTIONS_TABLE)
    before = table_version(spark, latency), table_version(spark, predictions)
    _land(
        spark,
        settings,
        profiles_latency_dir(settings),
        PROFILES_JSON,
        "latency",
        [(LATENCY_TABLE, profile_latency_rows, None)],
    )
    _land(
        spark,
        settings,
        predictions_dir(settings),
        PREDICTIONS_JSON,
        "predictions",
        [(PREDICTIONS_TABLE, prediction_rows, "served_date"), (LATENCY_TABLE, served_latency_rows, None)],
    )
    return {
        "latency_rows": rows_added_since(spark, latency, before[0]),
        "prediction_rows": rows_added_since(spark, predictions, before[1]),
    }


def main(argv: list[str] | None = None) -> int:
    return job_main(run, "monitoring", argv)


if __name__ == "__main__":
    raise SystemExit(main())
