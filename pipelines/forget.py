"""Erasure: ``playerpulse forget`` removes players from every place PlayerPulse keeps them.

    PYSPARK_PYTHON=.venv/bin/python .venv/bin/spark-submit --jars "$(ls jvm/jars/*.jar | paste -sd, -)" \\
        pipelines/forget.py --game demo p000042 [--now] --env local --workdir ./var

A player is ``(game_id, player_id)``; the caller names the id as the game knows it, and where the
game pseudonymises (``features.pseudonyms``) every stored pseudonym of it (current and older
secrets) is erased. In order:

1. **The erasure list first** (``gold.erasure_log``, ``pipelines.erasure_list``): from then on
   the streaming profiles job drops the player's events, so nothing erased below comes back.
2. **Every lake table** with ``game_id`` and ``player_id`` (bronze, silver, quarantine, gold,
   feature and training sets), or ``game_id`` and ``player_key`` (``gold.predictions``, where a
   player is the ``digest_for_log`` of the stored id): a MERGE … WHEN MATCHED DELETE against a small frame of the keys,
   never ``DELETE WHERE player_id = '…'``, whose literal Delta would keep in the commit's
   ``operationParameters``. ``bronze.dead_letter`` loses the game's letters whose raw text names
   the id (``features.deadletter.base.player_pattern``). Then VACUUM with
   ``upkeep.vacuum_retain_hours`` (the upkeep job's window), so the files holding the rows
   disappear once no version inside it needs them. ``now=True`` vacuums with no retention at once
   (Delta's ``retentionDurationCheck`` lifted for that call only) and expires the table's older
   log entries, whose data-skipping statistics can hold an id as a min or max value.
3. **MLflow**: before the tables change, every registered version whose run read a version of a
   training set that held the player is listed for retraining and tagged
   ``erasure.retrain_required``; its logged holdout rows are rewritten without the player.
4. **Dead-letter store**, **online store** (``delete``) and the **stream**: on SQLite each of the
   player's records is decoded, the player's events dropped and the rest re-encoded in place
   (``SqliteStream.rewrite``); Kinesis records cannot be deleted and expire with the stream's
   retention, during which the erasure list keeps a replay from folding them. SQLite files are
   then checkpointed and VACUUMed so deleted rows leave no bytes in free pages or the WAL.
5. **Files**: report files (JSON, JSONL, text, among them the prediction sample not yet landed)
   naming the id or its log digest get it replaced by ``[erased]``;
   Parquet files beside the lake under the work folder (e.g. the simulator's ground truth) lose
   the player's rows.

Every step appends what it removed to ``gold.erasure_log``.
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from features.config import Settings, SqliteDeadLetterConfig, SqliteOnlineStoreConfig, SqliteStreamConfig
from features.contract import PLAYER_ID_PATTERN
from features.deadletter import open_dead_letter_store
from features.deadletter.base import player_pattern
from features.errors import ConfigError, PlayerPulseError
from features.online import open_online_store
from features.pseudonyms import GamePseudonyms, digest_for_log
from features.streams.codec import decode_batch, encode_batch
from features.streams.factory import open_stream
from pipelines.entrypoint import job_main
from pipelines.erasure_list import ERASURE_LOG, ERASURE_LOG_DDL, erasure_log_path, player_digest
from pipelines.lake_files import is_remote, read_text, walk_files, write_text
from pipelines.session import lake_tables

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
ERASED_TOKEN = "[erased]"
TEXT_SUFFIXES = (".json", ".jsonl", ".txt", ".log", ".csv")


class ErasureRefused(PlayerPulseError):
    """The request names no player, or something that cannot be a player id: nothing was erased."""


@dataclass
class ErasureReport:
    """What one ``run`` removed, place by place (counts only: no id is ever printed)."""

    erasure_id: str
    game: str
    players: int
    removed: dict[str, int] = field(default_factory=dict)
    retrain: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "erasure_id": self.erasure_id,
            "game": self.game,
            "players": self.players,
            "removed": self.removed,
            "retrain": self.retrain,
            "notes": self.notes,
        }


def stored_ids(settings: Settings, game: str, player_id: str) -> list[str]:
    """The ids ``player_id`` may be stored under in ``game``: itself, or every pseudonym of it."""
    return GamePseudonyms.of({game: settings.games[game]}).stored_ids(game, player_id)


def check_request(settings: Settings, game: str, player_ids: Sequence[str]) -> None:
    """Refuse a request that names an unknown game, no id, or a non-id, before anything changes."""
    if game not in settings.games:
        raise ConfigError(f"unknown game '{game}': configured games are {sorted(settings.games)}")
    if not player_ids:
        raise ErasureRefused("name at least one player id to forget (or --file with one id per line)")
    bad = [p for p in player_ids if not re.fullmatch(PLAYER_ID_PATTERN, p)]
    if bad:
        raise ErasureRefused(
            f"{len(bad)} of the ids are not player ids (1-64 characters of A-Z a-z 0-9 _ . : -): nothing was erased"
        )


def run(
    spark: SparkSession, settings: Settings, game: str, player_ids: Sequence[str], now: bool = False
) -> ErasureReport:
    """Erase ``player_ids`` (as ``game`` knows them) everywhere; what was removed where."""
    check_request(settings, game, player_ids)
    ids = sorted({s for p in player_ids for s in stored_ids(settings, game, p)})
    report = ErasureReport(uuid.uuid4().hex, game, len(set(player_ids)))
    log = _ErasureLog(spark, settings, report, game, ids)
    log.append("requested", len(ids))

    tables = _player_tables(spark, settings)
    report.retrain = _models_to_retrain(spark, settings, game, ids, tables)
    log.append("mlflow", len(report.retrain), {"retrain": report.retrain})
    for name, path, kind in tables:
        log.append(name, _delete_rows(spark, path, kind, game, ids))
    _erase_stores(settings, game, ids, report, log)
    log.append("files", erase_files(settings, game, ids))
    log.flush()
    for _, path, _ in tables:
        _vacuum(spark, settings, path, now)
    if now:
        report.notes.append(
            f"--now: VACUUM kept no retention ({RETENTION_CHECK}=false for these calls only) and log "
            "versions before the erasure were expired: time travel before it is gone, and a streaming "
            "reader of these tables must skip change commits"
        )
    else:
        hours = settings.upkeep.vacuum_retain_hours
        report.notes.append(f"rows deleted; their files go when VACUUM's {hours:g} h retention passes")
    return report


class _ErasureLog:
    """Appends rows to ``gold.erasure_log`` (digests only) and counts into the report."""

    def __init__(self, spark: SparkSession, settings: Settings, report: ErasureReport, game: str, ids: list[str]):
        self.spark, self.path, self.report, self.game = spark, erasure_log_path(settings), report, game
        self.digests = [player_digest(game, i) for i in ids]
        self.rows: list[tuple[Any, ...]] = []

    def append(self, place: str, removed: int, detail: dict[str, Any] | None = None) -> None:
        """Record one place; ``requested`` is written at once (it is the erasure list), the rest
        in one commit by ``flush``."""
        if place != "requested":
            self.report.removed[place] = self.report.removed.get(place, 0) + removed
        at = datetime.now(UTC)
        note = json.dumps(detail or {}, sort_keys=True, default=str)
        self.rows += [(self.report.erasure_id, at, self.game, d, place, removed, note) for d in self.digests]
        if place == "requested":
            self.flush()

    def flush(self) -> None:
        if self.rows:
            frame = self.spark.createDataFrame(self.rows, ERASURE_LOG_DDL)
            frame.write.format("delta").mode("append").save(self.path)
            self.rows = []


# --- the lake ----------------------------------------------------------------------------------


def _player_tables(spark: SparkSession, settings: Settings) -> list[tuple[str, str, str]]:
    """``(name, path, kind)`` of every lake table holding players: kind ``player`` (has
    ``game_id`` and ``player_id``), ``player_key`` (``game_id`` and the ``digest_for_log`` of the
    stored id, as the prediction sample names players) or ``dead_letter`` (``game_id`` and ``raw``)."""
    out = []
    for name, path in lake_tables(spark, settings).items():
        if name == ERASURE_LOG:
            continue
        columns = set(spark.read.format("delta").load(path).columns)
        if {"game_id", "player_id"} <= columns:
            out.append((name, path, "player"))
        elif {"game_id", "player_key"} <= columns:  # gold.predictions: the player as a log digest
            out.append((name, path, "player_key"))
        elif {"game_id", "raw"} <= columns:
            out.append((name, path, "dead_letter"))
    return out


def _delete_rows(spark: SparkSession, path: str, kind: str, game: str, ids: list[str]) -> int:
    """MERGE-delete the players' rows; the rows deleted (from the commit's own metrics)."""
    from delta.tables import DeltaTable

    table = DeltaTable.forPath(spark, path)
    if kind == "player":
        keys = spark.createDataFrame([(game, i) for i in ids], "game_id STRING, player_id STRING")
        condition = "t.game_id = s.game_id AND t.player_id = s.player_id"
    elif kind == "player_key":
        keys = spark.createDataFrame([(game, digest_for_log(i)) for i in ids], "game_id STRING, player_key STRING")
        condition = "t.game_id = s.game_id AND t.player_key = s.player_key"
    else:
        keys = spark.createDataFrame([(game, player_pattern(ids))], "game_id STRING, pattern STRING")
        condition = "t.game_id = s.game_id AND t.raw RLIKE s.pattern"
    table.alias("t").merge(keys.alias("s"), condition).whenMatchedDelete().execute()
    metrics = table.history(1).select("operation", "operationMetrics").first()
    if metrics["operation"] != "MERGE" or not metrics["operationMetrics"]:
        return 0
    return int(metrics["operationMetrics"].get("numTargetRowsDeleted", 0))


def _vacuum(spark: SparkSession, settings: Settings, path: str, now: bool) -> None:
    from pipelines.maintain import vacuum

    if not now:
        vacuum(spark, path, settings.upkeep.vacuum_retain_hours)
        return
    before = spark.conf.get(RETENTION_CHECK, "true")
    spark.conf.set(RETENTION_CHECK, "false")
    try:
        vacuum(spark, path, 0.0)
    finally:
        spark.conf.set(RETENTION_CHECK, before)
    _expire_log(spark, path)


def _expire_log(spark: SparkSession, path: str) -> None:
    """Checkpoint the table now and delete its log entries before that checkpoint.

    Each commit's ``add`` actions carry data-skipping statistics, and the min or max of
    ``player_id`` in a file is some player's id; Delta's own log clean-up removes old entries only
    after ``delta.logRetentionDuration`` (30 days) and never within the current day. The newest
    checkpoint describes the table as it is now, so versions before it are no longer readable,
    which after a retention-free VACUUM they were not anyway.
    """
    from delta.tables import DeltaTable

    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.checkpointInterval' = '1')")
    spark.sql(f"ALTER TABLE delta.`{path}` UNSET TBLPROPERTIES ('delta.checkpointInterval')")
    latest = int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])
    jvm = spark.sparkContext._jvm
    log_dir = jvm.org.apache.hadoop.fs.Path(f"{path.rstrip('/')}/_delta_log")
    fs = log_dir.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    checkpoints = []
    for status in fs.listStatus(log_dir):
        name = status.getPath().getName()
        if ".checkpoint" in name and name[:20].isdigit():
            checkpoints.append(int(name[:20]))
    keep_from = max((v for v in checkpoints if v <= latest), default=None)
    if keep_from is None:
        return
    for status in fs.listStatus(log_dir):
        name = status.getPath().getName()
        if name[:20].isdigit() and int(name[:20]) < keep_from and status.isFile():
            fs.delete(status.getPath(), False)


# --- MLflow ------------------------------------------------------------------------------------


def _models_to_retrain(
    spark: SparkSession, settings: Settings, game: str, ids: list[str], tables: list[tuple[str, str, str]]
) -> list[dict[str, Any]]:
    """Registered versions trained on a training-set version that held the players (checked by
    time travel while that version is readable; listed anyway when it no longer is)."""
    from pyspark.sql import functions as F

    from training.registry import tracking_client

    paths = {name: path for name, path, kind in tables if kind == "player"}
    client = tracking_client(settings)
    out = []
    for model in client.search_registered_models():
        for mv in client.search_model_versions(f"name = '{model.name}'"):
            table, version = mv.tags.get("training_table"), mv.tags.get("training_table_version")
            if table not in paths or version is None:
                continue
            try:
                held = (
                    spark.read.format("delta")
                    .option("versionAsOf", int(version))
                    .load(paths[table])
                    .where((F.col("game_id") == game) & F.col("player_id").isin(ids))
                    .limit(1)
                    .count()
                    > 0
                )
            except Exception:  # a vacuumed version: assume it held them
                held = True
            if not held:
                continue
            client.set_model_version_tag(model.name, mv.version, "erasure.retrain_required", "true")
            holdout_rows = _rewrite_holdout(client, mv.run_id, game, ids)
            out.append(
                {
                    "model": model.name,
                    "version": int(mv.version),
                    "aliases": list(mv.aliases),
                    "training_table": table,
                    "training_table_version": int(version),
                    "holdout_rows_removed": holdout_rows,
                }
            )
    return out


def _rewrite_holdout(client: Any, run_id: str | None, game: str, ids: list[str]) -> int:
    """Log the run's holdout rows again without the players (same artifact path); rows removed."""
    import tempfile

    import pandas as pd

    from training.registry import HOLDOUT_ARTIFACT

    if not run_id:
        return 0
    folder = HOLDOUT_ARTIFACT.rsplit("/", 1)[0]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, HOLDOUT_ARTIFACT, tmp)
        except Exception:  # no holdout logged for this run
            return 0
        rows = pd.read_parquet(path)
        doomed = (rows["game_id"] == game) & rows["player_id"].isin(ids)
        if not doomed.any():
            return 0
        rows[~doomed].to_parquet(path, index=False)
        client.log_artifact(run_id, path, artifact_path=folder)
        return int(doomed.sum())


