"""The command line every Spark job module shares: ``--env``/``--workdir`` in, metrics JSON out.

Kept apart from the jobs so that each ``main`` is one line and ``spark-submit FILE.py`` and the
``playerpulse pipeline JOB`` command behave the same: settings are validated before any JVM
starts, deliberate failures print their message (no stack trace) and exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from features.config import Settings, load_settings
from features.errors import PlayerPulseError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

JobRun = Callable[["SparkSession", Settings], dict]


def job_main(run: JobRun, job: str, argv: list[str] | None = None) -> int:
    """Parse arguments, build the session, run the job, print its metrics; the exit code."""
    parser = argparse.ArgumentParser(prog=f"pipelines.{job}", description=f"Run the {job} job once.")
    parser.add_argument("--env", default=None, help="configuration name: conf/<env>.yaml (default: local)")
    parser.add_argument("--workdir", default=None, help="work folder overriding the configuration's")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.env, args.workdir)
    except PlayerPulseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    from pipelines.session import get_spark

    spark = get_spark(settings, app_name=f"playerpulse-{job}")
    try:
        metrics = run(spark, settings)
    except PlayerPulseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        spark.stop()
    print(json.dumps({"job": job, **metrics}, sort_keys=True, default=str))
    return 0
