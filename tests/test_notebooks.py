"""Every analyst notebook (notebooks/*.py, Databricks source format) runs, cell by cell, on a tiny lake.

The lake is written here with the jobs' own transforms (stream rows → ``bronze_events`` →
``silver_rows``, split on ``quarantine_reason`` as silver does) and a few MLflow runs shaped as
training and validation log them. Then one fresh interpreter runs each notebook the way
Databricks would: cells split on ``# COMMAND ----------``, ``# MAGIC`` (markdown) cells skipped,
the rest executed in order in one namespace, with ``spark`` coming from
``playerpulse.notebook_support`` (a local session that registers the lake's tables by name).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from features.config import Settings, repo_root
from pipelines.bronze import DEAD_LETTER_DDL, bronze_events
from pipelines.session import table_path
from pipelines.silver import silver_rows

pytestmark = pytest.mark.spark

NOTEBOOKS = sorted((repo_root() / "notebooks").glob("*.py"))
START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
STREAM_DDL = (
    "event_id STRING, schema_version INT, event_type STRING, player_id STRING, game_id STRING, "
    "event_time BIGINT, sent_at BIGINT, received_at BIGINT, stream_at BIGINT, platform STRING, "
    "app_version STRING, country STRING, session_id STRING, properties STRING, "
    "stream_shard STRING, stream_position STRING"
)

RUNNER = r"""
import json, sys, traceback
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

SEPARATOR = "# COMMAND ----------"
report = {}
for path in sys.argv[1:]:
    text = open(path).read()
    assert text.startswith("# Databricks notebook source\n"), f"{path}: no Databricks source header"
    cells = [c.strip("\n") for c in text.split(SEPARATOR)]
    ns = {"__name__": "__main__"}
    ran = 0
    for i, cell in enumerate(cells):
        lines = [l for l in cell.splitlines() if l.strip() and l.strip() != "# Databricks notebook source"]
        if not lines or all(l.startswith("# MAGIC") for l in lines):
            continue
        try:
            exec(compile(cell, f"{path} cell {i}", "exec"), ns)
        except Exception:
            print(f"{path}: cell {i} failed", file=sys.stderr)
            traceback.print_exc()
            sys.exit(1)
        ran += 1
    titles = sorted({ax.get_title() for n in plt.get_fignums() for ax in plt.figure(n).axes if ax.get_title()})
    funnel = ns.get("funnel") if isinstance(ns.get("funnel"), list) else None
    report[path.rsplit("/", 1)[-1]] = {"cells": ran, "figures": len(plt.get_fignums()), "titles": titles,
                                       "funnel": funnel}
    plt.close("all")
