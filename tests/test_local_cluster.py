"""Nothing in the lake pass depends on driver-local state: executors in processes of their own
(``local-cluster[2,1,1024]``) write the same bronze, silver and gold tables as ``local[2]``.

The same input (a small learnable world, duplicate sends, an event too late for silver, a dead
letter) goes onto one embedded stream, copied to a second work folder. The test run's own
``local[2]`` session runs the pass over one; ``playerpulse pipeline all`` runs over the other in a
subprocess with ``PLAYERPULSE_SPARK_MASTER=local-cluster[2,1,1024]`` and without the test's
``PYTHONPATH``, so the executors import only the code the session ships them. Every table is then
read back from both lakes by the test's session and compared row for row, in any order.

Columns left out of the comparison, and why:

- ``ingested_at`` (bronze.player_events, bronze.dead_letter): bronze's own stamp of when it
  read the record, the wall clock of each run.

Floating-point values are compared to 9 significant digits: a sum's last bits depend on the order
its terms were added, which is the executors' business.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cloud_support import learnable_history, midnight_today
from event_factory import event, put_dead_letters, put_events

from features.config import Settings, load_settings, repo_root
from pipelines.jobs import run_all
from pipelines.session import lake_tables

MASTER = "local-cluster[2,1,1024]"
PLAYERS, DAYS = 6, 8
IGNORED_COLUMNS = {"ingested_at"}
EXPECTED_TABLES = {
    "bronze.player_events",
    "bronze.dead_letter",
    "silver.player_events",
    "silver.quarantine",
    "gold.player_daily",
    "gold.player_features_v1",
    "gold.player_activity_v2",
    "gold.player_activity_v3",
}
RUN_TIMEOUT_S = 900


def the_input() -> list[dict[str, Any]]:
    end = midnight_today()
    history = learnable_history(PLAYERS, DAYS, end)
    late_time = int((end - timedelta(days=90)).timestamp() * 1000)
    too_late = event("session_start", "p00000", late_time, received_at=int(end.timestamp() * 1000))
    return [*history, *history[:5], too_late]  # five sent twice; one received 90 days after it happened


def put_input(settings: Settings, events: list[dict[str, Any]]) -> None:
    put_events(settings, events)
    put_dead_letters(settings, ["not json: unexpected end of input"])


def start_local_cluster_pass(workdir: Path, log: Path) -> subprocess.Popen[str]:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "SPARK_HOME")}
    env["PLAYERPULSE_SPARK_MASTER"] = MASTER
    command = [sys.executable, "-m", "playerpulse", "pipeline", "all", "--env", "local", "--workdir", str(workdir)]
    with log.open("w") as out:
        return subprocess.Popen(command, cwd=repo_root(), env=env, stdout=out, stderr=subprocess.STDOUT, text=True)


def normalised(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {str(k): normalised(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalised(v) for v in value]
    return value


def table_rows(spark: Any, location: str) -> list[str]:
    """The table's rows without the ignored columns, each as canonical JSON, sorted."""
    frame = spark.read.format("delta").load(location)
    frame = frame.drop(*[c for c in frame.columns if c in IGNORED_COLUMNS])
    rows = [normalised(row.asDict(recursive=True)) for row in frame.collect()]
    return sorted(json.dumps(row, sort_keys=True, default=str) for row in rows)


@pytest.fixture(scope="module")
def two_lakes(spark: Any, tmp_path_factory: pytest.TempPathFactory):
    """The same input through the lake pass on local-cluster (subprocess) and on local[2]."""
    events = the_input()
    folder = tmp_path_factory.mktemp("local-cluster")
    cluster = load_settings("local", folder / "cluster")
    local = load_settings("local", folder / "local")
    put_input(cluster, events)
    # a copy of the one stream (and dead letters), so even the stream's own stamps (stream_at,
    # positions) are the same input on both sides
    shutil.copytree(Path(cluster.workdir) / "stream", Path(local.workdir) / "stream")
    log = folder / "local-cluster-pass.log"

    run_all(spark, local)
    # one after the other: on two cores the two passes side by side finish no sooner, and side by
    # side at load 15 a Python worker started too slowly for Spark ("failed to connect back")
    proc = start_local_cluster_pass(Path(cluster.workdir), log)
    try:
        code = proc.wait(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0, f"`pipeline all` on {MASTER} exited {code}:\n{log.read_text()[-4000:]}"
    return spark, cluster, local, events


def test_the_pass_ran_on_two_executor_processes_logging_into_the_work_folder(two_lakes):
    _spark, cluster, *_ = two_lakes

    apps = sorted((Path(cluster.workdir) / "spark" / "home" / "work").glob("app-*"))

    assert len(apps) == 1, apps
    executor_logs = [p for p in apps[0].glob("*/stderr") if p.stat().st_size > 0]
    assert len(executor_logs) >= 2


def test_both_masters_write_the_same_tables(two_lakes):
    spark, cluster, local, _events = two_lakes

    assert set(lake_tables(spark, cluster)) == set(lake_tables(spark, local)) == EXPECTED_TABLES


@pytest.mark.parametrize("table", sorted(EXPECTED_TABLES))
def test_every_table_holds_the_same_rows_on_both_masters(two_lakes, table):
    spark, cluster, local, _events = two_lakes

    on_cluster = table_rows(spark, lake_tables(spark, cluster)[table])
    on_local = table_rows(spark, lake_tables(spark, local)[table])

    assert on_cluster, f"{table} is empty: the comparison would prove nothing"
    assert on_cluster == on_local


def test_the_cluster_lake_holds_every_distinct_event_and_quarantines_the_late_one(two_lakes):
    spark, cluster, _local, events = two_lakes
    tables = lake_tables(spark, cluster)

    silver = spark.read.format("delta").load(tables["silver.player_events"])
    quarantine = spark.read.format("delta").load(tables["silver.quarantine"])

    assert silver.count() == len({e["event_id"] for e in events}) - 1
    assert [r.event_id for r in quarantine.select("event_id").collect()] == [events[-1]["event_id"]]
