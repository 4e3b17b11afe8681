"""Gold: per-player daily partial aggregates, and every feature set read at every day end.

A player is the pair ``(game_id, player_id)``: the same player id in two games is two players,
so every key below starts with ``game_id`` (a key column, never a model feature).

``gold.player_daily`` holds one row per (player, UTC date with silver events) and, per input
("bucket") of the feature sets, the same partial aggregate (cell) the online profile keeps per
tile: ``{bucket}_n`` (events, or events with a value for value inputs), ``{bucket}_sum`` and
``{bucket}_max``, plus ``_min``, ``_first``/``_last`` (``(t, v)`` structs: the smallest and the
largest is the first and the last event, equal times broken by value) and ``_distinct`` (the
day's distinct values) for an input a min, first, last or distinct reads; for an input a
minute or hour window of N minutes reads, the same over the day's last N minutes
(``{bucket}_last{N}m_*``): what that window covers at the day end, where snapshots are read
(``features.windows``); and ``last_{input}_ms`` for each recency. Feature tables are computed
from it, one per set of ``features.definitions.FEATURE_SETS``, online or not: ``fs.table``
(``gold.player_features_v1`` for ``player_activity_v1``) has one row per player per date from
the player's first event date to the last date in silver, read as of the end of that date: day
windows over the date's rows, lifetime over every row so far, ratios last. Both are small next
to silver, so for now each run recomputes them in full and overwrites them (no incremental
merge).

``features_at_day_end`` is public so that training builds point-in-time sets from the same code.

Run it:

    PYSPARK_PYTHON=.venv/bin/python .venv/bin/spark-submit --jars "$(ls jvm/jars/*.jar | paste -sd, -)" \\
        pipelines/gold.py --env local --workdir ./var
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from features.config import Settings
from features.definitions import EXTENDED_OPS, FEATURE_SETS, Buckets, FeatureSet, FeatureUnion
from features.properties import PROPERTY_TYPES
from pipelines.entrypoint import job_main
from pipelines.expressions import DAY_MS, day_end, epoch_ms
from pipelines.lake import read_table, rows_added_since, table_version
from pipelines.session import table_path

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

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


def tile_windows(feature_sets: Iterable[FeatureSet]) -> dict[str, tuple[int, ...]]:
    """Input → the lengths in minutes of the minute and hour windows any set reads it with."""
    out: dict[str, set[int]] = {}
    for fs in feature_sets:
        for agg in fs.aggregations:
            for w in agg.parsed_windows:
                if w.resolution == "tile":
                    out.setdefault(agg.bucket, set()).add(w.minutes)
    return {name: tuple(sorted(lengths)) for name, lengths in out.items()}


def _tail(bucket: str, minutes: int) -> str:
    """Column prefix of an input's partial aggregate over the last ``minutes`` of a UTC day."""
    return f"{bucket}_last{minutes}m"


def _partials(prefix: str, selected: Column, value: str | None, string: bool, extended: bool) -> list[Column]:
    """The cell of ``features.profile_state`` as aggregate columns ``{prefix}_n``, ``_sum``,
    ``_max`` (and ``_min``, ``_first``, ``_last``, ``_distinct`` when ``extended``) over the
    rows ``selected`` picks: the same partial aggregate the online profile keeps per tile."""
    from pyspark.sql import functions as F

    if value is None:
        return [
            F.count(F.when(selected, 1)).alias(f"{prefix}_n"),
            F.lit(0.0).alias(f"{prefix}_sum"),
            F.lit(None).cast("double").alias(f"{prefix}_max"),
        ]
    counted = selected & F.col(value).isNotNull()
    v = F.when(counted, F.col(value))
    out = [F.count(F.when(counted, 1)).alias(f"{prefix}_n")]
    if string:
        out += [F.lit(0.0).alias(f"{prefix}_sum"), F.lit(None).cast("double").alias(f"{prefix}_max")]
    else:
        out += [
            F.coalesce(F.sum(v), F.lit(0.0)).alias(f"{prefix}_sum"),
            F.max(v).cast("double").alias(f"{prefix}_max"),
        ]
    if extended:
        # (time, value) pairs: the smallest is the first event, equal times broken by value,
        # exactly as the online cell breaks them
        pair = F.when(counted, F.struct(epoch_ms(F.col("event_time")).alias("t"), F.col(value).alias("v")))
        out += [
            (F.lit(None).cast("double") if string else F.min(v).cast("double")).alias(f"{prefix}_min"),
            F.min(pair).alias(f"{prefix}_first"),
            F.max(pair).alias(f"{prefix}_last"),
            F.array_distinct(F.collect_list(v)).alias(f"{prefix}_distinct"),
        ]
    return out


