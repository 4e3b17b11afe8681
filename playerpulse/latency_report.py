"""``playerpulse report latency``: hop-by-hop latency from ``gold.latency``, as HTML and as checks.

``latency_figures`` turns the table's rows into the numbers every plot and check uses
(nearest-rank percentiles, ``features.latency``), so what the page shows, what ``--check``
compares with ``alerts`` and what the tests assert are the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from features.latency import HOP_NAMES, nearest_rank
from features.monitoring_config import AlertsConfig
from playerpulse.report_html import Report, Section, figure, png_data_uri

if TYPE_CHECKING:
    import pandas as pd

BATCH_HOPS = ("micro_batch", "iterator_age")
"""Rows of ``gold.latency`` that describe a micro-batch rather than an event's hop."""
TIME_BUCKETS = 24


@dataclass(frozen=True)
class HopFigures:
    hop: str
    n: int
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


def hop_figures(rows: pd.DataFrame, hop: str) -> HopFigures:
    values = [float(v) for v in rows.loc[rows["hop"] == hop, "ms"].dropna()]
    return HopFigures(
        hop,
        len(values),
        nearest_rank(values, 50),
        nearest_rank(values, 95),
        nearest_rank(values, 99),
        max(values) if values else None,
    )


def latency_figures(rows: pd.DataFrame) -> dict[str, HopFigures]:
    """Figures of every hop (in data-flow order) and of ``micro_batch`` and ``iterator_age``."""
    return {hop: hop_figures(rows, hop) for hop in (*HOP_NAMES, *BATCH_HOPS)}


def latency_breaches(figures: dict[str, HopFigures], alerts: AlertsConfig) -> list[str]:
    """One line per threshold of ``alerts`` the figures break; hops with fewer than
    ``min_samples`` samples are never alerted on (a quiet window is no outage)."""
    out = []
    for hop, limit in alerts.hop_p95_ms.items():
        f = figures.get(hop)
        if f is not None and f.n >= alerts.min_samples and f.p95 is not None and f.p95 > limit:
            out.append(f"latency: p95 of hop '{hop}' is {f.p95:.0f} ms over {f.n} samples (threshold {limit:.0f} ms)")
    age = figures["iterator_age"]
    if age.max is not None and age.max > alerts.max_iterator_age_ms:
        out.append(
            f"latency: stream backlog (iterator age) reached {age.max:.0f} ms "
            f"(threshold {alerts.max_iterator_age_ms:.0f} ms)"
        )
    return out


def _over_time(rows: pd.DataFrame, hop: str) -> tuple[list[datetime], dict[str, list[float | None]]]:
    """p50/p95/p99 of ``hop`` per time bucket (``TIME_BUCKETS`` over the window)."""
    import pandas as pd

    sel = rows.loc[rows["hop"] == hop, ["at", "ms"]].dropna()
    if sel.empty:
        return [], {}
    buckets = pd.cut(sel["at"], bins=min(TIME_BUCKETS, max(1, sel["at"].nunique())))
    times, lines = [], {"p50": [], "p95": [], "p99": []}
    for interval, group in sel.groupby(buckets, observed=True):
        values = [float(v) for v in group["ms"]]
        times.append(interval.mid)
        for q in (50, 95, 99):
            lines[f"p{q}"].append(nearest_rank(values, q))
    return times, lines


def _distributions(rows: pd.DataFrame, hops: list[str]) -> str | None:
    import numpy as np

    if not hops:
        return None
    fig, axes = figure(width=10, height=2.6 * ((len(hops) + 1) // 2), ncols=2, nrows=(len(hops) + 1) // 2)
    for ax, hop in zip(axes, hops, strict=False):
        values = rows.loc[rows["hop"] == hop, "ms"].dropna().to_numpy(dtype=float)
        positive = np.clip(values, 0.1, None)
        low, high = positive.min(), positive.max()
        if high / low < 3:  # a narrow spread: linear bins (a log axis would show nothing)
            ax.hist(positive, bins=np.linspace(low * 0.9, high * 1.1 + 0.1, 20), color="#3b6ea5")
        else:
            ax.hist(positive, bins=np.logspace(np.log10(low), np.log10(high * 1.01), 30), color="#3b6ea5")
            ax.set_xscale("log")
        ax.set_title(f"{hop} (n={len(values)})", fontsize=10)
        ax.set_xlabel("ms")
    for ax in axes[len(hops) :]:
        ax.set_visible(False)
    return png_data_uri(fig)


def _percentiles_over_time(rows: pd.DataFrame, hops: list[str]) -> str | None:
    if not hops:
        return None
    fig, axes = figure(width=10, height=2.6 * len(hops), nrows=len(hops))
    for ax, hop in zip(axes, hops, strict=True):
        times, lines = _over_time(rows, hop)
        for name, values in lines.items():
            ax.plot(times, values, marker="o", markersize=3, label=name)
        ax.set_title(hop, fontsize=10)
        ax.set_ylabel("ms")
        ax.legend(fontsize=8, loc="upper left")
    return png_data_uri(fig)


def _series(rows: pd.DataFrame, hop: str, title: str, color: str) -> str | None:
    sel = rows.loc[rows["hop"] == hop, ["at", "ms"]].dropna().sort_values("at")
    if sel.empty:
        return None
    fig, (ax,) = figure(height=2.8)
    ax.plot(sel["at"], sel["ms"], marker=".", color=color)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("ms")
    return png_data_uri(fig)


def latency_report(rows: pd.DataFrame, alerts: AlertsConfig, window: str) -> Report:
    """The latency report of ``gold.latency`` rows (``at, source, batch, hop, ms``)."""
    figures = latency_figures(rows)
    present = [h for h in HOP_NAMES if figures[h].n]
    report = Report(
        "PlayerPulse latency, hop by hop",
        f"{len(rows)} samples from gold.latency, {window}.",
        breaches=latency_breaches(figures, alerts),
    )
    table_rows = [[f.hop, f.n, f.p50, f.p95, f.p99, f.max, alerts.hop_p95_ms.get(f.hop)] for f in figures.values()]
    report.sections += [
        Section(
            "Summary (ms)",
            table=(("hop", "samples", "p50", "p95", "p99", "max", "p95 threshold"), table_rows),
            note="device: event to batch sent (device clock); collector: received to durable on the stream; "
            "stream: on the stream to folded; profile_write: folded to written online; serve: profile age "
            "when a prediction read it.",
        ),
        Section("Per-hop latency distributions", image=_distributions(rows, present)),
        Section("p50 / p95 / p99 over time", image=_percentiles_over_time(rows, present)),
        Section(
            "Stream backlog (iterator age per micro-batch)",
            image=_series(rows, "iterator_age", "iterator age", "#a5523b"),
        ),
        Section("Micro-batch durations", image=_series(rows, "micro_batch", "micro-batch duration", "#3ba55c")),
    ]
    return report
