"""Train one declared model, log it to MLflow and register it; validation decides the rest.

The split is by time (the last ``test_days`` snapshot days are the test set), because the model
will score tomorrow's players with yesterday's data; a random split would let a player's
adjacent days leak across it. Early stopping watches the days just *before* the test period,
and the final booster is refit on the whole training period with that many rounds, so the test
set is used exactly once: to measure.

The label's kind sets the objective (``binary:logistic`` for occurrence and absence labels,
``reg:squarederror`` for a regression) and the holdout metrics (``training.metrics``). Before
anything is fit, Great Expectations checks the rows against the declaration's ``expectations``
(``training.data_checks``); a failure ends the run, marked failed, with the result attached.
The run records what a reproduction needs (``training.reproduce``): the input tables' Delta
versions, the complete declaration, the ground truth's path and the git commit.

A new version is always registered (its run is the record of what was tried) with its test
rows logged as the holdout, and gets no alias here: ``training.validate`` re-scores it and the
champion on those rows and makes it ``challenger`` if it passes the model's quality gate, and
``training.promote`` makes a validated version ``champion``.

A declaration with ``tuning:`` (or ``--tune``) first searches the booster settings with Optuna
on the training days alone (``training.tuning``), each trial a run nested in the training run;
the final booster is fit on all training days with the best settings and measured as above.

Run directly: ``spark-submit training/train.py MODEL [--ground-truth PATH] [--reproduce RUN_ID]
[--tune | --no-tune] [--trials N]``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import pandas as pd

from features.config import Settings, repo_root
from features.errors import TrainingFailed
from features.model_config import ModelConfig, load_model_config
from training.data_checks import validate_training_rows
from training.dataset import LABEL, build_training_set
from training.metrics import (
    ceiling_metrics,
    classification_metrics,
    gain_importance,
    importance_plot,
    regression_metrics,
    reliability_plot,
    reliability_table,
)
from training.registry import ensure_experiment, log_holdout, tracking_client

CONFIG_ARTIFACT = "model_config.json"
"""The declaration the run trained with, validated and complete, so ``--reproduce`` uses it even
after ``conf/models/NAME.yaml`` has changed."""

if TYPE_CHECKING:
    import xgboost as xgb
    from pyspark.sql import SparkSession

    from training.tuning import TuningResult


@dataclass(frozen=True)
class TrainResult:
    name: str
    version: int | None
    """The registered version, with no alias yet (``playerpulse validate`` decides); ``None``
    for a run that registers nothing (a reproduction)."""
    run_id: str
    metrics: dict[str, float]
    training_table: str
    inputs: dict[str, int] = field(default_factory=dict)
    """Delta table → version read (lineage)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def split_by_time(rows: pd.DataFrame, test_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of the last ``test_days`` snapshot days form the test set; the rest train."""
    days = sorted(rows["as_of_date"].unique())
    if len(days) <= test_days:
        raise TrainingFailed(
            f"the training set spans {len(days)} snapshot day(s) but test_days is {test_days}: "
            "collect more days of events or lower training.test_days"
        )
    first_test = days[-test_days]
    return rows[rows["as_of_date"] < first_test], rows[rows["as_of_date"] >= first_test]


def _matrix(rows: pd.DataFrame, names: list[str]) -> np.ndarray:
    return rows[names].to_numpy(dtype=np.float32, na_value=np.nan)


def _require_both_classes(y: np.ndarray, part: str) -> None:
    if len(np.unique(y)) < 2:
        raise TrainingFailed(
            f"the {part} rows hold only label {int(y[0]) if len(y) else '-'}: an AUC needs both; "
            "use more days of data or a longer label horizon"
        )


def _xgb_params(cfg: ModelConfig) -> dict[str, Any]:
    # Early stopping watches the *last* metric. For a classifier that is logloss, which rewards
    # calibrated probabilities: stopping on AUC halted at the first round on small sets (ranking
    # peaks early), leaving scores squeezed around the base rate, which validation refuses.
    metrics = ["auc", "logloss"] if cfg.label.is_classification else ["mae", "rmse"]
    return {
        **cfg.training.xgboost.model_dump(),
        "objective": cfg.label.objective,
        "eval_metric": metrics,
        "tree_method": "hist",
        "device": "cpu",
        "seed": cfg.training.seed,
    }


def _fits(y: np.ndarray, cfg: ModelConfig) -> bool:
    """Whether a part can be learned from or measured on: a classifier needs both classes."""
    return len(y) > 0 and (not cfg.label.is_classification or len(np.unique(y)) == 2)


def fit_booster(train: pd.DataFrame, cfg: ModelConfig) -> tuple[xgb.Booster, int]:
    """The booster fit on all of ``train`` and its number of rounds (chosen by early stopping
    on the last ``test_days`` days of ``train`` when configured)."""
    import xgboost as xgb

    names, t = cfg.input_names, cfg.training
    params = _xgb_params(cfg)
    rounds = t.num_boost_round
    days = sorted(train["as_of_date"].unique())
    if t.early_stopping_rounds is not None and len(days) > t.test_days:
        fit, valid = split_by_time(train, t.test_days)
        y_fit, y_valid = fit[LABEL].to_numpy(), valid[LABEL].to_numpy()
        if _fits(y_fit, cfg) and _fits(y_valid, cfg):
            d_fit = xgb.DMatrix(_matrix(fit, names), label=y_fit, feature_names=names)
            d_valid = xgb.DMatrix(_matrix(valid, names), label=y_valid, feature_names=names)
            probe = xgb.train(
                params,
                d_fit,
                t.num_boost_round,
                evals=[(d_valid, "valid")],
                early_stopping_rounds=t.early_stopping_rounds,
                verbose_eval=False,
            )
            rounds = probe.best_iteration + 1
    d_train = xgb.DMatrix(_matrix(train, names), label=train[LABEL].to_numpy(), feature_names=names)
    return xgb.train(params, d_train, rounds, verbose_eval=False), rounds


@dataclass(frozen=True)
class Fitted:
    """A booster fit on the training days and measured on the test days."""

    config: ModelConfig
    """The declaration the booster was fit with: as declared, or with the search's best
    ``training.xgboost`` settings when the declaration asks for a search."""
    booster: xgb.Booster
    rounds: int
    train: pd.DataFrame
    test: pd.DataFrame
    pred: np.ndarray
    """The booster's scores of ``test``."""
    metrics: dict[str, float]
    tuning: TuningResult | None = None


def fit_and_measure(rows: pd.DataFrame, cfg: ModelConfig, ground_truth_path: str | None = None) -> Fitted:
    """Split ``rows`` by time, search the booster settings on the training days when ``cfg``
    declares ``tuning``, fit on every training day and measure on the test days, once.

    Call it inside the training run: a search logs each trial as a run nested in it. The search
    is handed the training days alone, so the test days measure a model no choice was fit to.
    """
    train, test = split_by_time(rows, cfg.training.test_days)
    if cfg.label.is_classification:
        _require_both_classes(train[LABEL].to_numpy(), "training")
        _require_both_classes(test[LABEL].to_numpy(), "test")
    tuned = None
    if cfg.tuning is not None:
        from training.tuning import tune

        tuned = tune(train, cfg)
    fit_cfg = tuned.config if tuned is not None else cfg
    booster, rounds = fit_booster(train, fit_cfg)
    pred = np.asarray(booster.inplace_predict(_matrix(test, cfg.input_names)), dtype=np.float64)
    metrics = holdout_metrics(cfg, test[LABEL].to_numpy(), pred)
    metrics.update(
        rows=float(len(rows)),
        train_rows=float(len(train)),
        test_rows=float(len(test)),
        train_label_mean=float(train[LABEL].mean()),
    )
    if ground_truth_path is not None and cfg.label.ground_truth is not None:
        metrics.update(ceiling_metrics(test, pred, ground_truth_path, cfg.label.ground_truth))
    if tuned is not None:
        metrics.update(tuned.metrics)
    return Fitted(fit_cfg, booster, rounds, train, test, pred, metrics, tuned)


def holdout_metrics(cfg: ModelConfig, y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The test metrics the label kind calls for."""
    if cfg.label.is_classification:
        return classification_metrics(y, pred, cfg.quality_gate.calibration_bins)
    return regression_metrics(y, pred)


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _pip_requirements() -> list[str]:
    """Pinned from what is installed: ``xgboost-cpu`` where present (MLflow would record
    ``xgboost``, which pulls ~470 MB of NCCL into any image built from the model)."""
    from importlib.metadata import PackageNotFoundError, version

    def pin(dist: str) -> str | None:
        try:
            return f"{dist}=={version(dist)}"
        except PackageNotFoundError:
            return None

    return [r for r in (pin("xgboost-cpu") or pin("xgboost"), pin("numpy"), pin("pandas")) if r]


def _log_evaluation(cfg: ModelConfig, booster: xgb.Booster, test: pd.DataFrame, pred: np.ndarray) -> None:
    """The holdout's pictures and tables as artifacts of the active run: the reliability table
    and plot (classifiers) and gain importance as a table and a plot."""
    import tempfile

    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if cfg.label.is_classification:
            table = reliability_table(test[LABEL].to_numpy(), pred, cfg.quality_gate.calibration_bins)
            table.to_csv(folder / "reliability.csv", index=False)
            reliability_plot(table, f"{cfg.name}: reliability on the holdout", folder / "reliability.png")
            mlflow.log_artifacts(str(folder), artifact_path="evaluation")
            for f in ("reliability.csv", "reliability.png"):
                (folder / f).unlink()
        importance = gain_importance(booster, cfg.input_names)
        importance.to_csv(folder / "importance_gain.csv", index=False)
        importance_plot(importance, f"{cfg.name}: feature importance (gain)", folder / "importance_gain.png")
        mlflow.log_artifacts(str(folder), artifact_path="evaluation")


def _check_training_set(rows: pd.DataFrame, cfg: ModelConfig, table: str) -> None:
    """Great Expectations on the rows about to be fit; the result is attached to the active run,
    and a failure stops the run naming the failed expectations."""
    import mlflow

    checked = validate_training_rows(rows, cfg)
    mlflow.log_dict(checked.result, "data_validation/training_set.json")
    mlflow.set_tag("data_validation", "passed" if checked.success else "failed")
    mlflow.log_metric("data_expectations_failed", float(len(checked.failed)))
    if not checked.success:
        raise TrainingFailed(
            f"{table} failed {len(checked.failed)} of {checked.evaluated} expectations, so '{cfg.name}' was "
            "not trained: " + "; ".join(checked.failed)
        )


def train_model(
    spark: SparkSession,
    settings: Settings,
    name: str,
    ground_truth_path: str | None = None,
    *,
    config: ModelConfig | None = None,
    versions: Mapping[str, int] | None = None,
    register: bool = True,
    extra_tags: Mapping[str, str] | None = None,
) -> TrainResult:
    """Build the point-in-time set, check it, train, log the run and register a version with its
    holdout rows (the version gets no alias: ``training.validate.validate`` decides whether it
    may serve).

    ``config`` replaces the declaration file and ``versions`` pins the input tables; with
    ``register=False`` nothing is registered: ``reproduce`` uses all three to rerun a past run.
    """
    import mlflow
    import mlflow.xgboost
    from mlflow.models import infer_signature

    cfg = config or load_model_config(settings, name)
    ts = build_training_set(spark, settings, cfg, versions)
    rows = ts.df.toPandas().sort_values(["as_of", "game_id", "player_id"], kind="stable").reset_index(drop=True)
    if rows.empty:
        raise TrainingFailed(
            f"{ts.table} is empty: no snapshot has {cfg.training.min_history_days} days of history "
            f"and a fully observed {cfg.label.horizon_hours} h label window"
        )
    if ground_truth_path is not None and cfg.label.ground_truth is None:
        raise TrainingFailed(
            f"a ground truth was given but model '{name}' declares no label.ground_truth column to read from it"
        )

    client = tracking_client(settings)
    experiment_id = ensure_experiment(settings, client)
    lineage = {f"lineage.{table}": str(v) for table, v in ts.inputs.items()}
    names = cfg.input_names  # the features, then the context fields
    context = [msgspec.to_builtins(e) for e in cfg.context_encodings]
    tags = {
        "model": name,
        "feature_set": cfg.feature_set,
        "features": json.dumps(names),
        "label_kind": cfg.label.kind,
        "training_table": ts.table,
        "training_table_version": str(ts.version),
        **lineage,
        **(extra_tags or {}),
    }
    commit = git_commit()
    if commit:
        tags["git_commit"] = commit

    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{name}-train", tags=tags) as run:
        mlflow.log_dict(cfg.model_dump(mode="json"), CONFIG_ARTIFACT)
        _check_training_set(rows, cfg, ts.table)
        fitted = fit_and_measure(rows, cfg, ground_truth_path)
        booster, train, test, pred, metrics = fitted.booster, fitted.train, fitted.test, fitted.pred, fitted.metrics
        mlflow.log_params(
            {
                **{f"xgb_{k}": v for k, v in fitted.config.training.xgboost.model_dump().items()},
                "objective": cfg.label.objective,
                "num_boost_round": cfg.training.num_boost_round,
                "rounds_used": fitted.rounds,
                "early_stopping_rounds": cfg.training.early_stopping_rounds,
                "test_days": cfg.training.test_days,
                "min_history_days": cfg.training.min_history_days,
                "snapshot_every_days": cfg.training.snapshot_every_days,
                "seed": cfg.training.seed,
                "label_kind": cfg.label.kind,
                "label_event_type": cfg.label.event_type,
                "label_horizon_hours": cfg.label.horizon_hours,
                "train_days": f"{train['as_of_date'].min()}..{train['as_of_date'].max()}",
                "test_period": f"{test['as_of_date'].min()}..{test['as_of_date'].max()}",
                **({"ground_truth": ground_truth_path} if ground_truth_path else {}),
            }
        )
        mlflow.log_metrics(metrics)
        mlflow.log_dict(
            {"feature_set": cfg.feature_set, "feature_names": names, "context": context}, "feature_names.json"
        )
        _log_evaluation(cfg, booster, test, pred)
        log_holdout(test)
        X = pd.DataFrame(_matrix(test, names), columns=names)
        example = X.dropna().head(3) if not X.dropna().empty else X.head(3).fillna(0.0)
        info = mlflow.xgboost.log_model(
            booster,
            name="model",
            signature=infer_signature(X, pred),
            input_example=example,
            registered_model_name=name if register else None,
            # serving reads the inputs and the context encodings from here (serving.models)
            metadata={"feature_set": cfg.feature_set, "feature_names": names, "context": context, "model": name},
            pip_requirements=_pip_requirements(),
        )
        run_id = run.info.run_id
    if not register:
        return TrainResult(name, None, run_id, metrics, ts.table, dict(ts.inputs))
    version = int(info.registered_model_version)
    for key, value in tags.items():
        if key != "features":
            client.set_model_version_tag(name, str(version), key, value)
    if cfg.description:
        client.update_registered_model(name, description=cfg.description)
    return TrainResult(name, version, run_id, metrics, ts.table, dict(ts.inputs))


def main(argv: list[str] | None = None) -> int:
    import argparse

    from features.config import load_settings
    from pipelines.session import get_spark
    from training.tuning import with_tuning

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--ground-truth", default=None)
    parser.add_argument("--reproduce", default=None, metavar="RUN_ID")
    parser.add_argument("--tune", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--env", default=None)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)
    settings = load_settings(args.env, args.workdir)
    config = (
        None
        if args.reproduce
        else with_tuning(load_model_config(settings, args.model), tune=args.tune, trials=args.trials)
    )
    spark = get_spark(settings, app_name=f"train-{args.model}")
    try:
        if args.reproduce:
            from training.reproduce import reproduce

            outcome = reproduce(spark, settings, args.model, args.reproduce)
            print(json.dumps(outcome.to_dict(), indent=2, default=str))
            return 0 if outcome.identical else 1
        result = train_model(spark, settings, args.model, args.ground_truth, config=config)
    finally:
        spark.stop()
    print(json.dumps(result.to_dict(), indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
