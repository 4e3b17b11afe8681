"""Point-in-time training sets: feature snapshots joined to labels from strictly later events.

A row is one ``(game_id, player_id, as_of)`` snapshot of the gold table the model's feature set
names (``cfg.fs.table``: ``gold.player_features_v1`` for ``player_activity_v1``); a player is the
pair ``(game_id, player_id)``, and ``game_id`` is a key, never a feature. Its features were
computed from events at or before ``as_of`` by construction, and a label from the player's
label events in ``(as_of, as_of + horizon]``: whether one happened (occurrence), whether none
did (absence), or the sum of a value over them (regression). The window is open at
``as_of`` (an event the features already counted can never be the label) and closed at its end.
Snapshots whose window is not yet fully observed are dropped, or the newest days would all look
negative. The model's request-time ``context`` fields follow the features, encoded as serving
encodes them (``features.model_context``), each valued point-in-time: the constant default, or
the property of the player's latest event of a type at or before ``as_of`` (``with_context``).
The Delta versions read are returned so the MLflow run can name its exact inputs.

Run directly: ``spark-submit training/dataset.py MODEL [--env local]``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from features.config import Settings
from features.errors import TableNotFound, TrainingFailed
from features.model_config import LabelSpec, ModelConfig
from features.model_context import SOURCE_TYPES, ContextEncoding, ContextField
from pipelines.session import table_path

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

EVENTS_TABLE = "silver.player_events"

PLAYER = ("game_id", "player_id")
"""What identifies a player: labels come from the same game's events only."""
KEY_COLUMNS = (*PLAYER, "as_of_date", "as_of")
LABEL = "label"


@dataclass(frozen=True)
class TrainingSet:
    df: DataFrame
    """The written table, read back: ``game_id, player_id, as_of_date, as_of``, every feature of
    the set, the model's context fields (encoded), ``label``."""
    table: str
    """``gold.training_{model}``."""
    version: int
    """Delta version of the written table."""
    inputs: dict[str, int]
    """Table name → Delta version read, for lineage."""


def features_table(cfg: ModelConfig) -> str:
    """The gold table of the model's feature set's day-end snapshots: the set names it."""
    return cfg.fs.table


def training_table(cfg: ModelConfig) -> str:
    return f"gold.training_{cfg.name}"


def read_pinned(
    spark: SparkSession, settings: Settings, name: str, version: int | None = None
) -> tuple[DataFrame, int]:
    """The table at ``version`` (default: its current one), pinned: a writer committing meanwhile
    cannot change what this run reads, so the recorded version is exactly what was used, and a
    reproduction reads that version again."""
    from delta.tables import DeltaTable

    path = table_path(settings, name)
    if not DeltaTable.isDeltaTable(spark, path):
        raise TableNotFound(f"{name} does not exist at {path}: run `playerpulse pipeline all` first")
    latest = int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])
    if version is None:
        version = latest
    elif not 0 <= version <= latest:
        raise TrainingFailed(f"{name} has no version {version} (its newest is {latest})")
    df = spark.read.format("delta").option("versionAsOf", version).load(path)
    if version != latest:
        try:  # time travel fails lazily when VACUUM removed that version's files: find out here
            df.limit(1).collect()
        except Exception as exc:
            raise TrainingFailed(
                f"{name} version {version} can no longer be read ({type(exc).__name__}); VACUUM or retention "
                "removed its files, so that run cannot be rebuilt"
            ) from None
    return df, version


def last_event_us() -> Column:
    """The newest ``event_time`` of the events aggregated, in integer microseconds: how far the
    lake has observed, so which label windows are complete."""
    from pyspark.sql import functions as F

    return F.max(F.unix_micros("event_time"))


def label_window_observed(as_of: Column, label: LabelSpec, last_us: int) -> Column:
    """Whether the label window ``(as_of, as_of + horizon]`` ended by ``last_us`` (see
    ``last_event_us``): only such snapshots get a label, or the newest would all look negative.
    Training applies it to snapshots, the model report to served predictions."""
    from pyspark.sql import functions as F

    return F.unix_micros(as_of) + F.lit(label.horizon_ms * 1000) <= F.lit(int(last_us))


