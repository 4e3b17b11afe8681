"""Every lake job with the lake root on ``s3a://BUCKET/lake``, against moto_server over HTTP.

The shipped ``conf/aws.yaml`` with ``spark.master`` null takes the running session (the test
run's one, as a cluster's would be) and points S3A at the server: bronze, silver and gold are
written to the bucket, read back by name and by version, the quality reports land in the bucket,
and a training run keeps its MLflow artifacts there too.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from cloud_support import cloud_settings, learnable_history, midnight_today
from event_factory import put_events

from features.config import Settings
from pipelines.jobs import run_all
from pipelines.session import get_spark, register_tables, table_path

PLAYERS, DAYS = 40, 16


def objects(settings: Settings, prefix: str) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=settings.lake.endpoint_url, region_name="us-east-1")
    bucket = settings.lake.root.split("/")[2]
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.fixture(scope="module")
def s3_lake(spark: Any, aws_endpoint: str, tmp_path_factory: pytest.TempPathFactory):
    """The aws profile's lake after one bronze → silver → gold pass over a small world."""
    with cloud_settings(aws_endpoint, tmp_path_factory.mktemp("s3-lake")) as (settings, _keys):
        history = learnable_history(PLAYERS, DAYS, midnight_today())
        put_events(settings, history)
        session = get_spark(settings)
        metrics = run_all(session, settings)
        yield settings, session, metrics, history


def test_the_lake_root_is_on_s3a(s3_lake):
    settings, *_ = s3_lake

    assert settings.lake.root.startswith("s3a://") and table_path(settings, "gold.player_daily").startswith("s3a://")
    keys = objects(settings, "lake/")
    for table in ("bronze/player_events", "silver/player_events", "gold/player_daily", "gold/player_features_v1"):
        assert any(k.startswith(f"lake/{table}/_delta_log/") for k in keys), table


def test_every_event_reaches_silver_and_is_read_back_by_name(s3_lake):
    settings, spark, metrics, history = s3_lake

    names = register_tables(spark, settings)

    assert {"bronze.player_events", "silver.player_events", "gold.player_daily"} <= set(names)
    assert metrics["bronze"]["bronze.player_events"] == len(history)
    assert spark.sql("SELECT count(*) FROM silver.player_events").first()[0] == len(history)
    players = spark.sql("SELECT count(DISTINCT player_id) FROM gold.player_daily").first()[0]
    assert players == PLAYERS


def test_an_earlier_version_is_read_by_version_as_of(s3_lake):
    from delta.tables import DeltaTable

    settings, spark, _metrics, history = s3_lake
    path = table_path(settings, "silver.player_events")
    latest = DeltaTable.forPath(spark, path).history(1).first()["version"]

    created = spark.read.format("delta").option("versionAsOf", 0).load(path).count()
    merged = spark.read.format("delta").option("versionAsOf", latest).load(path).count()

    assert latest >= 1
    assert (created, merged) == (0, len(history))


def test_quality_reports_and_checkpoints_are_in_the_bucket(s3_lake):
    settings, *_ = s3_lake

    assert any(k.startswith("reports/quality/silver.player_events_") for k in objects(settings, "reports/"))
    assert any(k.startswith("checkpoints/bronze_events/") for k in objects(settings, "checkpoints/"))


def test_a_training_run_keeps_its_artifacts_in_the_bucket(s3_lake):
    from training.train import train_model

    settings, spark, *_ = s3_lake

    result = train_model(spark, settings, "store_offer")

    assert result.version == 1
    assert result.metrics["test_rows"] > 0
    artifacts = objects(settings, "mlflow/")
    assert any(k.endswith("holdout/holdout.parquet") for k in artifacts)
    assert any(k.endswith("model.ubj") or k.endswith("model.xgb") or k.endswith("MLmodel") for k in artifacts)
