"""What a trained version is measured by on its time-based holdout, and the artifacts that show it.

Pure functions of labels and scores (and of the booster, for importance), so each is tested on
numbers worked out by hand. ``train`` logs them with the ``test_`` prefix; ``validate`` computes
the same ones when it re-scores a version and the champion on the holdout rows.

- classification: AUC, log loss, Brier score, expected calibration error (with the reliability
  table it is computed from, and its plot), lift in the top decile of scores;
- regression: RMSE, MAE, R²;
- against the simulator's ground truth: the AUC the true probabilities reach on the same rows
  (``auc_ceiling``) and the model's distance below it as a *difference* (``auc_gap_to_ceiling``),
  because a ratio near 1 hides how much ranking is still left to win;
- gain importance: the mean loss reduction of the splits on each feature, as a table and a plot.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.errors import TrainingFailed
from training.dataset import LABEL

if TYPE_CHECKING:
    import xgboost as xgb

TOP_SHARE = 0.1
"""Top decile: the share of highest-scored rows whose label rate ``top_decile_lift`` compares."""


def _bin_index(proba: np.ndarray, bins: int) -> np.ndarray:
    return np.minimum((np.asarray(proba, dtype=np.float64) * bins).astype(np.int64), bins - 1)


def expected_calibration_error(y: np.ndarray, proba: np.ndarray, bins: int) -> float:
    """Row-weighted mean of |mean predicted − observed rate| over ``bins`` equal-width
    probability bins (a probability of exactly 1.0 falls in the last bin)."""
    if len(y) == 0:
        raise ValueError("expected_calibration_error needs at least one row")
    p = np.asarray(proba, dtype=np.float64)
    idx = _bin_index(p, bins)
    predicted = np.bincount(idx, weights=p, minlength=bins)
    observed = np.bincount(idx, weights=np.asarray(y, dtype=np.float64), minlength=bins)
    return float(np.abs(predicted - observed).sum() / len(p))


CALIBRATION_NOISE_DRAWS = 2000
"""Label sets drawn by ``calibration_noise``: a stable 95th percentile, in about a millisecond."""


def calibration_noise(proba: np.ndarray, bins: int, quantile: float = 0.95, seed: int = 0) -> float:
    """The expected calibration error a *perfectly calibrated* model reaches on rows scored
    ``proba``, at its ``quantile`` over label sets drawn from the scores themselves.

    ECE is a sum of absolute gaps, so sampling alone makes it positive: on ~450 rows at a 10%
    base rate a calibrated model shows ~0.03-0.05, and fewer rows or a higher rate give more,
    which a fixed bound would refuse. Below this figure a measured ECE cannot be told apart from
    noise; on large holdouts it falls towards 0 and the configured bound decides alone. Each
    bin's positives are drawn as Binomial(rows, mean score of the bin), which slightly
    overstates the spread of scores that differ within a bin. Seeded: the same rows always give
    the same figure, so a validation is reproducible."""
    p = np.clip(np.asarray(proba, dtype=np.float64), 0.0, 1.0)
    if len(p) == 0:
        raise ValueError("calibration_noise needs at least one row")
    idx = _bin_index(p, bins)
    rows = np.bincount(idx, minlength=bins)
    predicted = np.bincount(idx, weights=p, minlength=bins)
    mean = np.divide(predicted, rows, out=np.zeros(bins), where=rows > 0)
    observed = np.random.default_rng(seed).binomial(rows, mean, size=(CALIBRATION_NOISE_DRAWS, bins))
    eces = np.abs(observed - predicted[None, :]).sum(axis=1) / len(p)
    return float(np.quantile(eces, quantile))


def reliability_table(y: np.ndarray, proba: np.ndarray, bins: int) -> pd.DataFrame:
    """Per equal-width bin: its bounds, rows, mean predicted probability and observed rate
    (empty bins are left out): what ``expected_calibration_error`` sums, to read and plot."""
    p = np.asarray(proba, dtype=np.float64)
    idx = _bin_index(p, bins)
    rows = np.bincount(idx, minlength=bins)
    predicted = np.bincount(idx, weights=p, minlength=bins)
    observed = np.bincount(idx, weights=np.asarray(y, dtype=np.float64), minlength=bins)
    used = rows > 0
    return pd.DataFrame(
        {
            "bin_low": np.arange(bins)[used] / bins,
            "bin_high": (np.arange(bins)[used] + 1) / bins,
            "rows": rows[used],
            "mean_predicted": predicted[used] / rows[used],
            "observed_rate": observed[used] / rows[used],
        }
    )


def top_decile_lift(y: np.ndarray, proba: np.ndarray) -> float:
    """Label rate among the ``TOP_SHARE`` highest-scored rows over the overall rate: how many
    times more often a targeted player converts (or churns) than a random one. Ties at the cut
    are broken by row order, so the top decile always holds ``ceil(rows / 10)`` rows."""
    y = np.asarray(y, dtype=np.float64)
    if len(y) == 0 or y.mean() == 0:
        raise ValueError("top_decile_lift needs rows with at least one positive label")
    top = max(1, int(np.ceil(len(y) * TOP_SHARE)))
    order = np.argsort(-np.asarray(proba, dtype=np.float64), kind="stable")
    return float(y[order[:top]].mean() / y.mean())


def classification_metrics(y: np.ndarray, proba: np.ndarray, bins: int = 10) -> dict[str, float]:
    """The holdout metrics of a classifier, keyed as the training run logs them."""
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    p = np.asarray(proba, dtype=np.float64)
    return {
        "test_auc": float(roc_auc_score(y, p)),
        "test_logloss": float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "test_brier": float(brier_score_loss(y, p)),
        "test_calibration_error": expected_calibration_error(y, p, bins),
        "test_top_decile_lift": top_decile_lift(y, p),
        "base_rate": float(np.mean(y)),
    }


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The holdout metrics of a regressor: RMSE, MAE, R² and the mean target for scale."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y = np.asarray(y, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    return {
        "test_rmse": float(np.sqrt(mean_squared_error(y, pred))),
        "test_mae": float(mean_absolute_error(y, pred)),
        "test_r2": float(r2_score(y, pred)),
        "label_mean": float(y.mean()),
    }


def ceiling_metrics(test: pd.DataFrame, proba: np.ndarray, ground_truth_path: str, column: str) -> dict[str, float]:
    """How close the model gets to the simulator's true probabilities on the same rows.

    ``ground_truth_path`` is a parquet of ``player_id, date`` and ``column`` (``p_purchase``,
    ``p_churn_7d``), where ``date`` is the first day of the label window (``as_of_date + 1``).
    ``auc_gap_to_ceiling`` is ``auc_ceiling`` minus the model's AUC on those matched rows.
    """
    from sklearn.metrics import roc_auc_score

    truth = pd.read_parquet(ground_truth_path)
    if column not in truth.columns:
        raise TrainingFailed(
            f"ground truth {ground_truth_path} has no column '{column}' (it has {list(truth.columns)}): "
            "simulate again with this version, or fix label.ground_truth"
        )
    truth = truth[["player_id", "date", column]].assign(date=pd.to_datetime(truth["date"]).dt.date)
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
    ceiling = float(roc_auc_score(y, matched[column].to_numpy()))
    model_auc = float(roc_auc_score(y, matched["model_p"].to_numpy()))
    return {
        "auc_ceiling": ceiling,
        "auc_on_ceiling_rows": model_auc,
        "auc_gap_to_ceiling": ceiling - model_auc,
        "ceiling_rows": float(len(matched)),
    }


def gain_importance(booster: xgb.Booster, names: list[str]) -> pd.DataFrame:
    """Every input feature with its mean gain per split and share of the total (0 for a feature
    no tree splits on), highest first."""
    gains = booster.get_score(importance_type="gain")
    splits = booster.get_score(importance_type="weight")
    table = pd.DataFrame(
        {
            "feature": names,
            "gain": [float(gains.get(n, 0.0)) for n in names],
            "splits": [int(splits.get(n, 0)) for n in names],
        }
    )
    total = table["gain"].sum()
    table["gain_share"] = table["gain"] / total if total > 0 else 0.0
    return table.sort_values(["gain", "feature"], ascending=[False, True], kind="stable").reset_index(drop=True)


def reliability_plot(table: pd.DataFrame, title: str, path: Path) -> Path:
    """Observed rate against mean predicted probability per bin, with the diagonal a calibrated
    model lies on; marker area follows the rows in the bin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    try:
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="calibrated")
        sizes = 20 + 400 * table["rows"] / max(1, int(table["rows"].max()))
        ax.plot(table["mean_predicted"], table["observed_rate"], color="tab:blue")
        ax.scatter(table["mean_predicted"], table["observed_rate"], s=sizes, color="tab:blue", label="holdout bins")
        top = float(max(table["mean_predicted"].max(), table["observed_rate"].max(), 0.05))
        ax.set(xlim=(0, min(1.0, top * 1.1)), ylim=(0, min(1.0, top * 1.1)))
        ax.set(xlabel="mean predicted probability", ylabel="observed rate", title=title)
        ax.legend(loc="upper left")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def importance_plot(table: pd.DataFrame, title: str, path: Path) -> Path:
    """Horizontal bars of gain per feature, highest at the top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = table.iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.3 * len(shown) + 1)))
    try:
        ax.barh(shown["feature"], shown["gain"], color="tab:green")
        ax.set(xlabel="mean gain per split", title=title)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path
