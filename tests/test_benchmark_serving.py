"""Smoke test of ``benchmarks/serving.py`` at a tiny size: every path runs and is in the report.

It seeds a real work folder (simulated players folded into SQLite profiles, an xgboost champion
in an MLflow SQLite store), builds and unzips the Lambda package, starts the gateway, and asserts
on what the report says, never on how fast anything was.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
from rich.console import Console

from benchmarks.serving import (
    COLD_ROWS,
    IN_PROCESS,
    LAMBDA,
    Report,
    expected_rows,
    parse_args,
    render,
    run_benchmark,
)

TINY = ["--players", "25", "--days", "3", "--requests", "60", "--lambda-requests", "60"]
TINY += ["--seconds", "1", "--connections", "1", "--cold-starts", "1"]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    workdir = tmp_path_factory.mktemp("bench-serving")
    return run_benchmark(parse_args([*TINY, "--workdir", str(workdir)]))


def test_the_report_has_every_path_in_order_each_with_samples_and_percentiles(report: Report) -> None:
    assert list(report.rows) == expected_rows([1])
    for row in report.rows.values():
        assert row.samples > 0, row.name
        assert math.isfinite(row.p50_ms) and 0 < row.p50_ms <= row.p99_ms, row.name


def test_the_measured_paths_answer_real_predictions_not_fallbacks(report: Report) -> None:
    assert report.rows[IN_PROCESS].fallbacks == 0
    assert report.rows[LAMBDA].fallbacks == 0
    assert report.rows[LAMBDA].note == "HTTP 200: 60"
    assert report.rows["HTTP gateway, 1 conn"].fallbacks == 0


def test_in_process_and_lambda_rows_carry_a_cpu_p99_no_larger_than_their_wall_p99(report: Report) -> None:
    timed_in_this_process = [r for r in report.rows.values() if r.name not in COLD_ROWS and "HTTP" not in r.name]
    assert {r.name for r in timed_in_this_process} >= {IN_PROCESS, LAMBDA}
    for row in timed_in_this_process:
        # each call's CPU interval lies inside its wall interval; the clocks' own jitter aside
        assert row.cpu_p99_ms is not None and 0 < row.cpu_p99_ms <= row.p99_ms * 1.05 + 0.01, row


def test_the_report_names_each_target_with_its_limit(report: Report) -> None:
    limits = {t.name.split(",")[0].split(" (")[0]: t.limit for t in report.targets}
    assert limits == {
        "in-process p99": 1.0,
        "in-process p99 / baseline p99": 3.0,
        "HTTP p99": 5.0,
        "cold start": 1500.0,
    }


def test_the_printed_report_shows_every_row_the_targets_and_the_load_average(report: Report) -> None:
    out = io.StringIO()
    render(report, Console(file=out, width=200))
    text = out.getvalue()
    for name in [
        *expected_rows([1]),
        "Targets",
        "load average",
        "Lambda package:",
        "MiB zipped",
        "CPU p99 ms",
        "server CPU",
    ]:
        assert name in text
    assert ("met" in text) and all(name in text for name in COLD_ROWS)


def test_a_second_run_reuses_the_seeded_work_folder(report: Report, tmp_path: Path) -> None:
    from benchmarks.serving import seed_workdir

    workdir = Path(report.meta["args"]["workdir"])
    marker = (workdir / "bench_seed.json").stat().st_mtime_ns
    _, players = seed_workdir(workdir, 25, 3, 7)
    assert len(players) == report.players and (workdir / "bench_seed.json").stat().st_mtime_ns == marker
