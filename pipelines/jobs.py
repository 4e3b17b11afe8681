"""The batch lakehouse jobs by name, in the order data flows through them.

``playerpulse pipeline JOB`` and schedulers look jobs up here; ``run_all`` is one pass of the
whole lake (``LAKE_PASS``: bronze → silver → gold), each job reading only what the previous one
committed. ``maintain`` (retention, OPTIMIZE, VACUUM, S3 lifecycle) is a separate daily job and
not part of that pass: its rewrites would compete with ingestion for the same cores.
``monitoring`` lands latency samples and the prediction log in ``gold.latency`` and
``gold.predictions``; it reads no lake table, so it runs on its own schedule too.

Run them all:

    PYSPARK_PYTHON=.venv/bin/python .venv/bin/spark-submit --jars "$(ls jvm/jars/*.jar | paste -sd, -)" \\
        pipelines/jobs.py --env local --workdir ./var
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from features.config import Settings
from pipelines import bronze, gold, maintain, monitoring, silver
from pipelines.entrypoint import job_main

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

JOBS: dict[str, Callable[[SparkSession, Settings], dict]] = {
    "bronze": bronze.run,
    "silver": silver.run,
    "gold": gold.run,
    "maintain": maintain.run,
    "monitoring": monitoring.run,
}
LAKE_PASS = ("bronze", "silver", "gold")
"""The jobs of one pass of the lake, in the order data flows through them."""


def run_all(spark: SparkSession, settings: Settings) -> dict:
    """Every job once, in order; their metrics by job name. A failing job stops the run."""
    return {name: JOBS[name](spark, settings) for name in LAKE_PASS}


def main(argv: list[str] | None = None) -> int:
    return job_main(run_all, "all", argv)


if __name__ == "__main__":
    raise SystemExit(main())
