"""What a session gives executors in processes of their own: the code, a Spark home, quiet logs."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from pipelines.executors import (
    code_archive,
    has_remote_executors,
    is_local_cluster,
    local_cluster_home,
    pyspark_home,
)
from pipelines.session import build_settings


@pytest.mark.parametrize(
    ("master", "remote", "local_cluster"),
    [
        ("local", False, False),
        ("local[2]", False, False),
        ("local[*]", False, False),
        ("local-cluster[2,1,1024]", True, True),
        ("spark://10.0.0.1:7077", True, False),
        (None, False, False),
    ],
)
def test_only_masters_with_executor_processes_of_their_own_get_them(master, remote, local_cluster):
    assert (has_remote_executors(master), is_local_cluster(master)) == (remote, local_cluster)


def test_the_code_archive_holds_every_package_the_driver_imports(settings):
    archive = code_archive(settings)

    names = zipfile.ZipFile(archive).namelist()
    for module in ("features/config.py", "pipelines/stream_source.py", "training/train.py", "serving/predict.py"):
        assert module in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert code_archive(settings) == archive  # same code, same name: built once


def test_a_local_cluster_spark_home_lives_in_the_work_folder_and_links_to_pyspark(settings):
    home = local_cluster_home(settings)

    assert home.is_relative_to(Path(settings.workdir).resolve())
    assert (home / "jars").resolve() == pyspark_home() / "jars"
    assert (home / "bin" / "spark-submit").exists()


def test_local_cluster_executors_log_through_the_projects_log4j_settings(settings):
    cluster = settings.model_copy(
        update={"spark": settings.spark.model_copy(update={"master": "local-cluster[2,1,1024]"})}
    )

    assert "log4j2.properties" in build_settings(cluster)["spark.executor.extraJavaOptions"]
    assert "spark.executor.extraJavaOptions" not in build_settings(settings)
