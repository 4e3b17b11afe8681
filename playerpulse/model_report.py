"""``playerpulse report model NAME``: a model's health from ``gold.predictions`` and its training set.

Score distribution over time, fallback rate by reason, challenger against champion, live AUC
(each prediction labelled once its label window has ended, overall and per answering version)
beside the champion's test AUC, flagged when it falls more than ``alerts.max_live_auc_drop``
below it, and the population stability index (PSI) of every serving feature against the
model's training set (``gold.training_NAME`` at the version the champion was trained on),
flagged past ``alerts.max_psi``. ``model_figures`` computes the numbers once; the page,
``--check`` and the tests all read them. What the loader found to compare with (the champion's
MLflow run, the training version read, the newest event) arrives as a ``ModelContext``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from features.monitoring_config import AlertsConfig
from playerpulse.report_html import Report, Section, figure, png_data_uri

if TYPE_CHECKING:
    import pandas as pd

PSI_BINS = 10
_EPS = 1e-4


def psi(expected: Sequence[float | None], actual: Sequence[float | None], bins: int = PSI_BINS) -> float | None:
    """Population stability index of ``actual`` against ``expected``: bins at the deciles of
    ``expected`` (missing values are a bin of their own), ``sum((a - e) * ln(a / e))`` over bins.
    ``None`` when either side is empty."""
    import numpy as np

    e = np.array([np.nan if v is None else float(v) for v in expected], dtype=float)
    a = np.array([np.nan if v is None else float(v) for v in actual], dtype=float)
    if not len(e) or not len(a):
        return None
    known = e[~np.isnan(e)]
    edges = np.unique(np.quantile(known, np.linspace(0, 1, bins + 1))) if len(known) else np.array([0.0])
    inner = edges[1:-1]
    if len(edges) == 1:  # one value trained: below it, it, above it (else every value is one bin)
        inner = np.array([edges[0], np.nextafter(edges[0], np.inf)])

    def shares(x):
        missing = np.isnan(x)
        idx = np.searchsorted(inner, x[~missing], side="right")
        counts = np.bincount(idx, minlength=len(inner) + 1).astype(float)
        counts = np.append(counts, missing.sum())
        return np.clip(counts / len(x), _EPS, None)

    pe, pa = shares(e), shares(a)
    return float(np.sum((pa - pe) * np.log(pa / pe)))


NOT_ENOUGH_LABELS = "not enough labelled predictions"
"""What the page shows for an AUC when the labelled predictions lack a class."""


@dataclass(frozen=True)
class ModelContext:
    """What a model's live figures are compared with, as ``report_command.load_model`` found it."""

    champion_version: int | None = None
    """The version behind the ``champion`` alias (``None``: no registered champion)."""
    champion_test_auc: float | None = None
    """``test_auc`` of the MLflow run that trained the champion."""
    training_version: int | None = None
    """Delta version of ``gold.training_NAME`` the PSI's expected side was read at."""
    training_note: str | None = None
    """Which training data the PSI compares with, and why (a vacuumed version: the latest)."""
    labels_until: datetime | None = None
    """The newest event in the lake (UTC): label windows ending by then are complete."""
    label_note: str | None = None
    """Why predictions carry no labels (no events table, a regression label), when they do not."""


@dataclass(frozen=True)
class LiveAUC:
    labelled: int = 0
    """Answered predictions (fallbacks excluded) with a score and a label."""
    positives: int = 0
    auc: float | None = None
    """ROC AUC of score against label; ``None`` when a class is missing."""


def live_auc(labels: Sequence[float], scores: Sequence[float]) -> LiveAUC:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    y = np.asarray(labels, dtype=float)
    p = np.asarray(scores, dtype=float)
    n, positives = len(y), int((y == 1).sum())
    auc = float(roc_auc_score(y, p)) if 0 < positives < n else None
    return LiveAUC(labelled=n, positives=positives, auc=auc)


@dataclass
class ModelFigures:
    predictions: int
    fallback_rate: float | None
    fallbacks_by_reason: dict[str, int]
    versions: dict[int, int]
    """Answering version → predictions it answered."""
    psi: dict[str, float | None]
    champion_mean: float | None = None
    challenger_mean: float | None = None
    paired: int = 0
    """Predictions scored by both champion and challenger (shadow or split traffic)."""
    score_quantiles: dict[str, float] = field(default_factory=dict)
    live: LiveAUC = field(default_factory=LiveAUC)
    """Live AUC over every answered, labelled prediction."""
    live_by_version: dict[int, LiveAUC] = field(default_factory=dict)
    """Answering version → its live AUC."""
    awaiting_labels: int = 0
    """Answered predictions whose label window has not ended yet (no ``label``)."""
    champion_version: int | None = None
    champion_test_auc: float | None = None


