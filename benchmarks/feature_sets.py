"""Feature sets against each other: one model's AUC on each set, and the ground-truth ceiling.

```bash
.venv/bin/python benchmarks/feature_sets.py                    # store_offer on v1, v2 and v3, demo data, seeds 7 and 1
.venv/bin/python benchmarks/feature_sets.py --model churn_risk --seeds 7
.venv/bin/python benchmarks/feature_sets.py --players 500 --days 20 --seeds 7   # a quick check
```

For each seed, the demo's simulated history (``playerpulse.simulation``, the same players, days
and seed ``make demo`` uses by default) goes through the collector and bronze → silver → gold in
a fresh work folder; then the model's declaration (``conf/models/NAME.yaml``) is trained once
per feature set, changing only ``feature_set`` (and using all of its features), on the same
point-in-time rows' days, with the same split, seed and xgboost parameters. It prints, per
seed and feature set, the holdout AUC, the AUC the simulator's true probabilities reach on the
same rows (the ceiling: no feature set can beat it), the gap to it, and the mean gap over the
seeds. Nothing is registered; it never asserts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console
from rich.table import Table

from features.config import load_settings
from features.definitions import FEATURE_SETS
from features.model_config import load_model_config

DEFAULT_SETS = ("player_activity_v1", "player_activity_v2", "player_activity_v3")


def _history(settings, players: int, days: int, seed: int, spark, console: Console) -> None:
    """The demo's stages 1-3: simulate, send through the collector, run the batch line."""
    from pipelines.jobs import run_all
    from playerpulse.demo import DEMO_API_KEY, simulate_and_send
    from playerpulse.gateway import Gateway

    with Gateway(settings, 0) as gw:
        simulate_and_send(settings, gw.url, DEMO_API_KEY, players, days, seed, console)
    run_all(spark, settings)


def measure(
    model: str, sets: tuple[str, ...], players: int, days: int, seed: int, spark, console: Console
) -> list[dict[str, Any]]:
    """Train ``model`` on each of ``sets`` over one simulated history; one row per set."""
    from playerpulse.demo import ground_truth_path
    from training.train import train_model

    workdir = Path(tempfile.mkdtemp(prefix=f"pp-fsets-{seed}-"))
    settings = load_settings("local", workdir / "var")
    started = time.perf_counter()
    _history(settings, players, days, seed, spark, console)
    console.print(f"seed {seed}: history and batch line in {time.perf_counter() - started:.0f}s ({workdir})")
    base = load_model_config(settings, model)
    rows = []
    for name in sets:
        cfg = base.model_copy(update={"feature_set": name, "features": None})
        t0 = time.perf_counter()
        result = train_model(spark, settings, model, str(ground_truth_path(settings)), config=cfg, register=False)
        m = result.metrics
        rows.append(
            {
                "seed": seed,
                "feature_set": name,
                "features": len(cfg.feature_names),
                "auc": m.get("test_auc"),
                "auc_on_ceiling_rows": m.get("auc_on_ceiling_rows"),
                "auc_ceiling": m.get("auc_ceiling"),
                "gap": m.get("auc_gap_to_ceiling"),
                "train_s": time.perf_counter() - t0,
            }
        )
    return rows


def _table(rows: list[dict[str, Any]], model: str) -> Table:
    table = Table(title=f"{model}: holdout AUC per feature set, against the ground-truth ceiling")
    for col in ("seed", "feature set", "features", "AUC", "AUC on ceiling rows", "ceiling", "gap", "train s"):
        table.add_column(col, justify="left" if col == "feature set" else "right", no_wrap=True)
    for r in rows:
        table.add_row(
            str(r["seed"]),
            r["feature_set"],
            str(r["features"]),
            *(f"{r[k]:.4f}" if r[k] is not None else "-" for k in ("auc", "auc_on_ceiling_rows", "auc_ceiling", "gap")),
            f"{r['train_s']:.0f}",
        )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="store_offer")
    parser.add_argument("--sets", default=",".join(DEFAULT_SETS), help="comma-separated feature sets")
    parser.add_argument("--players", type=int, default=2000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seeds", default="7,1", help="comma-separated simulation seeds")
    parser.add_argument(
        "--spark-conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Spark setting for this run's session (spark.python.authenticate.socketTimeout=180s on a busy machine)",
    )
    args = parser.parse_args(argv)
    extra_conf = dict(kv.split("=", 1) for kv in args.spark_conf)
    sets = tuple(s for s in args.sets.split(",") if s)
    unknown = [s for s in sets if s not in FEATURE_SETS]
    if unknown:
        parser.error(f"unknown feature sets {unknown} (known: {sorted(FEATURE_SETS)})")
    console = Console(width=max(Console().width, 120))
    from pipelines.session import get_spark

    base = load_settings("local", Path(tempfile.mkdtemp(prefix="pp-fsets-")))
    spark_cfg = base.spark.model_copy(update={"conf": {**base.spark.conf, **extra_conf}})
    spark = get_spark(base.model_copy(update={"spark": spark_cfg}), app_name="bench-feature-sets")
    rows: list[dict[str, Any]] = []
    try:
        for seed in (int(s) for s in args.seeds.split(",")):
            rows += measure(args.model, sets, args.players, args.days, seed, spark, console)
    finally:
        spark.stop()
    console.print(_table(rows, args.model))
    for name in sets:
        gaps = [r["gap"] for r in rows if r["feature_set"] == name and r["gap"] is not None]
        aucs = [r["auc"] for r in rows if r["feature_set"] == name and r["auc"] is not None]
        if gaps and aucs:
            console.print(
                f"{name}: mean AUC {statistics.mean(aucs):.4f}, mean gap to the ceiling {statistics.mean(gaps):.4f} "
                f"over {len(gaps)} seed(s)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