def player_daily(silver: DataFrame, feature_sets: Iterable[FeatureSet]) -> DataFrame:
    """One row per (game_id, player_id, event_date) of ``silver`` with each input's day
    aggregate and, for inputs a minute or hour window reads, its aggregate over the day's last
    N minutes (what that window covers at the day end, where snapshots are read)."""
    from pyspark.sql import functions as F

    sets = tuple(feature_sets)
    union = FeatureUnion(sets)
    recencies = {rec.input: rec.event_types for rec in union.recencies}
    values = {plan.value for plan in union.fold_plan if plan.value is not None}
    missing = sorted({*KEYS, "event_type", "event_time", *values} - set(silver.columns))
    if missing:
        raise ValueError(f"silver rows lack columns {missing}")
    tails = tile_windows(sets)
    minute_of_day = F.floor((epoch_ms(F.col("event_time")) % F.lit(DAY_MS)) / F.lit(60_000))
    aggregates = []
    for plan in union.fold_plan:
        in_bucket = F.col("event_type").isin(sorted(plan.event_types))
        string = plan.value is not None and PROPERTY_TYPES[plan.value] == "string"
        aggregates += _partials(plan.name, in_bucket, plan.value, string, plan.extended)
        for minutes in tails.get(plan.name, ()):
            in_tail = in_bucket & (minute_of_day >= F.lit(24 * 60 - minutes))
            aggregates += _partials(_tail(plan.name, minutes), in_tail, plan.value, string, plan.extended)
    for name, types in recencies.items():
        event_ms = F.when(F.col("event_type").isin(list(types)), epoch_ms(F.col("event_time")))
        aggregates.append(F.max(event_ms).alias(f"last_{name}_ms"))
    return silver.groupBy(*KEYS).agg(*aggregates)


def _needed_columns(fs: FeatureSet) -> set[str]:
    out = set(KEYS) | {f"last_{r.input}_ms" for r in fs.recencies}
    for agg in fs.aggregations:
        parts = ["n", "sum", "max"] + (["min", "first", "last", "distinct"] if agg.op in EXTENDED_OPS else [])
        for w in agg.parsed_windows:
            prefix = _tail(agg.bucket, w.minutes) if w.resolution == "tile" else agg.bucket
            out |= {f"{prefix}_{part}" for part in parts}
    return out


def _window_value(op: str, prefix: str, over: Callable[[Column], Column]) -> Column:
    """``op`` over the cells ``over`` gathers (a window frame of day rows, or the row itself)."""
    from pyspark.sql import functions as F

    n = over(F.sum(f"{prefix}_n")) if over is not _row else F.col(f"{prefix}_n")
    total = over(F.sum(f"{prefix}_sum")) if over is not _row else F.col(f"{prefix}_sum")
    if op == "count":
        return F.coalesce(n, F.lit(0)).cast("long")
    if op == "sum":
        return F.coalesce(total, F.lit(0.0)).cast("double")
    if op == "avg":
        return F.when(n > 0, total / n).cast("double")
    if op in ("max", "min"):
        agg = F.max if op == "max" else F.min
        return (over(agg(f"{prefix}_{op}")) if over is not _row else F.col(f"{prefix}_{op}")).cast("double")
    if op in ("first", "last"):
        agg = F.min if op == "first" else F.max
        pair = over(agg(f"{prefix}_{op}")) if over is not _row else F.col(f"{prefix}_{op}")
        return pair.getField("v")
    if op == "distinct":
        values = (
            F.array_distinct(F.flatten(over(F.collect_list(f"{prefix}_distinct"))))
            if over is not _row
            else F.col(f"{prefix}_distinct")
        )
        return F.when(values.isNull(), F.lit(0)).otherwise(F.size(values)).cast("long")
    raise ValueError(f"unknown operation {op!r}")


def _row(column: Column) -> Column:
    """The day row itself (minute windows at the day end read only that day's tail)."""
    return column


def features_at_day_end(spark: SparkSession, daily_df: DataFrame, fs: FeatureSet) -> DataFrame:
    """``fs`` for every player and date from their first active date to the last date in
    ``daily_df``, as of that date's last millisecond: ``game_id, player_id, as_of_date, as_of`` +
    features.

    Every date gets a row (a spine), so a window of N days is simply the N spine rows up to the
    date, lifetime every row so far, and a minute window the date's own tail aggregate (a day
    end is a tile boundary). ``spark`` is taken for symmetry with the other builders that
    training calls.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    missing = sorted(_needed_columns(fs) - set(daily_df.columns))
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
    so_far = by_date.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    as_of_ms = epoch_ms(day_end(F.col("as_of_date")))
    features = []
    for agg in fs.aggregations:
        for window in agg.parsed_windows:
            if window.resolution == "tile":
                value = _window_value(agg.op, _tail(agg.bucket, window.minutes), _row)
            else:
                frame = so_far if window.resolution == "lifetime" else by_date.rowsBetween(-(window.length - 1), 0)
                value = _window_value(agg.op, agg.bucket, lambda c, frame=frame: c.over(frame))
            features.append(value.alias(agg.output_name(window)))
    for rec in fs.recencies:
        last_ms = F.max(f"last_{rec.input}_ms").over(so_far)
        unit_ms = DAY_MS if rec.unit == "days" else 60_000
        features.append(((as_of_ms - last_ms) / F.lit(unit_ms)).cast("double").alias(rec.output_name))
    out = days.select(*PLAYER, "as_of_date", day_end(F.col("as_of_date")).alias("as_of"), *features)
    if not fs.ratios:
        return out
    ratios = []
    for ratio in fs.ratios:
        num = F.col(ratio.numerator) + F.lit(float(ratio.prior_numerator))
        den = F.col(ratio.denominator) + F.lit(float(ratio.prior_denominator))
        value = F.when(den.isNotNull() & (den != 0), num / den * F.lit(ratio.scale))
        ratios.append(value.cast("double").alias(ratio.name))
    return out.select("*", *ratios)


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
