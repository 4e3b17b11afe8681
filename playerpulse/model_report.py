"""``playerpulse report model NAME``: a model's health from ``gold.predictions`` and its training set.

Score distribution over time, fallback rate by reason, challenger against champion, and the
population stability index (PSI) of every serving feature against the model's training set
(``gold.training_NAME``), flagged past ``alerts.max_psi``. ``model_figures`` computes the
numbers once; the page, ``--check`` and the tests all read them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
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

    def shares(x):
        missing = np.isnan(x)
        idx = np.searchsorted(inner, x[~missing], side="right")
        counts = np.bincount(idx, minlength=len(inner) + 1).astype(float)
        counts = np.append(counts, missing.sum())
        return np.clip(counts / len(x), _EPS, None)

    pe, pa = shares(e), shares(a)
    return float(np.sum((pa - pe) * np.log(pa / pe)))


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


def model_figures(predictions: pd.DataFrame, training: pd.DataFrame, features: Sequence[str]) -> ModelFigures:
    """The numbers of one model's report: ``predictions`` rows of ``gold.predictions`` (its
    ``features`` as a dict per row), ``training`` the training set's feature columns."""
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
    )
    if n and "challenger_score" in answered:
        paired = answered.dropna(subset=["challenger_score", "score"])
        paired = paired.loc[paired["version"] == paired["champion"]]
        out.paired = len(paired)
        if len(paired):
            out.champion_mean = float(paired["score"].mean())
            out.challenger_mean = float(paired["challenger_score"].mean())
    return out


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
        if value is not None and answered >= alerts.min_samples and value > alerts.max_psi:
            out.append(
                f"model {name}: feature '{feature}' drifted from its training set, PSI {value:.3f} "
                f"(threshold {alerts.max_psi:.3f})"
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


def model_report(
    name: str, predictions: pd.DataFrame, training: pd.DataFrame, features: Sequence[str], alerts: AlertsConfig
) -> Report:
    f = model_figures(predictions, training, features)
    report = Report(
        f"PlayerPulse model health: {name}",
        f"{f.predictions} logged predictions from gold.predictions; training set rows: {len(training)}.",
        breaches=model_breaches(name, f, alerts),
    )
    rate = "–" if f.fallback_rate is None else f"{f.fallback_rate:.1%}"
    reasons = sorted(f.fallbacks_by_reason.items())
    psi_rows = [[k, v, "drifted" if v is not None and v > alerts.max_psi else "ok"] for k, v in sorted(f.psi.items())]
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
            note=f"Flagged past alerts.max_psi = {alerts.max_psi}. Live AUC needs labels joined back: not yet.",
        ),
    ]
    return report
