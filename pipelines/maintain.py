"""Upkeep: the lake keeps itself fast to read, small to store and within its retention, daily.

A separate daily job (``playerpulse pipeline maintain``), not part of the bronze → silver → gold
pass: its rewrites would compete with ingestion for the same cores, and nothing downstream waits
for it. In order:

1. **Retention.** Each table in ``upkeep.retention_days`` loses the ``event_date`` partitions
   older than its maximum age: ``DELETE WHERE event_date < cutoff`` on a table partitioned by
   ``event_date`` is a metadata-only delete (whole files leave the log, nothing is rewritten).
   It runs first, so OPTIMIZE never compacts data about to go.
2. **OPTIMIZE with Z-order by ``player_id``** on the event tables (bronze and silver events,
   ``gold.player_daily``). Streaming appends leave many small files per ``event_date``;
   compaction makes one or a few per partition, and Z-ordering by player lets a player's
   reads (training sets, erasure, support look-ups) skip most of them by file statistics.
   Z-order rather than liquid clustering: the tables are already partitioned by
   ``event_date`` (which retention and date-pruned MERGEs rely on), and Delta does not allow
   clustering on a partitioned table. Partitions already in one file are skipped, so a daily
   run rewrites only the recent days that received appends.
3. **VACUUM** every lake table, keeping files referenced by any version of the last
   ``upkeep.vacuum_retain_hours`` (time travel and running readers need them). Only VACUUM
   frees the storage of what retention and OPTIMIZE removed from the log.
4. **S3 lifecycle** (lake root ``s3a://`` only): the bronze prefix moves to STANDARD_IA after
   ``bronze_to_ia_days`` and to GLACIER after ``bronze_to_glacier_days``, as one rule merged by
   ID into the bucket's existing rules (the stack's template uses the same ID), written only
   when it differs, so re-running changes nothing.
5. **Idle profiles** (``online_store.idle_expiry_days``): the embedded store's rows of players
   idle past the expiry are deleted (reads already skip them; DynamoDB's TTL deletes its own).

Run it:

    PYSPARK_PYTHON=.venv/bin/python .venv/bin/spark-submit --jars "$(ls jvm/jars/*.jar | paste -sd, -)" \\
        pipelines/maintain.py --env local --workdir ./var
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from features.config import Settings, UpkeepConfig
from features.contract import now_ms
from features.definitions import FEATURE_SETS
from features.online import open_online_store
from pipelines import bronze, gold, silver
from pipelines.entrypoint import job_main
from pipelines.lake import is_delta_table
from pipelines.session import table_path

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ZORDER_COLUMN = "player_id"
OPTIMIZED_TABLES = (bronze.EVENTS_TABLE, silver.EVENTS_TABLE, gold.DAILY_TABLE)
"""Tables compacted and Z-ordered: the ones streaming appends fragment and readers filter by player."""
VACUUMED_TABLES = (
    bronze.EVENTS_TABLE,
    bronze.DEAD_LETTER_TABLE,
    silver.EVENTS_TABLE,
    silver.QUARANTINE_TABLE,
    gold.DAILY_TABLE,
    *(fs.table for fs in FEATURE_SETS.values()),
)
"""Every lake table: gold's full overwrites leave a whole table of unreferenced files per run."""
RETENTION_COLUMN = "event_date"
LIFECYCLE_RULE_ID = "bronze-to-colder-storage"
"""The same ID as the rule of ``infra/template.yaml``, so the job and the stack own one rule."""


def retention_cutoff(today: date, max_age_days: int) -> date:
    """The first ``event_date`` kept: partitions before it are older than ``max_age_days``."""
    return today - timedelta(days=max_age_days)


def delete_older_than(spark: SparkSession, path: str, cutoff: date) -> int:
    """Delete rows with ``event_date`` before ``cutoff`` from the table at ``path``; rows deleted.

    The predicate names the partition column only, so Delta drops whole files from the log
    without reading or rewriting any; the count comes from the DELETE commit's own metrics.
    """
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    table = DeltaTable.forPath(spark, path)
    partitions = table.detail().select("partitionColumns").first()[0]
    if RETENTION_COLUMN not in partitions:
        raise ValueError(
            f"the table at {path} is not partitioned by {RETENTION_COLUMN} (partitions: {list(partitions)}): "
            "a retention delete would rewrite its files; remove it from upkeep.retention_days"
        )
    before = _version(table)
    table.delete(F.col(RETENTION_COLUMN) < F.lit(cutoff))
    return _metric_since(table, before, "DELETE", "numDeletedRows")


def optimize(spark: SparkSession, path: str) -> dict[str, int]:
    """Compact the table at ``path`` and Z-order it by ``player_id``; active files before and after."""
    from delta.tables import DeltaTable

    table = DeltaTable.forPath(spark, path)
    before = _file_count(table)
    table.optimize().executeZOrderBy(ZORDER_COLUMN)
    return {"files_before": before, "files_after": _file_count(table)}


def vacuum(spark: SparkSession, path: str, retain_hours: float) -> int:
    """Delete files no version of the last ``retain_hours`` references; how many were deleted.

    Delta refuses a window under its 168-hour safety check unless
    ``spark.databricks.delta.retentionDurationCheck.enabled`` is false: a shorter window can
    delete files that a running reader or a stream's next batch still needs.
    """
    from delta.tables import DeltaTable

    table = DeltaTable.forPath(spark, path)
    before = _version(table)
    table.vacuum(retain_hours)
    return _metric_since(table, before, "VACUUM END", "numDeletedFiles")


