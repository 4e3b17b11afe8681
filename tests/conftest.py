"""Shared fixtures: one Spark session per test run, a fresh work folder per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from features.config import Settings, load_settings

pytest_plugins = ["aws_server"]

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")


@pytest.fixture(autouse=True)
def _mlflow_environment_restored():
    """MLflow's ``set_tracking_uri``/``set_registry_uri`` export to the environment; a test
    that calls them must not point the next test's profile at its database."""
    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_S3_ENDPOINT_URL")
    before = {name: os.environ.get(name) for name in names}
    yield
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded (local) settings whose whole state lives under this test's tmp_path."""
    return load_settings("local", tmp_path / "var")


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory, aws_endpoint: str):
    """The one Spark session of the run (local[2], 2 shuffle partitions, UI off, Delta on).

    It starts after the local AWS server, so its JVM and Python workers inherit the dummy AWS
    credentials (never a developer's own) for the tests whose jobs read Kinesis or write S3;
    those tests point S3A at the server at runtime (``pipelines.session.apply_s3a``).
    """
    from pipelines.session import get_spark

    base = load_settings("local", tmp_path_factory.mktemp("spark-session"))
    session = get_spark(base, app_name="playerpulse-tests")
    yield session
    session.stop()