print(json.dumps(report))
"""


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _events() -> list[tuple]:
    """12 players over 10 days; odd players buy on days they see an offer; player 0 sends a bad price."""
    rows, n = [], 0
    for p in range(12):
        for day in range(0, 10, 1 + p % 3):
            at = START + timedelta(days=day, hours=10 + p % 5)
            steps = [("session_start", "{}"), ("store_view", "{}")]
            if p % 2 == 0 or day % 2 == 0:
                steps.append(("offer_shown", '{"offer_id": "o1"}'))
                if p % 2 == 1:
                    steps.append(("purchase", '{"sku": "gems_100", "price_usd": 4.99}'))
            if p == 0 and day == 0:
                steps.append(("purchase", '{"sku": "gems_100", "price_usd": 99999.0}'))  # quarantined
            for k, (event_type, props) in enumerate(steps):
                t = _ms(at + timedelta(minutes=k))
                event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"e{n}"))
                envelope = (event_id, 1, event_type, f"p{p:03d}", "demo", t, t + 1000, t + 2000, t + 2100)
                rows.append((*envelope, "ios", "1.0.0", "DE", f"s{p}-{day}", props, "0", str(n)))
                n += 1
    return rows


def _write_lake(spark, settings: Settings) -> dict[str, int]:
    from pyspark.sql import functions as F

    stream = spark.createDataFrame(_events(), STREAM_DDL)
    rows = silver_rows(bronze_events(stream)).cache()
    clean = rows.where("quarantine_reason IS NULL").drop("quarantine_reason")
    quarantined = rows.where("quarantine_reason IS NOT NULL")
    clean.write.format("delta").partitionBy("event_date").save(table_path(settings, "silver.player_events"))
    quarantined.write.format("delta").save(table_path(settings, "silver.quarantine"))
    letters = [
        (_ms(START + timedelta(hours=h)), reason, '{"event_type": 7}', "demo", 0, f"r{h}", str(h))
        for h, reason in enumerate(["event_type: expected a string", "event_type: expected a string", "not JSON"])
    ]
    dead = spark.createDataFrame(letters, DEAD_LETTER_DDL).withColumns(
        {"received_at": F.timestamp_millis("received_at"), "ingested_at": F.current_timestamp()}
    )
    dead.write.format("delta").save(table_path(settings, "bronze.dead_letter"))
    return {"silver": clean.count(), "quarantine": quarantined.count()}


def _log_runs(settings: Settings) -> None:
    import mlflow

    from training.registry import ensure_experiment, tracking_client

    client = tracking_client(settings)
    experiment_id = ensure_experiment(settings, client)
    for i, auc in enumerate([0.81, 0.79, 0.74]):
        tags = {"model": "store_offer"}
        with mlflow.start_run(experiment_id=experiment_id, run_name="store_offer-train", tags=tags):
            mlflow.log_metrics({"test_auc": auc, "test_logloss": 0.4 + i / 50, "base_rate": 0.2})
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"store_offer-validate-v{i + 1}", tags=tags):
            mlflow.log_params({"threshold_min_auc": 0.75})
            mlflow.log_metrics({"candidate_auc": auc, "passed": 1.0 if auc >= 0.75 else 0.0})
        time.sleep(0.01)  # distinct start times


@pytest.fixture(scope="module")
def demo_lake(spark, tmp_path_factory) -> tuple[Settings, dict[str, int]]:
    from features.config import load_settings

    settings = load_settings("local", tmp_path_factory.mktemp("notebooks") / "var")
    counts = _write_lake(spark, settings)
    _log_runs(settings)
    return settings, counts


@pytest.fixture(scope="module")
def report(demo_lake) -> dict:
    settings, _ = demo_lake
    env = {**os.environ, "PLAYERPULSE_ENV": "local", "PLAYERPULSE_WORKDIR": settings.workdir, "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, *map(str, NOTEBOOKS)],
        cwd=repo_root(),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_four_analyst_notebooks_are_there_in_databricks_source_format():
    assert [p.name for p in NOTEBOOKS] == [
        "model_performance.py",
        "player_activity_retention.py",
        "purchase_funnel.py",
        "quarantine_and_dead_letters.py",
    ]
    for path in NOTEBOOKS:
        text = path.read_text()
        assert text.startswith("# Databricks notebook source\n# MAGIC %md\n"), path.name
        assert "# COMMAND ----------" in text


@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS])
def test_each_notebook_runs_every_cell_and_draws_its_plots(report, name):
    assert report[name]["cells"] >= 3
    assert report[name]["figures"] >= 2


def test_the_activity_notebook_plots_daily_actives_and_cohort_retention(report):
    titles = set(report["player_activity_retention.py"]["titles"])
    assert {"Daily active players", "Retention by weekly cohort"} <= titles


def test_the_funnel_counts_player_days_at_each_step(report):
    # 12 players, 10 days: player p is active every (1 + p % 3) days; see _events.
    days = {p: len(range(0, 10, 1 + p % 3)) for p in range(12)}
    offers = {p: sum(1 for d in range(0, 10, 1 + p % 3) if p % 2 == 0 or d % 2 == 0) for p in range(12)}
    bought = sum(offers[p] for p in range(12) if p % 2 == 1)
    funnel = report["purchase_funnel.py"]["funnel"]
    assert [(s["step"], s["player_days"]) for s in funnel] == [
        ("store_view", sum(days.values())),
        ("offer_shown", sum(offers.values())),
        ("purchase", bought),
    ]


def test_the_quarantine_notebook_sees_the_out_of_range_price(report, demo_lake):
    _, counts = demo_lake
    assert counts["quarantine"] == 1
    assert "Quarantined events by expectation" in report["quarantine_and_dead_letters.py"]["titles"]
    assert "Dead letters by reason (top 15)" in report["quarantine_and_dead_letters.py"]["titles"]


def test_the_model_notebook_plots_auc_per_training_run(report):
    assert "store_offer: holdout AUC per training run" in report["model_performance.py"]["titles"]


def test_notebooks_get_the_active_session_when_there_is_one(spark):
    from playerpulse.notebook_support import spark_session

    assert spark_session() is spark


def test_the_notebook_runner_is_not_fooled_by_a_failing_cell(tmp_path, demo_lake):
    broken = tmp_path / "broken.py"
    broken.write_text("# Databricks notebook source\n# COMMAND ----------\n\nraise RuntimeError('boom')\n")
    done = subprocess.run([sys.executable, "-c", RUNNER, str(broken)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "cell 1 failed" in done.stderr and "boom" in done.stderr