def _version(table: Any) -> int:
    return int(table.history(1).select("version").first()[0])


def _file_count(table: Any) -> int:
    return int(table.detail().select("numFiles").first()[0])


def _metric_since(table: Any, version: int, operation: str, key: str) -> int:
    rows = table.history().where(f"version > {int(version)} AND operation = '{operation}'").collect()
    return sum(int((r["operationMetrics"] or {}).get(key, 0)) for r in rows)


def lifecycle_rule(lake_prefix: str, upkeep: UpkeepConfig) -> dict[str, Any]:
    """The bronze tiering rule for objects under ``{lake_prefix}bronze/``."""
    return {
        "ID": LIFECYCLE_RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": f"{lake_prefix}bronze/"},
        "Transitions": [
            {"Days": upkeep.bronze_to_ia_days, "StorageClass": "STANDARD_IA"},
            {"Days": upkeep.bronze_to_glacier_days, "StorageClass": "GLACIER"},
        ],
    }


def split_s3a(uri: str) -> tuple[str, str]:
    """``(bucket, key prefix ending in '/' or empty)`` of an ``s3a://bucket/prefix`` URI."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3a" or not parsed.netloc:
        raise ValueError(f"expected an s3a://bucket/prefix URI, got {uri!r}")
    prefix = parsed.path.strip("/")
    return parsed.netloc, f"{prefix}/" if prefix else ""


def apply_lifecycle(s3: Any, bucket: str, rule: dict[str, Any]) -> bool:
    """Merge ``rule`` by ID into ``bucket``'s lifecycle rules; True when the bucket changed.

    Other rules (another team's, or expiry of temporary prefixes) are kept as they are; the
    configuration is written only when this rule is missing or differs.
    """
    from botocore.exceptions import ClientError

    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchLifecycleConfiguration":
            raise
        rules = []
    current = next((r for r in rules if r.get("ID") == rule["ID"]), None)
    if current is not None and _same_rule(current, rule):
        return False
    merged = [r for r in rules if r.get("ID") != rule["ID"]] + [rule]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": merged})
    return True


def _same_rule(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    def transitions(r: dict[str, Any]) -> list[tuple[int, str]]:
        return sorted((int(t["Days"]), t["StorageClass"]) for t in r.get("Transitions", []))

    return (
        current.get("Status") == wanted["Status"]
        and current.get("Filter", {}).get("Prefix") == wanted["Filter"]["Prefix"]
        and transitions(current) == transitions(wanted)
        and not current.get("Expiration")
        and not current.get("NoncurrentVersionTransitions")
    )


def lake_lifecycle(settings: Settings) -> dict[str, Any]:
    """Apply the bronze tiering rule to the lake's bucket; skipped for a lake on local disk."""
    root = settings.lake.root
    if not root.startswith("s3a://"):
        return {"applied": False, "reason": f"lake.root {root} is not on S3"}
    import boto3

    bucket, prefix = split_s3a(root)
    s3 = boto3.client("s3", region_name=settings.lake.region, endpoint_url=settings.lake.endpoint_url)
    changed = apply_lifecycle(s3, bucket, lifecycle_rule(prefix, settings.upkeep))
    return {"applied": True, "bucket": bucket, "prefix": f"{prefix}bronze/", "changed": changed}


def run(spark: SparkSession, settings: Settings, today: date | None = None) -> dict:
    """Retention, OPTIMIZE, VACUUM and lifecycle once; what each did, per table.

    ``today`` (default: the UTC date now) anchors the retention cutoffs.
    """
    upkeep = settings.upkeep
    today = today or datetime.now(UTC).date()
    paths = {name: table_path(settings, name) for name in VACUUMED_TABLES}
    present = {name: path for name, path in paths.items() if is_delta_table(spark, path)}
    retention: dict[str, dict[str, Any]] = {}
    for name, days in upkeep.retention_days.items():
        if name not in present:
            continue
        cutoff = retention_cutoff(today, days)
        deleted = delete_older_than(spark, present[name], cutoff)
        retention[name] = {"cutoff": cutoff.isoformat(), "rows_deleted": deleted}
    optimized = {name: optimize(spark, present[name]) for name in OPTIMIZED_TABLES if name in present}
    vacuumed = {
        name: {"files_removed": vacuum(spark, path, upkeep.vacuum_retain_hours)} for name, path in present.items()
    }
    return {
        "retention": retention,
        "optimize": optimized,
        "vacuum": vacuumed,
        "lifecycle": lake_lifecycle(settings),
        "profiles_expired": sweep_idle_profiles(settings),
        "absent": sorted(set(paths) - set(present)),
    }


def sweep_idle_profiles(settings: Settings, at_ms: int | None = None) -> int:
    """Delete the online store's profiles of players idle past ``idle_expiry_days`` as of
    ``at_ms`` (default: now); how many."""
    if settings.online_store.idle_expiry_days is None:
        return 0
    with open_online_store(settings.online_store) as store:
        return store.sweep_expired(now_ms() if at_ms is None else at_ms)


def main(argv: list[str] | None = None) -> int:
    return job_main(run, "maintain", argv)


if __name__ == "__main__":
    raise SystemExit(main())
