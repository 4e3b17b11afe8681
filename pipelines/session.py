"""The one Spark session factory: local with Delta by default, the cluster's own elsewhere.

On one machine it builds ``local[N]`` with Delta's SQL extension and catalog, the jars that
``make jars`` resolved into ``jvm/jars`` (never an Ivy download), zstd Parquet, UTC and few
shuffle partitions. On Databricks or EMR (``spark.master: null``) it takes the active session,
whose jars and settings the cluster owns.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from features.config import Settings, conf_dir, repo_root
from features.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LAKE_DATABASES = ("bronze", "silver", "gold")


def jars_dir(settings: Settings) -> Path:
    return Path(settings.spark.jars_dir) if settings.spark.jars_dir else repo_root() / "jvm" / "jars"


def local_jars(settings: Settings) -> list[str]:
    folder = jars_dir(settings)
    jars = sorted(str(p) for p in folder.glob("*.jar"))
    if not any("delta-spark" in Path(j).name for j in jars):
        raise ConfigError(f"no Delta jars in {folder}: run `make jars` (Maven resolves jvm/pom.xml into it)")
    return jars


def get_spark(settings: Settings, app_name: str = "playerpulse") -> SparkSession:
    """The session for ``settings``: built locally, or the cluster's when ``spark.master`` is null."""
    from pyspark.sql import SparkSession

    if settings.spark.master is None:
        active = SparkSession.getActiveSession()
        spark = active or SparkSession.builder.appName(app_name).getOrCreate()
        for key, value in settings.spark.conf.items():
            spark.conf.set(key, value)
        return spark

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    warehouse = Path(settings.workdir) / "spark-warehouse"
    builder = (
        SparkSession.builder.master(settings.spark.master)
        .appName(app_name)
        .config("spark.jars", ",".join(local_jars(settings)))
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.sql.parquet.compression.codec", "zstd")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(settings.spark.shuffle_partitions))
        .config("spark.default.parallelism", str(settings.spark.shuffle_partitions))
        .config("spark.driver.memory", settings.spark.driver_memory)
        .config(
            "spark.driver.extraJavaOptions",
            f"-Dderby.system.home={warehouse} -Dlog4j2.configurationFile={conf_dir() / 'log4j2.properties'}",
        )
        .config("spark.sql.warehouse.dir", str(warehouse))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.streaming.stopGracefullyOnShutdown", "true")
        .config("spark.databricks.delta.snapshotPartitions", "2")
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.python.worker.reuse", "true")
    )
    for key, value in settings.spark.conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def table_path(settings: Settings, name: str) -> str:
    """Storage location of a lake table ``database.table`` under ``lake.root``."""
    database, _, table = name.partition(".")
    if database not in LAKE_DATABASES or not table:
        raise ValueError(f"lake tables are named database.table with database in {LAKE_DATABASES}, got '{name}'")
    return f"{settings.lake.root.rstrip('/')}/{database}/{table}"


def register_tables(spark: SparkSession, settings: Settings) -> list[str]:
    """Make every Delta table under ``lake.root`` queryable by name (``bronze.player_events``).

    The lake is the source of truth; the catalog is rebuilt from it at session start, so any
    session, notebook or ``spark-sql`` shell over the same lake sees the same names.
    """
    from delta.tables import DeltaTable

    names = []
    for database in LAKE_DATABASES:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
        root = Path(settings.lake.root) / database
        if not root.is_dir():
            continue
        for child in sorted(root.iterdir()):
            if (child / "_delta_log").is_dir() and DeltaTable.isDeltaTable(spark, str(child)):
                name = f"{database}.{child.name}"
                spark.sql(f"CREATE TABLE IF NOT EXISTS {name} USING DELTA LOCATION '{child}'")
                names.append(name)
    return names
