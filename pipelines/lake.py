"""Small facts about Delta tables in the lake that several jobs need: existence, version, rows committed.

Jobs count the rows they wrote from Delta's own commit metrics rather than by re-reading
tables, so the numbers are exact per commit and cost no scan.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from features.config import Settings
from features.errors import TableNotFound
from pipelines.session import table_path

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# Delta's operationMetrics key for "rows added" by each kind of commit a job makes.
_ADDED_ROWS = {
    "WRITE": "numOutputRows",
    "CREATE OR REPLACE TABLE AS SELECT": "numOutputRows",
    "STREAMING UPDATE": "numOutputRows",
    "MERGE": "numTargetRowsInserted",
}


def is_delta_table(spark: SparkSession, path: str) -> bool:
    from delta.tables import DeltaTable

    return DeltaTable.isDeltaTable(spark, path)


def table_version(spark: SparkSession, path: str) -> int:
    """Latest committed version of the table at ``path``; -1 when there is no table yet."""
    from delta.tables import DeltaTable

    if not is_delta_table(spark, path):
        return -1
    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])


def rows_added_since(spark: SparkSession, path: str, version: int, user_metadata: str | None = None) -> int:
    """Rows that commits after ``version`` added (optionally only commits tagged ``user_metadata``)."""
    from delta.tables import DeltaTable

    if not is_delta_table(spark, path):
        return 0
    history = DeltaTable.forPath(spark, path).history().where(f"version > {int(version)}")
    total = 0
    for row in history.select("operation", "operationMetrics", "userMetadata").collect():
        if user_metadata is not None and row["userMetadata"] != user_metadata:
            continue
        key = _ADDED_ROWS.get(row["operation"])
        if key and row["operationMetrics"]:
            total += int(row["operationMetrics"].get(key, 0))
    return total


def read_table(spark: SparkSession, settings: Settings, name: str, produced_by: str) -> DataFrame:
    """The Delta table ``name`` of the lake, or a clear error naming the job that writes it."""
    path = table_path(settings, name)
    if not is_delta_table(spark, path):
        raise TableNotFound(f"{name} does not exist at {path}: run the {produced_by} job first")
    return spark.read.format("delta").load(path)


def job_tag(job: str, run_id: str) -> str:
    """A commit's ``userMetadata``: which job and which run made it, as JSON."""
    return json.dumps({"job": job, "run": run_id}, sort_keys=True)