# --- stores beside the lake --------------------------------------------------------------------


def _erase_stores(settings: Settings, game: str, ids: list[str], report: ErasureReport, log: _ErasureLog) -> None:
    store = open_dead_letter_store(settings.dead_letter)
    try:
        log.append("dead_letters", store.erase(game, ids))
    finally:
        store.close()

    online = open_online_store(settings.online_store)
    try:
        log.append("online_store", sum(online.delete(game, i) for i in ids))
    finally:
        online.close()

    stream = open_stream(settings.stream)
    try:
        if isinstance(settings.stream, SqliteStreamConfig):
            rewritten = deleted = 0
            for i in ids:
                r, d = stream.rewrite(i, lambda data, i=i: _without_player(data, game, i))
                rewritten, deleted = rewritten + r, deleted + d
            log.append("stream", rewritten + deleted, {"rewritten": rewritten, "deleted": deleted})
        else:
            report.notes.append(
                "Kinesis records cannot be deleted: they expire with the stream's retention period, and "
                "until then the erasure list keeps the profiles job from folding them again"
            )
            log.append("stream", 0, {"kinesis": "expires with the stream's retention"})
    finally:
        stream.close()

    for cfg in (settings.dead_letter, settings.online_store, settings.stream):
        if isinstance(cfg, SqliteDeadLetterConfig | SqliteOnlineStoreConfig | SqliteStreamConfig):
            scrub_sqlite(cfg.path)


