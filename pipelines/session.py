"""The one Spark session factory, for the three places a job runs, chosen by configuration.

- **One machine** (``spark.master: local[N]``, ``conf/local.yaml``): ``local[N]`` with Delta's SQL
  extension and catalog and the jars that ``make jars`` resolved into ``jvm/jars`` (never an Ivy
  download), zstd Parquet, UTC and few shuffle partitions.
- **Off-cluster against a remote lake** (a ``local[N]`` or ``local-cluster[…]`` master with
  ``lake.root`` on ``s3a://``, e.g. ``conf/aws.yaml`` with ``PLAYERPULSE_SPARK_MASTER=local[2]`` on
  a laptop): the same build plus S3A's settings (``s3a_settings``).
- **On a cluster** (``spark.master: null``: Databricks, EMR, or whatever master ``spark-submit``
  was given): the cluster's session. Static settings (jars, SQL extensions, the catalog) are
  fixed once its JVM is up, so they are given to the builder when this process creates the
  session (under ``spark-submit``) and only checked when a session is already active; a missing
  one stops the job naming it. Runtime settings the cluster has not set (S3A, UTC, zstd) are set.

``PLAYERPULSE_AWS_ENDPOINT`` (``lake.endpoint_url``) points S3A at an S3-compatible server with
path-style requests; credentials come from the standard AWS environment variables when they are
set (else S3A's own chain: instance profile, container role). Python workers run
``PYSPARK_PYTHON``, which defaults to this interpreter so executors import the same packages.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from features.config import Settings, conf_dir, repo_root
from features.errors import ConfigError
from pipelines.executors import (
    code_archive,
    executor_java_options,
    has_remote_executors,
    is_local_cluster,
    local_cluster_home,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LAKE_DATABASES = ("bronze", "silver", "gold")

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
S3_DYNAMODB_LOG_STORE = "io.delta.storage.S3DynamoDBLogStore"

STATIC_REQUIREMENTS = {
    "spark.sql.extensions": DELTA_EXTENSION,
    "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
}
"""Static settings every lake job needs, and the value each must contain."""

_UNSET = "\x00unset"


def jars_dir(settings: Settings) -> Path:
    return Path(settings.spark.jars_dir) if settings.spark.jars_dir else repo_root() / "jvm" / "jars"


def local_jars(settings: Settings) -> list[str]:
    folder = jars_dir(settings)
    jars = sorted(str(p) for p in folder.glob("*.jar"))
    if not any("delta-spark" in Path(j).name for j in jars):
        raise ConfigError(f"no Delta jars in {folder}: run `make jars` (Maven resolves jvm/pom.xml into it)")
    return jars


def s3a_settings(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Hadoop ``fs.s3a.*`` settings for the lake: endpoint, region and credentials.

    Empty when nothing is configured (a cluster's instance role and AWS's own endpoint need
    none). Credentials are taken from ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (and
    ``AWS_SESSION_TOKEN``) when set, so executors in other processes use the same identity as
    the driver; Spark redacts them from its UI and logs.
    """
    env = os.environ if environ is None else environ
    lake = settings.lake
    out: dict[str, str] = {}
    if lake.endpoint_url:
        endpoint = urlsplit(lake.endpoint_url)
        out["fs.s3a.endpoint"] = lake.endpoint_url
        out["fs.s3a.path.style.access"] = "true"
        out["fs.s3a.connection.ssl.enabled"] = "false" if endpoint.scheme == "http" else "true"
    region = lake.region or (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") if lake.endpoint_url else None)
    if region:
        out["fs.s3a.endpoint.region"] = region
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        out["fs.s3a.access.key"] = env["AWS_ACCESS_KEY_ID"]
        out["fs.s3a.secret.key"] = env["AWS_SECRET_ACCESS_KEY"]
        if env.get("AWS_SESSION_TOKEN"):
            out["fs.s3a.session.token"] = env["AWS_SESSION_TOKEN"]
            out["fs.s3a.aws.credentials.provider"] = "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"
        else:
            out["fs.s3a.aws.credentials.provider"] = "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
    return out


def log_store_settings(settings: Settings) -> dict[str, str]:
    """Delta's multi-writer S3 log store (``lake.dynamodb_log_store``), or nothing."""
    store = settings.lake.dynamodb_log_store
    if store is None:
        return {}
    return {
        "spark.delta.logStore.s3a.impl": S3_DYNAMODB_LOG_STORE,
        "spark.delta.logStore.s3.impl": S3_DYNAMODB_LOG_STORE,
        "spark.io.delta.storage.S3DynamoDBLogStore.ddb.tableName": store.table_name,
        "spark.io.delta.storage.S3DynamoDBLogStore.ddb.region": store.region,
    }


def runtime_settings(settings: Settings) -> dict[str, str]:
    """Session settings that may still be set on a running session."""
    return {
        "spark.sql.parquet.compression.codec": "zstd",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(settings.spark.shuffle_partitions),
        "spark.sql.adaptive.enabled": "true",
        "spark.databricks.delta.snapshotPartitions": "2",
        # VACUUM lists a table's folders in this many tasks; Spark's default (10,000) made every
        # VACUUM of a small table 10,000 near-empty tasks (minutes on two cores for an erasure)
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(settings.spark.shuffle_partitions),
        **log_store_settings(settings),
        **settings.spark.conf,
    }


def build_settings(settings: Settings) -> dict[str, str]:
    """Every setting of a session this process builds itself (static ones included)."""
    warehouse = Path(settings.workdir) / "spark-warehouse"
    built = {
        **STATIC_REQUIREMENTS,
        "spark.jars": ",".join(local_jars(settings)),
        "spark.default.parallelism": str(settings.spark.shuffle_partitions),
        "spark.driver.memory": settings.spark.driver_memory,
        "spark.driver.extraJavaOptions": (
            f"-Dderby.system.home={warehouse} -Dlog4j2.configurationFile={conf_dir() / 'log4j2.properties'}"
        ),
        "spark.sql.warehouse.dir": str(warehouse),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.streaming.stopGracefullyOnShutdown": "true",
        "spark.python.worker.reuse": "true",
        **{f"spark.hadoop.{k}": v for k, v in s3a_settings(settings).items()},
    }
    if is_local_cluster(settings.spark.master):
        built["spark.executor.extraJavaOptions"] = executor_java_options()
    return {**built, **runtime_settings(settings)}


def missing_static(current: Mapping[str, str]) -> list[str]:
    """The static requirements a running session lacks, each as ``key (needs value)``."""
    return [
        f"{key} (needs {value})"
        for key, value in STATIC_REQUIREMENTS.items()
        if value not in [v.strip() for v in current.get(key, "").split(",")]
    ]


def _prepare_process(settings: Settings) -> None:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if is_local_cluster(settings.spark.master) and not os.environ.get("SPARK_HOME"):
        # the workers launch executors from it and keep their logs under it (pipelines/executors.py)
        os.environ["SPARK_HOME"] = str(local_cluster_home(settings))


def _build(settings: Settings, app_name: str, master: str | None) -> SparkSession:
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    confs = build_settings(settings)
    if master is None:  # spark-submit's --jars / the cluster's libraries own the class path
        confs.pop("spark.jars")
    for key, value in confs.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    if has_remote_executors(master):  # executors import the code this driver runs
        spark.sparkContext.addPyFile(str(code_archive(settings)))
    return spark


def _is_databricks(spark: SparkSession) -> bool:
    """Databricks runtimes have Delta built in, without listing its extension in the settings."""
    return bool(os.environ.get("DATABRICKS_RUNTIME_VERSION")) or (
        spark.conf.get("spark.databricks.clusterUsageTags.sparkVersion", _UNSET) != _UNSET
    )


def _adopt(spark: SparkSession, settings: Settings) -> SparkSession:
    """Check a running session's static settings and set the runtime ones it has not set."""
    if not _is_databricks(spark):
        current = {key: spark.conf.get(key, "") or "" for key in STATIC_REQUIREMENTS}
        missing = missing_static(current)
        if missing:
            raise ConfigError(
                "the running Spark session lacks static settings the lake jobs need, and they can no longer be "
                f"set: {'; '.join(missing)}. Give them to the cluster (EMR: spark-defaults classification; "
                "spark-submit: --conf) together with the Delta jars (--jars or --packages io.delta:delta-spark_…)"
            )
    if settings.lake.dynamodb_log_store is not None:  # refused before any setting of the session changes
        _require_class(spark, S3_DYNAMODB_LOG_STORE, "io.delta:delta-storage-s3-dynamodb")
    for key, value in runtime_settings(settings).items():
        if key in settings.spark.conf or spark.conf.get(key, _UNSET) == _UNSET:
            spark.conf.set(key, value)
    apply_s3a(spark, settings)
    return spark


def apply_s3a(spark: SparkSession, settings: Settings) -> None:
    """Set the lake's ``fs.s3a.*`` settings on a running session (session and Hadoop conf).

    Hadoop caches one S3A filesystem per bucket, built with the settings of its first use: these
    take effect for buckets this JVM has not opened yet (or after ``FileSystem.closeAll``).
    """
    values = s3a_settings(settings)
    for key, value in values.items():
        spark.conf.set(key, value)
    jsc = getattr(spark.sparkContext, "_jsc", None)
    if jsc is not None and values:
        hadoop = jsc.hadoopConfiguration()
        for key, value in values.items():
            hadoop.set(key, value)


def _require_class(spark: SparkSession, name: str, artifact: str) -> None:
    jvm = getattr(spark.sparkContext, "_jvm", None)
    if jvm is None:
        return
    try:
        jvm.java.lang.Class.forName(name, False, jvm.Thread.currentThread().getContextClassLoader())
    except Exception as exc:  # py4j wraps the ClassNotFoundException
        raise ConfigError(
            f"lake.dynamodb_log_store is set but {name} is not on the class path: add the jar {artifact} "
            "(matching the Delta version) to spark.jars or the cluster's libraries"
        ) from exc


def get_spark(settings: Settings, app_name: str = "playerpulse") -> SparkSession:
    """The session for ``settings``: built here for a ``spark.master``, else the cluster's."""
    from pyspark.sql import SparkSession

    _prepare_process(settings)
    if settings.spark.master is not None:
        spark = _build(settings, app_name, settings.spark.master)
        if settings.lake.dynamodb_log_store is not None:
            _require_class(spark, S3_DYNAMODB_LOG_STORE, "io.delta:delta-storage-s3-dynamodb")
        return spark
    active = SparkSession.getActiveSession()
    if active is not None:
        return _adopt(active, settings)
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        raise ConfigError(
            "spark.master is null (use the cluster's session), but no Spark session is running and this process "
            "was not started by spark-submit: run it on the cluster, under spark-submit, or set spark.master "
            "(conf/aws.yaml reads PLAYERPULSE_SPARK_MASTER, e.g. local[2]) to run here against the remote lake"
        )
    return _adopt(_build(settings, app_name, None), settings)


@contextmanager
def job_session(settings: Settings, app_name: str = "playerpulse") -> Iterator[SparkSession]:
    """``get_spark`` for one command, stopping the session afterwards when this call built it.

    Left to the JVM's shutdown hooks, a ``local-cluster`` session's workers see their executors
    die first and launch new ones while the hooks run, until the master gives the application up
    ("failed 30 times"): a screen of errors after a job that succeeded. A session that was running
    already (the cluster's, Databricks, EMR, a test run's shared one) is not this command's to stop.
    """
    from pyspark.sql import SparkSession

    running = SparkSession.getActiveSession() is not None
    spark = get_spark(settings, app_name=app_name)
    try:
        yield spark
    finally:
        if not running:
            spark.stop()


def table_path(settings: Settings, name: str) -> str:
    """Storage location of a lake table ``database.table`` under ``lake.root``."""
    database, _, table = name.partition(".")
    if database not in LAKE_DATABASES or not table:
        raise ValueError(f"lake tables are named database.table with database in {LAKE_DATABASES}, got '{name}'")
    return f"{settings.lake.root.rstrip('/')}/{database}/{table}"


def table_name(settings: Settings, name: str) -> str:
    """The catalog name of lake table ``database.table``: ``catalog.database.table`` with a Unity
    Catalog catalog (``lake.catalog``), else ``database.table`` in the session's catalog."""
    table_path(settings, name)  # the same check of the name
    return f"{settings.lake.catalog}.{name}" if settings.lake.catalog else name


def lake_tables(spark: SparkSession, settings: Settings) -> dict[str, str]:
    """``database.table`` → location of every Delta table under ``lake.root``, listed through
    Hadoop's FileSystem API, so a local folder and ``s3a://`` are listed the same way."""
    jvm = spark.sparkContext._jvm
    hadoop_conf = spark._jsparkSession.sessionState().newHadoopConf()
    found: dict[str, str] = {}
    for database in LAKE_DATABASES:
        folder = jvm.org.apache.hadoop.fs.Path(f"{settings.lake.root.rstrip('/')}/{database}")
        fs = folder.getFileSystem(hadoop_conf)
        if not fs.exists(folder):
            continue
        for status in fs.listStatus(folder):
            child = status.getPath()
            if status.isDirectory() and fs.exists(jvm.org.apache.hadoop.fs.Path(child, "_delta_log")):
                found[f"{database}.{child.getName()}"] = (
                    f"{settings.lake.root.rstrip('/')}/{database}/{child.getName()}"
                )
    return dict(sorted(found.items()))


def register_tables(spark: SparkSession, settings: Settings) -> list[str]:
    """Make every Delta table under ``lake.root`` queryable by name (``bronze.player_events``, or
    ``catalog.bronze.player_events`` with ``lake.catalog``), as external tables over the lake.

    The lake is the source of truth; the catalog is rebuilt from it at session start, so any
    session, notebook or ``spark-sql`` shell over the same lake sees the same names.
    """
    names = []
    prefix = f"{settings.lake.catalog}." if settings.lake.catalog else ""
    for database in LAKE_DATABASES:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {prefix}{database}")
    for name, location in lake_tables(spark, settings).items():
        qualified = table_name(settings, name)
        if spark.catalog.tableExists(qualified) and not _same_place(_location_of(spark, qualified), location):
            spark.sql(f"DROP TABLE {qualified}")  # a name left over from another lake: external, data stays
        spark.sql(f"CREATE TABLE IF NOT EXISTS {qualified} USING DELTA LOCATION '{location}'")
        names.append(qualified)
    return names


def _location_of(spark: SparkSession, name: str) -> str:
    return str(spark.sql(f"DESCRIBE DETAIL {name}").first()["location"])


def _same_place(a: str, b: str) -> bool:
    def norm(x: str) -> str:
        x = x.rstrip("/")
        return x[len("file:") :].lstrip("/") if x.startswith("file:") else x.lstrip("/") if x.startswith("/") else x

    return norm(a) == norm(b)