def label_snapshots(snapshots: DataFrame, events: DataFrame, label: LabelSpec) -> DataFrame:
    """``snapshots`` with ``label`` from the player's (same game and player id) ``event_type``
    events in ``(as_of, as_of + horizon]``, compared in integer microseconds so the bounds are
    exact: for ``occurrence`` 1 iff there is one, for ``absence`` 1 iff there is none, for
    ``regression`` the sum of ``value`` over them (0.0 without any)."""
    from pyspark.sql import functions as F

    horizon_us = label.horizon_ms * 1000
    value = [F.col(label.value).alias("e_value")] if label.value is not None else []
    targets = events.where(F.col("event_type") == label.event_type).select(
        *(F.col(c).alias(f"e_{c}") for c in PLAYER), F.unix_micros("event_time").alias("e_us"), *value
    )
    keys = snapshots.select(*PLAYER, "as_of").withColumn("s_us", F.unix_micros("as_of"))
    in_window = (
        (keys.game_id == targets.e_game_id)
        & (keys.player_id == targets.e_player_id)
        & (targets.e_us > keys.s_us)
        & (targets.e_us <= keys.s_us + F.lit(horizon_us))
    )
    if label.kind == "regression":
        sums = (
            keys.join(targets, in_window, "inner")
            .groupBy(*PLAYER, "as_of")
            .agg(F.sum(F.coalesce(F.col("e_value"), F.lit(0.0))).alias(LABEL))
        )
        return snapshots.join(sums, [*PLAYER, "as_of"], "left").withColumn(
            LABEL, F.coalesce(F.col(LABEL), F.lit(0.0)).cast("double")
        )
    hit = keys.join(targets, in_window, "left_semi").select(*PLAYER, "as_of").withColumn("_hit", F.lit(1))
    occurred = F.coalesce(F.col("_hit"), F.lit(0))
    target = occurred if label.kind == "occurrence" else F.lit(1) - occurred
    return snapshots.join(hit, [*PLAYER, "as_of"], "left").withColumn(LABEL, target.cast("int")).drop("_hit")


def encoded_context(raw: Column | None, enc: ContextEncoding) -> Column:
    """``raw`` (a silver column's value: a string, or a double, booleans as 1.0/0.0; ``None``:
    none, the constant default) as the model input ``ContextEncoding.encode`` makes of it, so
    training and serving encode alike: null → the default, a category's unknown value → the
    default's index, numbers clamped to ``[low, high]``."""
    from pyspark.sql import functions as F

    default = F.lit(enc.encode(None)).cast("double")
    if raw is None:
        return default
    if enc.type == "category":
        values = list(enc.values or ())
        index = F.array_position(F.array(*(F.lit(v) for v in values)), raw) - F.lit(1)
        return F.when(raw.isin(values), index.cast("double")).otherwise(default)
    x = F.coalesce(raw.cast("double"), default)
    if enc.low is not None:
        x = F.greatest(x, F.lit(float(enc.low)))
    if enc.high is not None:
        x = F.least(x, F.lit(float(enc.high)))
    return x