def _without_player(data: bytes, game: str, player_id: str) -> bytes | None:
    """The record without the player's events (``None`` when nothing is left, ``data`` when it
    held none): a record is one partition key's batch, and a key can be the same id in two games."""
    stream_at, events = decode_batch(data)
    kept = [e for e in events if not (e.get("game_id") == game and e.get("player_id") == player_id)]
    if len(kept) == len(events):
        return data
    return encode_batch(kept, stream_at) if kept else None


def scrub_sqlite(path: str) -> None:
    """Leave no deleted row's bytes in a SQLite file: fold the WAL in, rebuild the file, empty
    the WAL. A DELETE only marks pages free, and the WAL keeps old page images until checkpoint."""
    if not Path(path).is_file():
        return
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


# --- files -------------------------------------------------------------------------------------


def erase_files(settings: Settings, game: str, ids: list[str]) -> int:
    """Redact the ids, and their log digests (the prediction sample's ``player_key``), in report
    files and drop the players' rows from Parquet files beside the lake, under the work folder and
    under the reports location (``lake.reports``, a folder or S3); the number of files changed."""
    pattern = re.compile(player_pattern([*ids, *(digest_for_log(i) for i in ids)]))
    workdir = Path(settings.workdir)
    skip = [Path(p).resolve() for p in (settings.lake.root, settings.lake.checkpoints) if "://" not in p]
    changed = 0
    for file in sorted(workdir.rglob("*")) if workdir.is_dir() else []:
        if not file.is_file() or any(file.resolve().is_relative_to(s) for s in skip):
            continue
        if file.suffix in TEXT_SUFFIXES:
            text = file.read_text(errors="surrogateescape")
            redacted = pattern.sub(ERASED_TOKEN, text)
            if redacted != text:
                file.write_text(redacted, errors="surrogateescape")
                changed += 1
        elif file.suffix == ".parquet" and "mlflow" not in file.parts:
            changed += _drop_parquet_rows(file, ids, game)
    reports = settings.reports_location
    if is_remote(reports) or not Path(reports).resolve().is_relative_to(workdir.resolve()):
        changed += _redact_reports(settings, reports, pattern)
    return changed


