"""What the analysts' notebooks (``notebooks/``) need to run unchanged on Databricks and locally.

On Databricks ``spark`` is predefined and the lake's tables are in the workspace's metastore,
so :func:`spark_session` just returns the active session. Locally it builds the project's
session (``pipelines.session.get_spark``) for ``$PLAYERPULSE_ENV`` / ``$PLAYERPULSE_WORKDIR``
and registers the lake's tables by name, so the same ``spark.table("silver.player_events")``
works in both places. :func:`mlflow_experiment` points MLflow at the configured tracking
server the way training does and names the experiment the training runs are in.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from features.config import Settings, load_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

WORKDIR_VAR = "PLAYERPULSE_WORKDIR"


def notebook_settings() -> Settings:
    """Settings for ``$PLAYERPULSE_ENV`` (default local) with ``$PLAYERPULSE_WORKDIR`` (default ./var)."""
    return load_settings(None, os.environ.get(WORKDIR_VAR) or None)


def spark_session() -> SparkSession:
    """The active session if there is one (Databricks, a job), else the local one over the lake."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    from pipelines.session import get_spark, register_tables

    settings = notebook_settings()
    spark = get_spark(settings, app_name="playerpulse-notebook")
    register_tables(spark, settings)
    return spark


def mlflow_experiment() -> str:
    """Point MLflow at ``settings.mlflow`` (as training does); the name of the training experiment."""
    from training.registry import tracking_client

    settings = notebook_settings()
    tracking_client(settings)
    return settings.mlflow.experiment
