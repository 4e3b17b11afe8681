"""Training at scale: gold and the point-in-time training set on 10M events, xgboost on ~1M rows.

```bash
.venv/bin/python benchmarks/training_scale.py            # 10M events (~45k players × 30 days), baseline 1M
.venv/bin/python benchmarks/training_scale.py --quick    # 1M events, baseline 100k: checks the script
.venv/bin/python benchmarks/training_scale.py --events 3M --players 20000 --days 30 --out var/bench/ts.json
```

Events start in silver: ``benchmarks/training_scale_events.py`` draws them with numpy from the
simulator's players, day plans and per-session counts (purchases follow its ``BuyModel``, so the
label is learnable and early stopping trains a realistic number of rounds) and writes them into
``silver.player_events`` in the schema silver produces (the table created by
``pipelines.silver.ensure_tables``, appended to with Delta's schema check). The collector,
bronze and silver are bypassed: ``benchmarks/lakehouse.py`` measures those. Then the real code
runs on Spark ``local[2]`` (the local settings, ``pipelines.session.get_spark``), each stage timed:

- gold: ``gold.player_daily`` (``pipelines.gold.player_daily`` over every feature set, as the gold
  job writes it) and the ``store_offer`` model's feature set's table (``features_at_day_end`` for
  ``player_activity_v2``), each materialised by its Delta write; the gold job's other set
  (``player_activity_v1``) is not needed for training and not built;
- the training set: ``training.dataset.build_training_set``, the function ``playerpulse train``
  calls, materialised by its own Delta write of ``gold.training_store_offer``;
- what ``training.train.train_model`` does next: ``toPandas`` and sort, the Great Expectations
  checks (``validate_training_rows``), then ``fit_and_measure`` with ``conf/models/store_offer.yaml``'s
  shipped parameters (early stopping on the days before the test days, then the final fit). The
  numpy + DMatrix conversion it does inside is timed apart with the same calls, and the rest is
  the boosting; MLflow logging and registration are not measured.

A baseline, the same stages at a tenth of the events and players over the same days, runs first
in the same session, and the scaling table gives each stage's time ratio against the ratio of
what it processes (1.0 = linear). It prints rich tables and the load average, and never asserts:
on a shared machine the figures move with the load.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.training_scale_events import Shape

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession

    from features.config import Settings
    from features.model_config import ModelConfig

MODEL = "store_offer"
DEFAULT_EVENTS = 10_000_000
QUICK_EVENTS = 1_000_000
BASELINE_DIVISOR = 10
WARMUP_EVENTS = 20_000
ROWS_PER_EVENTS = 10
"""Default players give about one training row per this many events (``default_players``)."""
LABEL_DAYS_LOST = 2
"""Snapshot days at the end without a fully observed 24 h label window (the last two day ends)."""
T = TypeVar("T")


def parse_count(text: str) -> int:
    """``100k``, ``1M``, ``10M`` or a plain number."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmM]?)", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"not a count: {text!r} (use e.g. 100k, 1M, 10M)")
    return int(float(m.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[m.group(2).lower()])


def label(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1e3:g}k" if n >= 1_000 else str(n)


def default_players(events: int, days: int, min_history_days: int = 7) -> int:
    """Players for about ``events / ROWS_PER_EVENTS`` training rows: each player has a snapshot
    per day from the ``min_history_days``-th day, less the last days whose label window is not
    yet observed (30 days: 22 rows a player, so 10M events → 45,455 players, ~7.3 events a
    player-day; the simulator's own mix is ~9.3, so its filler events are thinned)."""
    per_player = max(1, days - min_history_days + 1 - LABEL_DAYS_LOST)
    return max(1, math.ceil(events / ROWS_PER_EVENTS / per_player))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmarks/training_scale.py",
        description="Gold, the point-in-time training set and the xgboost fit of store_offer on generated "
        "silver events, against a baseline at a tenth of the size.",
    )
    parser.add_argument("--events", type=parse_count, default=None, help="events, e.g. 10M (default), 1M, 300k")
    parser.add_argument("--players", type=int, default=None, help="players (default: about events/10 training rows)")
    parser.add_argument("--days", type=int, default=30, help="days of history, default 30")
    parser.add_argument("--quick", action="store_true", help=f"{label(QUICK_EVENTS)} events: checks the script")
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline at a tenth of the size")
    parser.add_argument(
        "--no-warmup", action="store_true", help=f"skip the unreported {label(WARMUP_EVENTS)}-event pass first"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--driver-memory", default="6g", help="Spark driver memory, default 6g (local.yaml: 3g)")
    parser.add_argument("--workdir", default=None, help="where the work folders go (default: the system temp)")
    parser.add_argument("--keep", action="store_true", help="keep each size's work folder")
    parser.add_argument("--out", default=None, help="also write every figure as JSON to this file")
    return parser


def warmup_shape(args: argparse.Namespace) -> Shape | None:
    """A tiny pass run first and not reported: the JVM's JIT, Python workers and the imports of
    Great Expectations and xgboost would otherwise land in the baseline's figures (at 20k events
    each Spark stage took ~35 s at load 13, most of it fixed cost) and skew the growth ratios."""
    if args.no_warmup:
        return None
    return Shape(WARMUP_EVENTS, default_players(WARMUP_EVENTS, args.days), args.days, args.seed)


def shapes(args: argparse.Namespace) -> list[Shape]:
    """The baseline (a tenth of the events and players, same days) unless skipped, then the main size."""
    events = args.events or (QUICK_EVENTS if args.quick else DEFAULT_EVENTS)
    players = args.players or default_players(events, args.days)
    main = Shape(events, players, args.days, args.seed)
    if args.no_baseline:
        return [main]
    small = Shape(events // BASELINE_DIVISOR, max(1, players // BASELINE_DIVISOR), args.days, args.seed)
    return [small, main]


@dataclass(frozen=True)
class Stage:
    """One timed step: what it processed (``count`` of ``unit``) and the 1-minute load after it."""

    name: str
    seconds: float
    count: int
    unit: str
    load: float
    planning_s: float | None = None
    """Catalyst's analysis and planning of the stage's query, timed apart on a fresh copy of it
    after the stage (the write plans again, so this is not subtracted): its fixed cost."""


@dataclass
class SizeResult:
    shape: Shape
    setup_s: dict[str, float] = field(default_factory=dict)
    stages: list[Stage] = field(default_factory=list)
    rows: int = 0
    label_rate: float = 0.0
    rounds: int = 0
    """Rounds of the final booster (chosen by early stopping)."""
    probe_rounds: int = 0
    """Rounds the early-stopping fit trained before it stopped."""
    test_auc: float = float("nan")

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def load1() -> float:
    return os.getloadavg()[0]


def load_text() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def bench_settings(workdir: Path, driver_memory: str) -> Settings:
    """The local settings over ``workdir``, with the driver memory 10M events need (the shipped 3g
    is sized for the demo) and a longer wait for Python workers on a loaded machine."""
    from features.config import load_settings

    settings = load_settings("local", workdir)
    conf = {**settings.spark.conf, "spark.python.authenticate.socketTimeout": "180s"}
    spark_cfg = settings.spark.model_copy(update={"driver_memory": driver_memory, "conf": conf})
    return settings.model_copy(update={"spark": spark_cfg})


def write_silver(spark: SparkSession, settings: Settings, shape: Shape, staging: Path) -> dict[str, float]:
    """Generate the events into Parquet files (one per day) and append them to silver.player_events
    as created by silver's own ``ensure_tables``; seconds of each step (setup, not a stage)."""
    import pyarrow.parquet as pq

    from benchmarks.training_scale_events import SILVER_COLUMNS, build_world, silver_days
    from features.contract import STREAM_EVENT_DDL
    from pipelines import bronze, silver
    from pipelines.session import table_path

    first_day = datetime.now(UTC).date() - timedelta(days=shape.days)
    world_s, world = timed(lambda: build_world(shape, first_day))
    staging.mkdir(parents=True, exist_ok=True)

    def write_days() -> None:
        for i, table in enumerate(silver_days(world)):
            pq.write_table(table, staging / f"day-{i:03d}.parquet", compression="zstd")

    days_s, _ = timed(write_days)
    silver.ensure_tables(spark, settings, bronze.bronze_events(spark.createDataFrame([], STREAM_EVENT_DDL)))
    path = table_path(settings, silver.EVENTS_TABLE)
    target = spark.read.format("delta").load(path).schema
    names = [n for n, _ in SILVER_COLUMNS]
    if target.fieldNames() != names:
        raise RuntimeError(f"silver's columns changed: {target.fieldNames()} (the generator writes {names})")

    def append() -> None:
        frame = spark.read.parquet(str(staging)).select(*names)
        frame.write.format("delta").mode("append").save(path)

    append_s, _ = timed(append)
    shutil.rmtree(staging, ignore_errors=True)
    return {"generate world": world_s, "generate days → Parquet": days_s, "append to silver (Delta)": append_s}


def _overwrite(frame: Any, path: str) -> None:
    """As the gold job writes its tables."""
    frame.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(path)


def run_gold(spark: SparkSession, settings: Settings, cfg: ModelConfig, result: SizeResult) -> None:
    """gold.player_daily over every feature set and the model's feature table, each written."""
    from features.definitions import FEATURE_SETS
    from pipelines import gold
    from pipelines.lake import read_table, rows_added_since
    from pipelines.session import table_path

    silver = read_table(spark, settings, gold.SOURCE_TABLE, produced_by="silver")
    daily_path = table_path(settings, gold.DAILY_TABLE)
    sets = list(FEATURE_SETS.values())
    seconds, _ = timed(lambda: _overwrite(gold.player_daily(silver, sets), daily_path))
    daily_rows = rows_added_since(spark, daily_path, -1)
    planning = planning_seconds(gold.player_daily(silver, sets))
    result.stages.append(Stage(gold.DAILY_TABLE, seconds, result.shape.events, "events", load1(), planning))
    daily = spark.read.format("delta").load(daily_path)
    path = table_path(settings, cfg.fs.table)
    seconds, _ = timed(lambda: _overwrite(gold.features_at_day_end(spark, daily, cfg.fs), path))
    planning = planning_seconds(gold.features_at_day_end(spark, daily, cfg.fs))
    result.stages.append(Stage(cfg.fs.table, seconds, daily_rows, "daily rows", load1(), planning))


def planning_seconds(frame: Any) -> float:
    """Seconds Spark takes to analyse, optimise and plan ``frame`` without running it."""
    seconds, _ = timed(lambda: frame._jdf.queryExecution().executedPlan())
    return seconds


def run_training_set(spark: SparkSession, settings: Settings, cfg: ModelConfig, result: SizeResult) -> pd.DataFrame:
    """The point-in-time set (its Delta write materialises it) and train_model's pandas frame."""
    from training.dataset import build_training_set

    seconds, ts = timed(lambda: build_training_set(spark, settings, cfg))
    result.rows = int(ts.df.count())
    result.stages.append(Stage(f"training set ({ts.table})", seconds, result.shape.events, "events", load1()))

    def collect() -> pd.DataFrame:  # train_model's own lines
        return ts.df.toPandas().sort_values(["as_of", "game_id", "player_id"], kind="stable").reset_index(drop=True)

    seconds, rows = timed(collect)
    result.stages.append(Stage("toPandas + sort", seconds, len(rows), "rows", load1()))
    return rows


def conversion(rows: pd.DataFrame, cfg: ModelConfig) -> int:
    """The numpy matrices and DMatrices ``fit_booster`` builds (fit and validation days for early
    stopping, then all training days), with the same calls; the matrices' total rows."""
    import xgboost as xgb

    from training.dataset import LABEL
    from training.train import _matrix, split_by_time

    names, t = cfg.input_names, cfg.training
    train, _ = split_by_time(rows, t.test_days)
    fit, valid = split_by_time(train, t.test_days)
    built = 0
    for part in (fit, valid, train):
        xgb.DMatrix(_matrix(part, names), label=part[LABEL].to_numpy(), feature_names=names)
        built += len(part)
    return built


def probe_rounds(rounds: int, cfg: ModelConfig) -> int:
    """Rounds the early-stopping fit trained, from the final round count it chose: early stopping
    trains its patience past the best round (or every round when it never stopped).
    ``fit_booster`` also skips that fit when the training days are too few; not told apart here."""
    t = cfg.training
    if t.early_stopping_rounds is None:
        return 0
    return min(t.num_boost_round, rounds + t.early_stopping_rounds)


def run_training(rows: pd.DataFrame, cfg: ModelConfig, result: SizeResult) -> None:
    """GX checks, the conversion on its own, then ``fit_and_measure`` (which converts again inside)."""
    from training.data_checks import validate_training_rows
    from training.dataset import LABEL
    from training.train import fit_and_measure

    seconds, _ = timed(lambda: validate_training_rows(rows, cfg))
    result.stages.append(Stage("GX checks (validate_training_rows)", seconds, len(rows), "rows", load1()))
    seconds, built = timed(lambda: conversion(rows, cfg))
    result.stages.append(Stage("numpy + DMatrix (fit, valid, train)", seconds, built, "rows", load1()))
    seconds, fitted = timed(lambda: fit_and_measure(rows, cfg))
    result.stages.append(Stage("fit_and_measure (incl. conversion)", seconds, len(rows), "rows", load1()))
    result.rounds = fitted.rounds
    result.probe_rounds = probe_rounds(fitted.rounds, cfg)
    result.label_rate = float(rows[LABEL].mean())
    result.test_auc = float(fitted.metrics.get("test_auc", float("nan")))


def run_size(spark: SparkSession, shape: Shape, args: argparse.Namespace, console: Console) -> SizeResult:
    """One size end to end in its own work folder: silver written, then every timed stage."""
    from features.model_config import load_model_config

    work = Path(tempfile.mkdtemp(prefix=f"pp-tscale-{label(shape.events)}-", dir=args.workdir))
    settings = bench_settings(work / "var", args.driver_memory)
    cfg = load_model_config(settings, MODEL)
    result = SizeResult(shape)
    console.print(f"[bold]{label(shape.events)} events[/]: {shape.players:,} players × {shape.days} days in {work}")
    result.setup_s = write_silver(spark, settings, shape, work / "staging")
    console.print("  silver written: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.setup_s.items()))
    try:
        run_gold(spark, settings, cfg, result)
        rows = run_training_set(spark, settings, cfg, result)
        run_training(rows, cfg, result)
    finally:
        for s in result.stages:
            console.print(f"  {s.name}: {s.seconds:.1f} s (load {s.load:.2f})")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return result


BUILD_STAGES = 3
"""The first three stages build the training set from silver: daily, features, the set itself."""


def _per_second(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}" if seconds > 0 else "-"


def boosting_seconds(result: SizeResult) -> float:
    """``fit_and_measure`` less the conversion it does inside (measured apart, same calls)."""
    fit = result.stage("fit_and_measure (incl. conversion)").seconds
    return max(0.0, fit - result.stage("numpy + DMatrix (fit, valid, train)").seconds)


def build_seconds(result: SizeResult) -> float:
    return sum(s.seconds for s in result.stages[:BUILD_STAGES])


def stages_table(results: list[SizeResult]) -> Table:
    table = Table(title="Stages (Spark local[2]; xgboost nthread 2): seconds, what each processed, load after")
    for col in ("size", "stage", "seconds", "processed", "per second", "planning s (apart)", "load 1 min"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for r in results:
        size = f"{label(r.shape.events)} events"
        for s in r.stages:
            table.add_row(
                size,
                s.name,
                f"{s.seconds:.1f}",
                f"{s.count:,} {s.unit}",
                _per_second(s.count, s.seconds),
                "" if s.planning_s is None else f"{s.planning_s:.1f}",
                f"{s.load:.2f}",
            )
        table.add_row(
            size,
            "[bold]build: daily + features + training set[/]",
            f"{build_seconds(r):.1f}",
            f"{r.shape.events:,} events",
            _per_second(r.shape.events, build_seconds(r)),
            "",
            "",
            end_section=True,
        )
    return table


def training_table(results: list[SizeResult]) -> Table:
    table = Table(title="xgboost fit (store_offer.yaml's params: early stopping, then the final fit)")
    cols = (
        "size",
        "events",
        "players",
        "days",
        "rows",
        "label rate",
        "test AUC",
        "rounds (probe + final)",
        "boosting s",
        "s / round",
        "rows/s",
    )
    for col in cols:
        table.add_column(col, justify="right")
    for r in results:
        rounds = r.probe_rounds + r.rounds
        boost = boosting_seconds(r)
        table.add_row(
            label(r.shape.events),
            f"{r.shape.events:,}",
            f"{r.shape.players:,}",
            str(r.shape.days),
            f"{r.rows:,}",
            f"{r.label_rate:.3f}",
            f"{r.test_auc:.3f}",
            f"{rounds} ({r.probe_rounds} + {r.rounds})",
            f"{boost:.1f}",
            f"{boost / rounds:.3f}" if rounds else "-",
            _per_second(r.rows, r.stage("fit_and_measure (incl. conversion)").seconds),
        )
    return table


def scaling_rows(small: SizeResult, big: SizeResult) -> list[tuple[str, float, float]]:
    """``(stage, what-it-processed ×, time ×)`` from the baseline to the main size, per stage,
    for the build, for boosting per round and in all."""
    out = [
        (a.name, b.count / a.count if a.count else math.nan, b.seconds / a.seconds if a.seconds else math.nan)
        for a, b in zip(small.stages, big.stages, strict=True)
    ]
    out.append(
        (
            "build: daily + features + training set",
            big.shape.events / small.shape.events,
            build_seconds(big) / build_seconds(small),
        )
    )
    small_rounds, big_rounds = small.rounds + small.probe_rounds, big.rounds + big.probe_rounds
    if small_rounds and big_rounds and boosting_seconds(small) > 0:
        per_round = (boosting_seconds(big) / big_rounds) / (boosting_seconds(small) / small_rounds)
        out.append(("boosting, per round", big.rows / small.rows if small.rows else math.nan, per_round))
    total = sum(s.seconds for s in big.stages) / sum(s.seconds for s in small.stages)
    out.append(("all stages", big.shape.events / small.shape.events, total))
    return out


def scaling_table(small: SizeResult, big: SizeResult) -> Table:
    table = Table(
        title=f"Growth {label(small.shape.events)} → {label(big.shape.events)} events: "
        "time × against input × (1.0 = linear)"
    )
    for col in ("stage", "input ×", "time ×", "time × / input ×"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for name, grew, took in scaling_rows(small, big):
        table.add_row(name, f"{grew:.1f}", f"{took:.1f}", f"{took / grew:.2f}" if grew else "-")
    return table


def setup_table(results: list[SizeResult]) -> Table:
    table = Table(title="Setup, not a stage: generating the events and appending them to silver")
    table.add_column("size", justify="right")
    names = list(results[0].setup_s)
    for name in names:
        table.add_column(f"{name} s", justify="right")
    for r in results:
        table.add_row(label(r.shape.events), *(f"{r.setup_s[n]:.1f}" for n in names))
    return table


def report(results: list[SizeResult], console: Console, load: dict[str, str]) -> None:
    """Every table, then the two figures the issue asks for, with the load average."""
    console.print(setup_table(results))
    console.print(stages_table(results))
    console.print(training_table(results))
    if len(results) > 1:
        console.print(scaling_table(results[0], results[-1]))
    big = results[-1]
    fit = big.stage("fit_and_measure (incl. conversion)").seconds
    console.print(
        f"[bold]training-set build on {big.shape.events:,} events: {build_seconds(big):.0f} s; "
        f"training on {big.rows:,} rows: {fit:.0f} s[/] "
        f"(cores {os.cpu_count()}, load average {load['before']} before, {load['after']} after)"
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sizes = shapes(args)
    console = Console(width=None if sys.stdout.isatty() else 160)  # a log keeps the tables readable
    load_before = load_text()
    console.print(f"cores: {os.cpu_count()}, load average: {load_before}")
    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
    from pipelines.session import get_spark

    session_dir = Path(tempfile.mkdtemp(prefix="pp-tscale-spark-", dir=args.workdir))
    spark = get_spark(bench_settings(session_dir, args.driver_memory), app_name="playerpulse-bench-training-scale")
    arrow = spark.conf.get("spark.sql.execution.arrow.pyspark.enabled", "false")
    console.print(f"Spark {spark.version}, toPandas through Arrow: {arrow} (the session's setting, left as it is)")
    try:
        warmup = warmup_shape(args)
        if warmup is not None:
            console.print("[dim]warm-up pass, not reported:[/]")
            run_size(spark, warmup, args, console)
        results = [run_size(spark, shape, args, console) for shape in sizes]
    finally:
        spark.stop()
        shutil.rmtree(session_dir, ignore_errors=True)
    load = {"before": load_before, "after": load_text()}
    report(results, console, load)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        out = {"load_average": load, "cores": os.cpu_count(), "results": [asdict(r) for r in results]}
        Path(args.out).write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
