"""Gold: per-player daily partial aggregates, and every feature set read at every day end.

A player is the pair ``(game_id, player_id)``: the same player id in two games is two players,
so every key below starts with ``game_id`` (a key column, never a model feature).

``gold.player_daily`` holds one row per (player, UTC date with silver events) and, per input
("bucket") of the feature sets, the same partial aggregate the online profile keeps per day:
``{bucket}_n`` (events, or events with a value for value inputs), ``{bucket}_sum`` and
``{bucket}_max``, plus ``last_{input}_ms`` for each recency. Feature tables are computed from
it, one per set of ``features.definitions.FEATURE_SETS``, online or not: ``fs.table``
(``gold.player_features_v1`` for ``player_activity_v1``) has one row per player per
date from the player's first event date to the last date in silver, read as of the end of that
date, with the day-tiled windows of ``features.definitions``. Both are small next to silver, so
for now each run recomputes them in full and overwrites them (no incremental merge).

``features_at_day_end`` is public so that training builds point-in-time sets from the same code.

Run it:

    PYSPARK_PYTHON=.venv/bin/python .venv/bin/spark-submit --jars "$(ls jvm/jars/*.jar | paste -sd, -)" \\
        pipelines/gold.py --env local --workdir ./var
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from features.config import Settings
from features.definitions import FEATURE_SETS, Buckets, FeatureSet, FeatureUnion
from pipelines.entrypoint import job_main
from pipelines.expressions import DAY_MS, day_end, epoch_ms
from pipelines.lake import read_table, rows_added_since, table_version
from pipelines.session import table_path

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SOURCE_TABLE = "silver.player_events"
DAILY_TABLE = "gold.player_daily"
PLAYER = ("game_id", "player_id")
"""What identifies a player (shared/ARCHITECTURE.md, "Identity")."""
KEYS = (*PLAYER, "event_date")


def daily_inputs(feature_sets: Iterable[FeatureSet]) -> tuple[Buckets, dict[str, tuple[str, ...]]]:
    """``(buckets, recencies)`` that ``gold.player_daily`` must carry for all ``feature_sets``;
    one input name means one definition across sets (``FeatureUnion`` refuses two, naming both
    sets), or the daily table could not serve both."""
    union = FeatureUnion(tuple(feature_sets))
    return union.buckets(), {rec.input: rec.event_types for rec in union.recencies}


def player_daily(silver: DataFrame, feature_sets: Iterable[FeatureSet]) -> DataFrame:
    """One row per (game_id, player_id, event_date) of ``silver`` with each input's day aggregate."""
    from pyspark.sql import functions as F

    buckets, recencies = daily_inputs(feature_sets)
    values = {v for _, v in buckets.values() if v is not None}
    missing = sorted({*KEYS, "event_type", "event_time", *values} - set(silver.columns))
    if missing:
        raise ValueError(f"silver rows lack columns {missing}")
    aggregates = []
    for name, (types, value) in buckets.items():
        in_bucket = F.col("event_type").isin(list(types))
        if value is None:
            aggregates += [
                F.count(F.when(in_bucket, 1)).alias(f"{name}_n"),
                F.lit(0.0).alias(f"{name}_sum"),
                F.lit(None).cast("double").alias(f"{name}_max"),
            ]
            continue
        counted = in_bucket & F.col(value).isNotNull()
        aggregates += [
            F.count(F.when(counted, 1)).alias(f"{name}_n"),
            F.coalesce(F.sum(F.when(counted, F.col(value))), F.lit(0.0)).alias(f"{name}_sum"),
            F.max(F.when(counted, F.col(value))).cast("double").alias(f"{name}_max"),
        ]
    for name, types in recencies.items():
        event_ms = F.when(F.col("event_type").isin(list(types)), epoch_ms(F.col("event_time")))
        aggregates.append(F.max(event_ms).alias(f"last_{name}_ms"))
    return silver.groupBy(*KEYS).agg(*aggregates)


def features_at_day_end(spark: SparkSession, daily_df: DataFrame, fs: FeatureSet) -> DataFrame:
    """``fs`` for every player and date from their first active date to the last date in
    ``daily_df``, as of that date's last millisecond: ``game_id, player_id, as_of_date, as_of`` +
    features.

    Every date gets a row (a spine), so a window of N days is simply the N spine rows up to the
    date. ``spark`` is taken for symmetry with the other builders that training calls.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    needed = {f"{a.bucket}_{part}" for a in fs.aggregations for part in ("n", "sum", "max")}
    needed |= {f"last_{r.input}_ms" for r in fs.recencies} | set(KEYS)
    missing = sorted(needed - set(daily_df.columns))
    if missing:
        raise ValueError(f"daily rows lack columns {missing} needed by {fs.full_name}: rebuild {DAILY_TABLE}")

    last_date = daily_df.agg(F.max("event_date").alias("last_date"))
    spine = (
        daily_df.groupBy(*PLAYER)
        .agg(F.min("event_date").alias("first_date"))
        .crossJoin(last_date)
        .select(*PLAYER, F.explode(F.sequence("first_date", "last_date")).alias("as_of_date"))
    )
    days = spine.join(daily_df.withColumnRenamed("event_date", "as_of_date"), [*PLAYER, "as_of_date"], "left")
    by_date = Window.partitionBy(*PLAYER).orderBy("as_of_date")
    as_of_ms = epoch_ms(day_end(F.col("as_of_date")))
    features = []
    for agg in fs.aggregations:
        for window in agg.windows:
            frame = by_date.rowsBetween(-(window - 1), Window.currentRow)
            n = F.sum(f"{agg.bucket}_n").over(frame)
            total = F.sum(f"{agg.bucket}_sum").over(frame)
            if agg.op == "count":
                value = F.coalesce(n, F.lit(0)).cast("long")
            elif agg.op == "sum":
                value = F.coalesce(total, F.lit(0.0)).cast("double")
            elif agg.op == "avg":
                value = F.when(n > 0, total / n).cast("double")
            else:
                value = F.max(f"{agg.bucket}_max").over(frame).cast("double")
            features.append(value.alias(agg.output_name(window)))
    so_far = by_date.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    for rec in fs.recencies:
        last_ms = F.max(f"last_{rec.input}_ms").over(so_far)
        features.append(((as_of_ms - last_ms) / F.lit(DAY_MS)).cast("double").alias(rec.output_name))
    return days.select(*PLAYER, "as_of_date", day_end(F.col("as_of_date")).alias("as_of"), *features)


def _overwrite(frame: DataFrame, path: str) -> None:
    frame.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(path)


def run(spark: SparkSession, settings: Settings) -> dict:
    """Rebuild gold.player_daily and one feature table per feature set; rows written per table."""
    feature_sets = list(FEATURE_SETS.values())
    silver = read_table(spark, settings, SOURCE_TABLE, produced_by="silver")
    written: dict[str, int] = {}
    daily_path = table_path(settings, DAILY_TABLE)
    before = table_version(spark, daily_path)
    _overwrite(player_daily(silver, feature_sets), daily_path)
    written[DAILY_TABLE] = rows_added_since(spark, daily_path, before)
    daily = spark.read.format("delta").load(daily_path)
    for fs in feature_sets:
        path = table_path(settings, fs.table)
        before = table_version(spark, path)
        _overwrite(features_at_day_end(spark, daily, fs), path)
        written[fs.table] = rows_added_since(spark, path, before)
    return written


def main(argv: list[str] | None = None) -> int:
    return job_main(run, "gold", argv)


if __name__ == "__main__":
    raise SystemExit(main())