def model_figures(
    predictions: pd.DataFrame,
    training: pd.DataFrame,
    features: Sequence[str],
    context: ModelContext | None = None,
) -> ModelFigures:
    """The numbers of one model's report: ``predictions`` rows of ``gold.predictions`` (its
    ``features`` as a dict per row; ``label`` where known, see
    ``pipelines.monitoring.label_predictions``), ``training`` the training set's feature columns."""
    context = context or ModelContext()
    n = len(predictions)
    fallback = predictions["fallback"].fillna(False).astype(bool) if n else predictions.get("fallback")
    by_reason = predictions.loc[fallback, "reason"].fillna("unknown").value_counts().to_dict() if n else {}
    answered = predictions.loc[~fallback] if n else predictions
    versions = answered["version"].dropna().astype(int).value_counts().sort_index().to_dict() if n else {}
    served = [f or {} for f in answered["features"]] if n else []
    drift = {
        name: psi(
            list(training[name]) if name in training else [],
            [row.get(name) for row in served],
        )
        for name in features
    }
    scores = answered["score"].dropna().astype(float) if n else []
    out = ModelFigures(
        predictions=n,
        fallback_rate=(float(fallback.sum()) / n) if n else None,
        fallbacks_by_reason={str(k): int(v) for k, v in by_reason.items()},
        versions={int(k): int(v) for k, v in versions.items()},
        psi=drift,
        score_quantiles={q: float(scores.quantile(p)) for q, p in (("p05", 0.05), ("p50", 0.5), ("p95", 0.95))}
        if len(scores)
        else {},
        champion_version=context.champion_version,
        champion_test_auc=context.champion_test_auc,
    )
    if n and "label" in answered:
        known = answered.dropna(subset=["label", "score"])
        out.awaiting_labels = int(answered["label"].isna().sum())
        out.live = live_auc(known["label"], known["score"])
        out.live_by_version = {
            int(v): live_auc(g["label"], g["score"]) for v, g in known.dropna(subset=["version"]).groupby("version")
        }
    if n and "challenger_score" in answered:
        paired = answered.dropna(subset=["challenger_score", "score"])
        paired = paired.loc[paired["version"] == paired["champion"]]
        out.paired = len(paired)
        if len(paired):
            out.champion_mean = float(paired["score"].mean())
            out.challenger_mean = float(paired["challenger_score"].mean())
    return out


def _drift_flag(value: float | None, answered: int, alerts: AlertsConfig) -> str:
    if value is None or value <= alerts.max_psi:
        return "ok"
    return "drifted" if answered >= alerts.min_psi_samples else f"past threshold, {answered} samples: too few"


def model_breaches(name: str, figures: ModelFigures, alerts: AlertsConfig) -> list[str]:
    out = []
    rate = figures.fallback_rate
    if rate is not None and figures.predictions >= alerts.min_samples and rate > alerts.max_fallback_rate:
        out.append(
            f"model {name}: fallback rate {rate:.1%} over {figures.predictions} predictions "
            f"(threshold {alerts.max_fallback_rate:.1%})"
        )
    answered = sum(figures.versions.values())
    for feature, value in figures.psi.items():
        if value is not None and answered >= max(alerts.min_samples, alerts.min_psi_samples) and value > alerts.max_psi:
            out.append(
                f"model {name}: feature '{feature}' drifted from its training set, PSI {value:.3f} "
                f"(threshold {alerts.max_psi:.3f})"
            )
    drop = alerts.max_live_auc_drop
    v, test_auc = figures.champion_version, figures.champion_test_auc
    live = figures.live_by_version.get(v) if v is not None else None
    if (
        drop is not None
        and test_auc is not None
        and live is not None
        and live.auc is not None
        and live.labelled >= alerts.min_samples
        and test_auc - live.auc > drop
    ):
        out.append(
            f"model {name}: live AUC of champion v{v} is {live.auc:.3f} over {live.labelled} labelled predictions, "
            f"{test_auc - live.auc:.3f} below its test AUC {test_auc:.3f} (threshold {drop:.3f})"
        )
    return out


def _score_over_time(predictions: pd.DataFrame) -> str | None:
    import pandas as pd

    sel = predictions.dropna(subset=["score"])
    if sel.empty:
        return None
    buckets = pd.cut(sel["served_at"], bins=min(12, max(1, sel["served_at"].nunique())))
    groups = [(iv, g["score"].astype(float).to_numpy()) for iv, g in sel.groupby(buckets, observed=True)]
    fig, (ax,) = figure(height=3.0)
    ax.boxplot([g for _, g in groups], showfliers=False)
    ax.set_xticks(range(1, len(groups) + 1), [iv.mid.strftime("%m-%d %H:%M") for iv, _ in groups], fontsize=7)
    ax.set_ylabel("score")
    ax.set_title("score per time bucket", fontsize=10)
    return png_data_uri(fig)


def _bars(values: dict[str, float], title: str, threshold: float | None = None) -> str | None:
    if not values:
        return None
    fig, (ax,) = figure(height=2.8)
    names = list(values)
    heights = [values[k] for k in names]
    colors = ["#b00020" if threshold is not None and h > threshold else "#3b6ea5" for h in heights]
    ax.bar(names, heights, color=colors)
    if threshold is not None:
        ax.axhline(threshold, color="#b00020", linestyle="--", linewidth=1)
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", labelsize=8, rotation=20)
    return png_data_uri(fig)