def _redact_reports(settings: Settings, folder: str, pattern: re.Pattern[str]) -> int:
    """Rewrite every text report under ``folder`` that names a player with the names redacted
    (an object store cannot edit in place: each such object is written again, whole)."""
    changed = 0
    for location in walk_files(settings, folder):
        if not location.endswith(TEXT_SUFFIXES):
            continue
        text = read_text(settings, location, errors="surrogateescape")
        redacted = pattern.sub(ERASED_TOKEN, text)
        if redacted != text:
            write_text(settings, location, redacted, errors="surrogateescape")
            changed += 1
    return changed


def _drop_parquet_rows(file: Path, ids: list[str], game: str | None) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(file)
    if "player_id" not in table.column_names:
        return 0
    doomed = pc.is_in(table["player_id"], value_set=pa.array(ids))
    if game is not None and "game_id" in table.column_names:
        doomed = pc.and_(doomed, pc.equal(table["game_id"], game))
    keep = pc.invert(pc.fill_null(doomed, False))
    kept = table.filter(keep)
    if kept.num_rows == table.num_rows:
        return 0
    pq.write_table(kept, file)
    return 1


def _run_job(spark: SparkSession, settings: Settings) -> dict:  # pragma: no cover - spark-submit
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="forget")
    p.add_argument("player_ids", nargs="+")
    p.add_argument("--game", required=True)
    p.add_argument("--now", action="store_true")
    args, _ = p.parse_known_args(sys.argv[1:])
    return run(spark, settings, args.game, args.player_ids, args.now).to_dict()


def main(argv: list[str] | None = None) -> int:
    return job_main(_run_job, "forget", argv)


if __name__ == "__main__":
    raise SystemExit(main())
