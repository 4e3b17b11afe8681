"""Train one declared model, log it to MLflow and register it; validation decides the rest.

The split is by time (the last ``test_days`` snapshot days are the test set), because the model
will score tomorrow's players with yesterday's data; a random split would let a player's
adjacent days leak across it. Early stopping watches the days just *before* the test period,
and the final booster is refit on the whole training period with that many rounds, so the test
set is used exactly once: to measure.

A new version is always registered (its run is the record of what was tried) with its test
rows logged as the holdout, and gets no alias here: ``training.validate`` re-scores it and the
champion on those rows and makes it ``challenger`` if it passes the model's quality gate, and
``training.promote`` makes a validated version ``champion``.

Run directly: ``spark-submit training/train.py MODEL [--ground-truth PATH]``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.config import Settings, repo_root
from features.errors import TrainingFailed
from features.model_config import ModelConfig, load_model_config
from training.dataset import LABEL, build_training_set
from training.registry import ensure_experiment, log_holdout, tracking_client

if TYPE_CHECKING:
    import xgboost as xgb
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class TrainResult:
    name: str
    version: int
    """The registered version, with no alias yet: ``playerpulse validate`` decides."""
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
    return {
        **cfg.training.xgboost.model_dump(),
        "objective": "binary:logistic",
        # Early stopping watches the *last* metric: logloss, which rewards calibrated probabilities.
        # Stopping on AUC halted at the first round on small sets (ranking peaks early), leaving
        # scores squeezed around the base rate, which validation's calibration check refuses.
        "eval_metric": ["auc", "logloss"],
        "tree_method": "hist",
        "device": "cpu",
        "seed": cfg.training.seed,
    }


def fit_booster(train: pd.DataFrame, cfg: ModelConfig) -> tuple[xgb.Booster, int]:
    """The booster fit on all of ``train`` and its number of rounds (chosen by early stopping
    on the last ``test_days`` days of ``train`` when configured)."""
    import xgboost as xgb

    names, t = cfg.feature_names, cfg.training
    params = _xgb_params(cfg)
    rounds = t.num_boost_round
    days = sorted(train["as_of_date"].unique())
    if t.early_stopping_rounds is not None and len(days) > t.test_days:
        fit, valid = split_by_time(train, t.test_days)
        y_fit, y_valid = fit[LABEL].to_numpy(), valid[LABEL].to_numpy()
        if len(np.unique(y_fit)) == 2 and len(np.unique(y_valid)) == 2:
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


def classification_metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import log_loss, roc_auc_score

    return {
        "test_auc": float(roc_auc_score(y, proba)),
        "test_logloss": float(log_loss(y, np.clip(proba, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "base_rate": float(np.mean(y)),
    }


def ceiling_metrics(test: pd.DataFrame, proba: np.ndarray, ground_truth_path: str) -> dict[str, float]:
    """How close the model gets to the simulator's true purchase probabilities on the same rows.

    ``ground_truth_path`` is a parquet of ``player_id, date, p_purchase`` where ``date`` is the
    label day (``as_of_date + 1``). ``auc_vs_ceiling`` is the model's AUC on the matched rows
    divided by ``ceiling_auc``: 1.0 means the model ranks players as well as the truth can.
    """
    from sklearn.metrics import roc_auc_score

    truth = pd.read_parquet(ground_truth_path, columns=["player_id", "date", "p_purchase"])
    truth = truth.assign(date=pd.to_datetime(truth["date"]).dt.date)
    rows = test[["player_id", "as_of_date", LABEL]].assign(
        model_p=proba, date=[d + timedelta(days=1) for d in test["as_of_date"]]
    )
    matched = rows.merge(truth, on=["player_id", "date"], how="inner")
    y = matched[LABEL].to_numpy()
    if len(np.unique(y)) < 2:
        raise TrainingFailed(
            f"ground truth {ground_truth_path} matches {len(matched)} test rows with a single label: "
            "check that it covers the test days (date = snapshot day + 1) and the same player ids"
        )
    ceiling = float(roc_auc_score(y, matched["p_purchase"].to_numpy()))
    model_auc = float(roc_auc_score(y, matched["model_p"].to_numpy()))
    return {"ceiling_auc": ceiling, "auc_vs_ceiling": model_auc / ceiling, "ceiling_rows": float(len(matched))}


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


def train_model(
    spark: SparkSession,
    settings: Settings,
    name: str,
    ground_truth_path: str | None = None,
) -> TrainResult:
    """Build the point-in-time set, train, and log and register a version with its holdout rows.

    The version gets no alias: ``training.validate.validate`` decides whether it may serve.
    """
    import mlflow
    import mlflow.xgboost
    from mlflow.models import infer_signature

    cfg = load_model_config(settings, name)
    ts = build_training_set(spark, settings, cfg)
    rows = ts.df.toPandas().sort_values(["as_of", "game_id", "player_id"], kind="stable").reset_index(drop=True)
    if rows.empty:
        raise TrainingFailed(
            f"{ts.table} is empty: no snapshot has {cfg.training.min_history_days} days of history "
            f"and a fully observed {cfg.label.horizon_hours} h label window"
        )
    train, test = split_by_time(rows, cfg.training.test_days)
    _require_both_classes(train[LABEL].to_numpy(), "training")
    _require_both_classes(test[LABEL].to_numpy(), "test")

    names = cfg.feature_names
    booster, rounds = fit_booster(train, cfg)
    proba = booster.inplace_predict(_matrix(test, names))
    metrics = classification_metrics(test[LABEL].to_numpy(), proba)
    metrics.update(
        rows=float(len(rows)),
        train_rows=float(len(train)),
        test_rows=float(len(test)),
        train_base_rate=float(train[LABEL].mean()),
    )
    if ground_truth_path is not None:
        metrics.update(ceiling_metrics(test, proba, ground_truth_path))

    client = tracking_client(settings)
    experiment_id = ensure_experiment(settings, client)
    lineage = {f"lineage.{table}": str(v) for table, v in ts.inputs.items()}
    tags = {
        "model": name,
        "feature_set": cfg.feature_set,
        "features": json.dumps(names),
        "training_table": ts.table,
        "training_table_version": str(ts.version),
        **lineage,
    }
    commit = git_commit()
    if commit:
        tags["git_commit"] = commit
    X = pd.DataFrame(_matrix(test, names), columns=names)
    example = X.dropna().head(3) if not X.dropna().empty else X.head(3).fillna(0.0)

    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{name}-train", tags=tags) as run:
        mlflow.log_params(
            {
                **{f"xgb_{k}": v for k, v in cfg.training.xgboost.model_dump().items()},
                "num_boost_round": cfg.training.num_boost_round,
                "rounds_used": rounds,
                "early_stopping_rounds": cfg.training.early_stopping_rounds,
                "test_days": cfg.training.test_days,
                "min_history_days": cfg.training.min_history_days,
                "seed": cfg.training.seed,
                "label_event_type": cfg.label.event_type,
                "label_horizon_hours": cfg.label.horizon_hours,
                "train_days": f"{train['as_of_date'].min()}..{train['as_of_date'].max()}",
                "test_period": f"{test['as_of_date'].min()}..{test['as_of_date'].max()}",
            }
        )
        mlflow.log_metrics(metrics)
        mlflow.log_dict({"feature_set": cfg.feature_set, "feature_names": names}, "feature_names.json")
        log_holdout(test)
        info = mlflow.xgboost.log_model(
            booster,
            name="model",
            signature=infer_signature(X, proba.astype(np.float64)),
            input_example=example,
            registered_model_name=name,
            metadata={"feature_set": cfg.feature_set, "feature_names": names, "model": name},
            pip_requirements=_pip_requirements(),
        )
        run_id = run.info.run_id
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

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--ground-truth", default=None)
    parser.add_argument("--env", default=None)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)
    settings = load_settings(args.env, args.workdir)
    spark = get_spark(settings, app_name=f"train-{args.model}")
    try:
        result = train_model(spark, settings, args.model, args.ground_truth)
    finally:
        spark.stop()
    print(json.dumps(result.to_dict(), indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