def _challenger(predictions: pd.DataFrame) -> str | None:
    paired = predictions.dropna(subset=["challenger_score", "score"])
    if paired.empty:
        return None
    fig, (ax,) = figure(width=5, height=4)
    ax.scatter(paired["score"], paired["challenger_score"], s=8, alpha=0.6)
    ax.plot([0, 1], [0, 1], color="#999", linewidth=1)
    ax.set_xlabel("answering (champion) score")
    ax.set_ylabel("challenger score")
    ax.set_title("challenger vs champion, same requests", fontsize=10)
    return png_data_uri(fig)


def _live_rows(f: ModelFigures) -> list[list]:
    def auc(a: LiveAUC) -> float | str:
        return NOT_ENOUGH_LABELS if a.auc is None else a.auc

    rows = [["all answering versions", f.live.labelled, f.live.positives, auc(f.live), None]]
    versions = sorted({*f.live_by_version, *([f.champion_version] if f.champion_version is not None else [])})
    for v in versions:
        a = f.live_by_version.get(v, LiveAUC())
        champion = v == f.champion_version
        label = f"v{v} (champion)" if champion else f"v{v}"
        rows.append([label, a.labelled, a.positives, auc(a), f.champion_test_auc if champion else None])
    return rows


def _live_note(f: ModelFigures, context: ModelContext, alerts: AlertsConfig) -> str:
    if context.label_note:
        head = context.label_note
    elif context.labels_until is None:
        head = "No labels yet: there are no events in the lake to label predictions with."
    else:
        head = (
            f"Answered predictions (fallbacks excluded) whose label window ended by the newest event in the lake "
            f"({context.labels_until:%Y-%m-%d %H:%M} UTC), labelled as the training set labels a snapshot taken "
            f"at served_at; {f.awaiting_labels} more await their label."
        )
    if f.champion_version is None:
        tail = "No registered champion: no test AUC to compare with."
    elif f.champion_test_auc is None:
        tail = f"Champion v{f.champion_version}'s MLflow run records no test_auc."
    elif alerts.max_live_auc_drop is None:
        tail = "alerts.max_live_auc_drop is off."
    else:
        tail = (
            f"Flagged when champion v{f.champion_version}'s live AUC is more than alerts.max_live_auc_drop = "
            f"{alerts.max_live_auc_drop} below its test AUC, once at least alerts.min_samples = "
            f"{alerts.min_samples} of its predictions are labelled."
        )
    return f"{head} {tail}"


def model_report(
    name: str,
    predictions: pd.DataFrame,
    training: pd.DataFrame,
    features: Sequence[str],
    alerts: AlertsConfig,
    context: ModelContext | None = None,
) -> Report:
    context = context or ModelContext()
    f = model_figures(predictions, training, features, context)
    report = Report(
        f"PlayerPulse model health: {name}",
        f"{f.predictions} logged predictions from gold.predictions; training set rows: {len(training)}"
        + ("." if context.training_version is None else f" (version {context.training_version})."),
        breaches=model_breaches(name, f, alerts),
    )
    rate = "–" if f.fallback_rate is None else f"{f.fallback_rate:.1%}"
    reasons = sorted(f.fallbacks_by_reason.items())
    psi_rows = [[k, v, _drift_flag(v, sum(f.versions.values()), alerts)] for k, v in sorted(f.psi.items())]
    n = max(f.predictions, 1)
    report.sections += [
        Section(
            "Summary",
            table=(
                ("figure", "value"),
                [
                    ["predictions", f.predictions],
                    ["fallback rate", rate],
                    *[[f"answered by v{v}", c] for v, c in f.versions.items()],
                    *[[f"score {q}", s] for q, s in f.score_quantiles.items()],
                ],
            ),
        ),
        Section("Score distribution over time", image=_score_over_time(predictions)),
        Section(
            "Fallback rate by reason",
            image=_bars({k: c / n for k, c in reasons}, "share of predictions", alerts.max_fallback_rate),
            table=(("reason", "predictions"), [list(r) for r in reasons]),
        ),
        Section(
            "Challenger vs champion",
            image=_challenger(predictions),
            table=(
                ("", "mean score", "requests"),
                [["champion", f.champion_mean, f.paired], ["challenger", f.challenger_mean, f.paired]],
            ),
        ),
        Section(
            "Drift of serving features against the training set (PSI)",
            image=_bars({k: v for k, v in f.psi.items() if v is not None and math.isfinite(v)}, "PSI", alerts.max_psi),
            table=(("feature", "PSI", "flag"), psi_rows),
            note=" ".join(
                filter(
                    None,
                    [
                        context.training_note,
                        f"Flagged past alerts.max_psi = {alerts.max_psi} from alerts.min_psi_samples = "
                        f"{alerts.min_psi_samples} answered predictions (fewer give a PSI of about "
                        "(bins - 1) / n from sampling alone).",
                    ],
                )
            ),
        ),
        Section(
            "Live AUC: labels joined back",
            table=(("answering version", "labelled predictions", "positives", "live AUC", "test AUC"), _live_rows(f)),
            note=_live_note(f, context, alerts),
        ),
    ]
    return report
