"""The daily upkeep job: old partitions deleted, small files compacted, unreferenced files vacuumed,
bronze tiered on S3, and the job kept out of the lake pass."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from pathlib import Path

import boto3
import pytest
from pydantic import ValidationError

from features.config import Settings, UpkeepConfig, load_settings
from pipelines import jobs, maintain
from pipelines.session import table_path

TODAY = date(2027, 3, 1)
DAYS_AGO = (400, 366, 365, 1)
"""event_date partitions of the test lake, in days before TODAY; the bronze maximum age is 365."""
APPENDS = 3
FILES_PER_APPEND = 2
ROWS_PER_DAY_PER_APPEND = 10


def _write_events(spark, path: str) -> None:
    """Bronze-shaped rows appended the way streaming micro-batches land: several small files per day."""
    for _ in range(APPENDS):
        rows = [
            (str(uuid.uuid4()), f"p{i % 7}", "demo", "session_start", TODAY - timedelta(days=ago))
            for ago in DAYS_AGO
            for i in range(ROWS_PER_DAY_PER_APPEND)
        ]
        frame = spark.createDataFrame(
            rows, "event_id STRING, player_id STRING, game_id STRING, event_type STRING, event_date DATE"
        )
        frame.repartition(FILES_PER_APPEND).write.format("delta").mode("append").partitionBy("event_date").save(path)


@pytest.fixture(scope="module")
def maintained(spark, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict]:
    """A lake with bronze events only, before and after one run of the upkeep job."""
    base = load_settings("local", tmp_path_factory.mktemp("maintain") / "var")
    settings = base.model_copy(update={"upkeep": UpkeepConfig(retention_days={"bronze.player_events": 365})})
    _write_events(spark, table_path(settings, "bronze.player_events"))
    return settings, maintain.run(spark, settings, today=TODAY)


def _events(spark, settings: Settings):
    return spark.read.format("delta").load(table_path(settings, "bronze.player_events"))


@pytest.mark.spark
def test_retention_deletes_exactly_the_days_older_than_the_maximum_age(spark, maintained):
    settings, metrics = maintained
    days = sorted(r.event_date for r in _events(spark, settings).select("event_date").distinct().collect())

    assert days == [TODAY - timedelta(days=365), TODAY - timedelta(days=1)]
    assert metrics["retention"]["bronze.player_events"] == {
        "cutoff": (TODAY - timedelta(days=365)).isoformat(),
        "rows_deleted": 2 * APPENDS * ROWS_PER_DAY_PER_APPEND,
    }


@pytest.mark.spark
def test_optimize_leaves_fewer_files_per_day_with_the_same_rows(spark, maintained):
    settings, metrics = maintained
    kept_days = 2

    assert metrics["optimize"]["bronze.player_events"] == {
        "files_before": kept_days * APPENDS * FILES_PER_APPEND,
        "files_after": kept_days,
    }
    assert _events(spark, settings).count() == kept_days * APPENDS * ROWS_PER_DAY_PER_APPEND


@pytest.mark.spark
def test_vacuum_within_the_default_window_keeps_the_files_just_removed(maintained):
    settings, metrics = maintained
    files = list(Path(table_path(settings, "bronze.player_events")).rglob("*.parquet"))

    assert metrics["vacuum"]["bronze.player_events"] == {"files_removed": 0}
    assert len(files) == len(DAYS_AGO) * APPENDS * FILES_PER_APPEND + 2  # the old small files and the compacted ones


@pytest.mark.spark
def test_tables_not_yet_written_are_reported_absent(maintained):
    _, metrics = maintained

    assert "silver.player_events" in metrics["absent"] and "gold.player_daily" in metrics["absent"]
    assert metrics["lifecycle"]["applied"] is False


@pytest.mark.spark
def test_vacuum_removes_unreferenced_files_older_than_the_window(spark, tmp_path: Path):
    path = str(tmp_path / "events")
    _write_events(spark, path)
    maintain.optimize(spark, path)
    before = len(list(Path(path).rglob("*.parquet")))
    # Only here: Delta refuses a window under 168 hours unless its safety check is off, and a
    # test cannot wait a week for the compacted-away files to age.
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        removed = maintain.vacuum(spark, path, retain_hours=0)
    finally:
        spark.conf.unset("spark.databricks.delta.retentionDurationCheck.enabled")

    assert removed == len(DAYS_AGO) * APPENDS * FILES_PER_APPEND
    assert len(list(Path(path).rglob("*.parquet"))) == before - removed == len(DAYS_AGO)
    assert spark.read.format("delta").load(path).count() == len(DAYS_AGO) * APPENDS * ROWS_PER_DAY_PER_APPEND


def _s3_settings(settings: Settings, endpoint: str, bucket: str, upkeep: UpkeepConfig | None = None) -> Settings:
    lake = settings.lake.model_copy(update={"root": f"s3a://{bucket}/lake", "endpoint_url": endpoint})
    return settings.model_copy(update={"lake": lake, "upkeep": upkeep or settings.upkeep})


def _rules(endpoint: str, bucket: str) -> dict[str, dict]:
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)
    return {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}


def test_lifecycle_moves_bronze_to_colder_storage_and_keeps_other_rules(settings, aws_endpoint):
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=aws_endpoint)
    s3.create_bucket(Bucket=bucket)
    expire_tmp = {"ID": "expire-tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 7}}
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [expire_tmp]})

    result = maintain.lake_lifecycle(_s3_settings(settings, aws_endpoint, bucket))

    assert result == {"applied": True, "bucket": bucket, "prefix": "lake/bronze/", "changed": True}
    rules = _rules(aws_endpoint, bucket)
    assert rules["expire-tmp"]["Expiration"] == {"Days": 7}
    assert rules["bronze-to-colder-storage"]["Filter"] == {"Prefix": "lake/bronze/"}
    assert [(t["Days"], t["StorageClass"]) for t in rules["bronze-to-colder-storage"]["Transitions"]] == [
        (30, "STANDARD_IA"),
        (90, "GLACIER"),
    ]


def test_lifecycle_applied_twice_changes_nothing_the_second_time(settings, aws_endpoint):
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", region_name="us-east-1", endpoint_url=aws_endpoint).create_bucket(Bucket=bucket)
    s3_settings = _s3_settings(settings, aws_endpoint, bucket)

    assert maintain.lake_lifecycle(s3_settings)["changed"] is True
    assert maintain.lake_lifecycle(s3_settings)["changed"] is False
    assert list(_rules(aws_endpoint, bucket)) == ["bronze-to-colder-storage"]


def test_lifecycle_with_new_days_replaces_its_rule_in_place(settings, aws_endpoint):
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", region_name="us-east-1", endpoint_url=aws_endpoint).create_bucket(Bucket=bucket)
    maintain.lake_lifecycle(_s3_settings(settings, aws_endpoint, bucket))
    later = UpkeepConfig(bronze_to_ia_days=60, bronze_to_glacier_days=180)

    assert maintain.lake_lifecycle(_s3_settings(settings, aws_endpoint, bucket, later))["changed"] is True
    rules = _rules(aws_endpoint, bucket)
    assert list(rules) == ["bronze-to-colder-storage"]
    assert [t["Days"] for t in rules["bronze-to-colder-storage"]["Transitions"]] == [60, 180]


def test_glacier_before_infrequent_access_is_refused_at_start_up():
    with pytest.raises(ValidationError, match="must be after bronze_to_ia_days"):
        UpkeepConfig(bronze_to_ia_days=60, bronze_to_glacier_days=45)


def test_bronze_deleted_before_it_could_leave_glacier_is_refused_at_start_up():
    with pytest.raises(ValidationError, match="would move to GLACIER only to be deleted"):
        UpkeepConfig(retention_days={"bronze.player_events": 90}, bronze_to_glacier_days=90)


def test_retention_of_a_table_not_partitioned_by_date_is_refused_at_start_up():
    with pytest.raises(ValidationError, match=r"gold\.player_daily"):
        UpkeepConfig(retention_days={"gold.player_daily": 30})


def test_maintain_is_a_job_of_its_own_and_not_part_of_the_lake_pass():
    assert jobs.JOBS["maintain"] is maintain.run
    assert "maintain" not in jobs.LAKE_PASS
    assert jobs.LAKE_PASS == ("bronze", "silver", "gold")


def test_the_upkeep_sweep_deletes_the_embedded_profiles_of_players_idle_past_the_expiry(tmp_path: Path) -> None:
    from features.config import SqliteOnlineStoreConfig
    from features.contract import now_ms
    from features.online import Profile, open_online_store

    base = load_settings("local", tmp_path / "var")
    store_config = SqliteOnlineStoreConfig(path=base.online_store.path, idle_expiry_days=1)
    settings = base.model_copy(update={"online_store": store_config})
    now, day_ms = now_ms(), 86_400_000
    seen = {"idle": now - day_ms + 2_000, "active": now}
    with open_online_store(store_config) as store:
        store.put(
            [
                Profile(
                    game_id="demo",
                    player_id=p,
                    version=1,
                    as_of=0,
                    features={},
                    state={},
                    timestamps={"received_at": t},
                )
                for p, t in seen.items()
            ]
        )

    assert maintain.sweep_idle_profiles(settings, at_ms=now + 3_000) == 1
    with open_online_store(store_config) as store:
        assert store.count() == 1
