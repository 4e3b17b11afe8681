"""The session factory's settings as data: S3A from the endpoint, static checks, table names."""

from __future__ import annotations

import pytest

from features.config import DynamoDBLogStoreConfig, Settings, conf_dir, load_settings
from features.errors import ConfigError
from pipelines.session import (
    DELTA_CATALOG,
    DELTA_EXTENSION,
    build_settings,
    get_spark,
    log_store_settings,
    missing_static,
    s3a_settings,
    table_name,
)

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}


def with_lake(settings: Settings, **lake: object) -> Settings:
    return settings.model_copy(update={"lake": settings.lake.model_copy(update=lake)})


def test_an_http_endpoint_gives_path_style_plain_http_s3a(settings):
    lake = with_lake(settings, endpoint_url="http://127.0.0.1:5055", region="eu-west-1")

    got = s3a_settings(lake, environ={})

    assert got == {
        "fs.s3a.endpoint": "http://127.0.0.1:5055",
        "fs.s3a.path.style.access": "true",
        "fs.s3a.connection.ssl.enabled": "false",
        "fs.s3a.endpoint.region": "eu-west-1",
    }


def test_without_endpoint_or_credentials_s3a_is_left_to_the_cluster(settings):
    assert s3a_settings(settings, environ={}) == {}


def test_credentials_come_from_the_standard_aws_variables(settings):
    got = s3a_settings(settings, environ={**CREDENTIALS, "AWS_SESSION_TOKEN": "tok"})

    assert got["fs.s3a.access.key"] == "AKIDEXAMPLE" and got["fs.s3a.secret.key"] == "secret"
    assert got["fs.s3a.session.token"] == "tok"
    assert got["fs.s3a.aws.credentials.provider"].endswith("TemporaryAWSCredentialsProvider")


def test_a_built_session_carries_delta_and_s3a_as_static_settings(settings, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    built = build_settings(with_lake(settings, endpoint_url="http://127.0.0.1:5055"))

    assert built["spark.sql.extensions"] == DELTA_EXTENSION
    assert built["spark.sql.catalog.spark_catalog"] == DELTA_CATALOG
    assert built["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:5055"
    assert built["spark.hadoop.fs.s3a.access.key"] == "AKIDEXAMPLE"
    assert "delta-spark" in built["spark.jars"]


def test_a_running_session_without_the_delta_extension_is_named_as_missing():
    missing = missing_static({"spark.sql.extensions": "com.example.Other", "spark.sql.catalog.spark_catalog": ""})

    assert missing == [
        f"spark.sql.extensions (needs {DELTA_EXTENSION})",
        f"spark.sql.catalog.spark_catalog (needs {DELTA_CATALOG})",
    ]


def test_the_delta_extension_among_others_is_enough():
    current = {
        "spark.sql.extensions": f"com.example.Other, {DELTA_EXTENSION}",
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
    }

    assert missing_static(current) == []


def test_the_multi_writer_log_store_is_configured_from_one_setting(settings):
    lake = with_lake(settings, dynamodb_log_store=DynamoDBLogStoreConfig(table_name="delta_log", region="eu-west-1"))

    got = log_store_settings(lake)

    assert got["spark.delta.logStore.s3a.impl"] == "io.delta.storage.S3DynamoDBLogStore"
    assert got["spark.io.delta.storage.S3DynamoDBLogStore.ddb.tableName"] == "delta_log"
    assert got["spark.io.delta.storage.S3DynamoDBLogStore.ddb.region"] == "eu-west-1"
    assert log_store_settings(settings) == {}


def test_unity_catalog_names_have_three_parts(settings):
    assert table_name(settings, "gold.player_daily") == "gold.player_daily"
    assert table_name(with_lake(settings, catalog="main"), "gold.player_daily") == "main.gold.player_daily"


def test_a_catalog_name_is_validated_at_start_up(tmp_path, monkeypatch):
    conf = tmp_path / "conf"
    conf.mkdir()
    text = (
        (conf_dir() / "local.yaml")
        .read_text()
        .replace('root: "{workdir}/lake"', 'root: "{workdir}/lake"\n  catalog: "main; DROP"')
    )
    (conf / "local.yaml").write_text(text)
    monkeypatch.setenv("PLAYERPULSE_CONF_DIR", str(conf))

    with pytest.raises(ConfigError, match=r"lake\.catalog"):
        load_settings("local", tmp_path / "var")


def test_aws_yaml_runs_off_cluster_when_a_master_is_given(monkeypatch, tmp_path):
    monkeypatch.setenv("PLAYERPULSE_BUCKET", "pp-lake")
    monkeypatch.setenv("PLAYERPULSE_INGEST_KEY_SHA256", "1" * 64)
    monkeypatch.setenv("PLAYERPULSE_SERVE_KEY_SHA256", "2" * 64)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/m.db")
    monkeypatch.setenv("PLAYERPULSE_AWS_ENDPOINT", "http://127.0.0.1:9")

    monkeypatch.setenv("PLAYERPULSE_SPARK_MASTER", "local[2]")
    assert load_settings("aws", tmp_path / "var").spark.master == "local[2]"
    monkeypatch.delenv("PLAYERPULSE_SPARK_MASTER")
    aws = load_settings("aws", tmp_path / "var")
    assert aws.spark.master is None
    assert aws.lake.endpoint_url == aws.mlflow.s3_endpoint_url == "http://127.0.0.1:9"


def test_a_null_master_without_a_session_or_spark_submit_says_what_to_do(settings, monkeypatch):
    from pyspark.sql import SparkSession

    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    monkeypatch.setattr(SparkSession, "getActiveSession", classmethod(lambda cls: None))
    cluster = settings.model_copy(update={"spark": settings.spark.model_copy(update={"master": None})})

    with pytest.raises(ConfigError, match="PLAYERPULSE_SPARK_MASTER"):
        get_spark(cluster)


@pytest.mark.spark
def test_a_session_without_the_log_store_jar_stops_naming_the_jar(spark, settings):
    from pipelines.session import S3_DYNAMODB_LOG_STORE, _adopt

    lake = with_lake(settings, dynamodb_log_store=DynamoDBLogStoreConfig(table_name="delta_log"))
    cluster = lake.model_copy(update={"spark": lake.spark.model_copy(update={"master": None})})

    with pytest.raises(ConfigError, match=r"io\.delta:delta-storage-s3-dynamodb") as refused:
        _adopt(spark, cluster)
    assert S3_DYNAMODB_LOG_STORE in str(refused.value)
