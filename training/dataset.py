"""Point-in-time training sets: feature snapshots joined to labels from strictly later events.

A row is one ``(game_id, player_id, as_of)`` snapshot of ``gold.player_features_v1`` (a player
is the pair ``(game_id, player_id)``; ``game_id`` is a key, never a feature), whose features were
computed from events at or before ``as_of`` by construction, and a label saying whether the
player produced the model's label event in ``(as_of, as_of + horizon]``. The window is open at
``as_of`` (an event the features already counted can never be the label) and closed at its end.
Snapshots whose window is not yet fully observed are dropped, or the newest days would all look
negative. The Delta versions read are returned so the MLflow run can name its exact inputs.

Run directly: ``spark-submit training/dataset.py MODEL [--env local]``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from features.config import Settings
from features.errors import ConfigError, TableNotFound, TrainingFailed
from features.model_config import ModelConfig
from pipelines.gold import FEATURE_TABLES
from pipelines.session import table_path

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

EVENTS_TABLE = "silver.player_events"

"""Feature set → the gold table of its daily snapshots (a new set version gets a new table)."""

PLAYER = ("game_id", "player_id")
"""What identifies a player: labels come from the same game's events only."""
KEY_COLUMNS = (*PLAYER, "as_of_date", "as_of")
LABEL = "label"


@dataclass(frozen=True)
class TrainingSet:
    df: DataFrame
    """The written table, read back: ``game_id, player_id, as_of_date, as_of``, every feature of
    the set, ``label``."""
    table: str
    """``gold.training_{model}``."""
    version: int
    """Delta version of the written table."""
    inputs: dict[str, int]
    """Table name → Delta version read, for lineage."""


def features_table(cfg: ModelConfig) -> str:
    try:
        return FEATURE_TABLES[cfg.feature_set]
    except KeyError:
        raise ConfigError(
            f"feature set '{cfg.feature_set}' of model '{cfg.name}' has no gold snapshot table; "
            f"add it to pipelines.gold.FEATURE_TABLES (known: {sorted(FEATURE_TABLES)})"
        ) from None


def training_table(cfg: ModelConfig) -> str:
    return f"gold.training_{cfg.name}"


def _read_pinned(spark: SparkSession, settings: Settings, name: str) -> tuple[DataFrame, int]:
    """The table at its current version, pinned: a writer committing meanwhile cannot change
    what this run reads, so the recorded version is exactly what was used."""
    from delta.tables import DeltaTable

    path = table_path(settings, name)
    if not DeltaTable.isDeltaTable(spark, path):
        raise TableNotFound(f"{name} does not exist at {path}: run `playerpulse pipeline all` first")
    version = int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])
    return spark.read.format("delta").option("versionAsOf", version).load(path), version


def label_snapshots(snapshots: DataFrame, events: DataFrame, event_type: str, horizon_ms: int) -> DataFrame:
    """``snapshots`` with ``label`` = 1 iff the player (game and player id) has an ``event_type``
    event in ``(as_of, as_of + horizon]``; compared in integer microseconds so the bounds are exact."""
    from pyspark.sql import functions as F

    horizon_us = horizon_ms * 1000
    targets = events.where(F.col("event_type") == event_type).select(
        *(F.col(c).alias(f"e_{c}") for c in PLAYER), F.unix_micros("event_time").alias("e_us")
    )
    keys = snapshots.select(*PLAYER, "as_of").withColumn("s_us", F.unix_micros("as_of"))
    positive = (
        keys.join(
            targets,
            (keys.game_id == targets.e_game_id)
            & (keys.player_id == targets.e_player_id)
            & (targets.e_us > keys.s_us)
            & (targets.e_us <= keys.s_us + F.lit(horizon_us)),
            "left_semi",
        )
        .select(*PLAYER, "as_of")
        .withColumn(LABEL, F.lit(1))
    )
    return snapshots.join(positive, [*PLAYER, "as_of"], "left").withColumn(
        LABEL, F.coalesce(F.col(LABEL), F.lit(0)).cast("int")
    )


def build_training_set(spark: SparkSession, settings: Settings, cfg: ModelConfig) -> TrainingSet:
    """Write ``gold.training_{name}`` (overwrite) from pinned versions of silver and the feature
    snapshots, keeping only snapshots with ``min_history_days`` behind them and a fully observed
    label window, and return it with the versions read."""
    from pyspark.sql import functions as F

    feats_name = features_table(cfg)
    snaps, feats_version = _read_pinned(spark, settings, feats_name)
    events, events_version = _read_pinned(spark, settings, EVENTS_TABLE)
    # Every feature of the set, not just the model's: the gate re-scores the champion on these
    # rows even when the two versions use different feature lists.
    all_features = cfg.fs.feature_names
    missing = [c for c in (*KEY_COLUMNS, *all_features) if c not in snaps.columns]
    if missing:
        raise TrainingFailed(f"{feats_name} lacks columns {missing} that model '{cfg.name}' needs")

    # Micros and a DATE cross to Python exactly; a TIMESTAMP would pick up the local time zone.
    bounds = events.agg(
        F.min("event_date").alias("first_date"), F.max(F.unix_micros("event_time")).alias("last_us")
    ).first()
    if bounds is None or bounds["last_us"] is None:
        raise TrainingFailed(f"{EVENTS_TABLE} is empty: there is nothing to label '{cfg.name}' with")
    horizon_us = cfg.label.horizon_ms * 1000
    last_us = F.lit(int(bounds["last_us"]))
    history_days = F.datediff(F.col("as_of_date"), F.lit(bounds["first_date"]).cast("date")) + 1

    kept = snaps.select(*KEY_COLUMNS, *all_features).where(
        (F.unix_micros("as_of") + F.lit(horizon_us) <= last_us) & (history_days >= F.lit(cfg.training.min_history_days))
    )
    labelled = label_snapshots(kept, events, cfg.label.event_type, cfg.label.horizon_ms)
    out = labelled.select(*KEY_COLUMNS, *all_features, LABEL)

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