def with_context(snapshots: DataFrame, events: DataFrame, fields: Sequence[ContextField]) -> DataFrame:
    """``snapshots`` with one column per context field, named after it and encoded
    (``encoded_context``). A ``latest_property`` field takes the property of the player's (same
    game and player id) latest event of its type with ``event_time <= as_of``, compared in
    integer microseconds: an event exactly at ``as_of`` counts, one a microsecond later never
    does; ties in time go to the larger ``event_id``, so a rebuild picks the same event. That
    event's null property, or no such event yet, is the default. A ``default`` field is the
    constant.

    An as-of join without a range join: snapshot keys and the relevant events are unioned per
    player and ordered by time (an event before a snapshot at the same instant), and each
    field's last event value up to each snapshot row is carried forward by one window."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    sourced = [(i, f, f.source) for i, f in enumerate(fields) if f.source is not None]
    if not sourced:
        return snapshots.withColumns({f.name: encoded_context(None, f.encoding) for f in fields})
    needed = sorted({src.property for _, _, src in sourced} - set(events.columns))
    if needed:
        raise TrainingFailed(f"{EVENTS_TABLE} lacks columns {needed} that context fields read")
    # silver's typed columns: strings, and doubles (booleans as 1.0/0.0, as the folds read them)
    value_type = {i: "string" if SOURCE_TYPES[src.property] == "string" else "double" for i, _, src in sourced}
    keys = snapshots.select(
        *PLAYER,
        "as_of",
        F.unix_micros("as_of").alias("_t"),
        F.lit(1).alias("_kind"),
        F.lit(None).cast("string").alias("_eid"),
        *(F.lit(None).cast(f"struct<v: {value_type[i]}>").alias(f"_c{i}") for i, _, _ in sourced),
    )
    # a struct per matching event, even when its property is null: "latest event", not "latest value"
    hits = events.where(F.col("event_type").isin(sorted({src.event_type for _, _, src in sourced}))).select(
        *PLAYER,
        F.lit(None).cast("timestamp").alias("as_of"),
        F.unix_micros("event_time").alias("_t"),
        F.lit(0).alias("_kind"),
        F.col("event_id").cast("string").alias("_eid"),
        *(
            F.when(
                F.col("event_type") == F.lit(src.event_type),
                F.struct(F.col(src.property).cast(value_type[i]).alias("v")),
            ).alias(f"_c{i}")
            for i, _, src in sourced
        ),
    )
    upto = (
        Window.partitionBy(*PLAYER)
        .orderBy("_t", "_kind", "_eid")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    carried = [F.last(f"_c{i}", ignorenulls=True).over(upto).alias(f"_c{i}") for i, _, _ in sourced]
    latest = (
        keys.unionByName(hits)
        .select(*PLAYER, "as_of", "_kind", *carried)
        .where(F.col("_kind") == 1)
        .select(
            *PLAYER, "as_of", *(encoded_context(F.col(f"_c{i}.v"), f.encoding).alias(f.name) for i, f, _ in sourced)
        )
    )
    constants = {f.name: encoded_context(None, f.encoding) for f in fields if f.source is None}
    joined = snapshots.join(latest, [*PLAYER, "as_of"], "left").withColumns(constants)
    return joined.select(*snapshots.columns, *(f.name for f in fields))


def build_training_set(
    spark: SparkSession, settings: Settings, cfg: ModelConfig, versions: Mapping[str, int] | None = None
) -> TrainingSet:
    """Write ``gold.training_{name}`` (overwrite) from pinned versions of silver and the feature
    snapshots, keeping one snapshot every ``snapshot_every_days`` days with ``min_history_days``
    behind it and a fully observed label window, and return it with the versions read.

    ``versions`` (table → Delta version, as a run's lineage records them) rebuilds the set a
    past run trained on; by default each input is read at its current version."""
    from pyspark.sql import functions as F

    versions = versions or {}
    feats_name = features_table(cfg)
    snaps, feats_version = read_pinned(spark, settings, feats_name, versions.get(feats_name))
    events, events_version = read_pinned(spark, settings, EVENTS_TABLE, versions.get(EVENTS_TABLE))
    # Every feature of the set, not just the model's: the gate re-scores the champion on these
    # rows even when the two versions use different feature lists.
    all_features = cfg.fs.feature_names
    missing = [c for c in (*KEY_COLUMNS, *all_features) if c not in snaps.columns]
    if missing:
        raise TrainingFailed(f"{feats_name} lacks columns {missing} that model '{cfg.name}' needs")

    # Micros and a DATE cross to Python exactly; a TIMESTAMP would pick up the local time zone.
    bounds = events.agg(F.min("event_date").alias("first_date"), last_event_us().alias("last_us")).first()
    if bounds is None or bounds["last_us"] is None:
        raise TrainingFailed(f"{EVENTS_TABLE} is empty: there is nothing to label '{cfg.name}' with")
    history_days = F.datediff(F.col("as_of_date"), F.lit(bounds["first_date"]).cast("date")) + 1
    # Cadence counts from the first day of data, so the chosen days do not move as days are added.
    on_cadence = (history_days - 1) % F.lit(cfg.training.snapshot_every_days) == 0

    kept = snaps.select(*KEY_COLUMNS, *all_features).where(
        label_window_observed(F.col("as_of"), cfg.label, int(bounds["last_us"]))
        & (history_days >= F.lit(cfg.training.min_history_days))
        & on_cadence
    )
    labelled = label_snapshots(with_context(kept, events, cfg.context), events, cfg.label)
    out = labelled.select(*KEY_COLUMNS, *all_features, *cfg.context_names, LABEL)

    from delta.tables import DeltaTable

    name = training_table(cfg)
    path = table_path(settings, name)
    (out.write.format("delta").mode("overwrite").option("overwriteSchema", "true").partitionBy("as_of_date").save(path))
    version = int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])
    df = spark.read.format("delta").option("versionAsOf", version).load(path)
    return TrainingSet(
        df=df, table=name, version=version, inputs={feats_name: feats_version, EVENTS_TABLE: events_version}
    )


def main(argv: list[str] | None = None) -> int:
    import argparse

    from features.config import load_settings
    from features.model_config import load_model_config
    from pipelines.session import get_spark

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--env", default=None)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)
    settings = load_settings(args.env, args.workdir)
    spark = get_spark(settings, app_name=f"training-set-{args.model}")
    try:
        ts = build_training_set(spark, settings, load_model_config(settings, args.model))
        print(f"{ts.table} version {ts.version}: {ts.df.count()} rows from {ts.inputs}")
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
