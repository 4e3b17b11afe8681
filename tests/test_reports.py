"""The latency and model reports: their figures are the data's, their pages are self-contained,
and their checks name each breached threshold."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from features.errors import ConfigError
from features.monitoring_config import AlertsConfig
from playerpulse.latency_report import latency_breaches, latency_figures, latency_report
from playerpulse.model_report import (
    NOT_ENOUGH_LABELS,
    LiveAUC,
    ModelContext,
    model_breaches,
    model_figures,
    model_report,
    psi,
)
from playerpulse.report_command import parse_since

T0 = datetime(2026, 12, 1, 10, 0)


def latency_rows() -> pd.DataFrame:
    """stream: 1..100 ms over 100 minutes; collector 5 ms; two micro-batches; one iterator age."""
    rows = [(T0 + timedelta(minutes=i), "profiles", i, "stream", float(i + 1)) for i in range(100)]
    rows += [(T0 + timedelta(minutes=i), "profiles", i, "collector", 5.0) for i in range(30)]
    rows += [(T0, "profiles", 0, "micro_batch", 80.0), (T0, "profiles", 1, "micro_batch", 120.0)]
    rows += [(T0, "profiles", 0, "iterator_age", 70_000.0)]
    return pd.DataFrame(rows, columns=["at", "source", "batch", "hop", "ms"])


def test_latency_figures_are_nearest_rank_percentiles_of_the_samples():
    f = latency_figures(latency_rows())
    assert (f["stream"].n, f["stream"].p50, f["stream"].p95, f["stream"].p99) == (100, 50.0, 95.0, 99.0)
    assert (f["micro_batch"].n, f["micro_batch"].max) == (2, 120.0)
    assert f["serve"].n == 0 and f["serve"].p95 is None


def test_the_latency_page_shows_its_figures_and_embeds_every_plot():
    page = latency_report(latency_rows(), AlertsConfig(), "all time").html()

    assert re.search(r"<td>stream</td><td>100</td><td>50</td><td>95</td><td>99</td>", page)
    assert page.count('src="data:image/png;base64,') == 4  # distributions, percentiles, backlog, batches
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing to fetch


def test_a_latency_check_names_each_breached_threshold():
    alerts = AlertsConfig(hop_p95_ms={"stream": 90, "collector": 10}, max_iterator_age_ms=60_000)
    assert latency_breaches(latency_figures(latency_rows()), alerts) == [
        "latency: p95 of hop 'stream' is 95 ms over 100 samples (threshold 90 ms)",
        "latency: stream backlog (iterator age) reached 70000 ms (threshold 60000 ms)",
    ]


def test_a_latency_check_passes_within_thresholds_and_ignores_a_hop_with_few_samples():
    alerts = AlertsConfig(hop_p95_ms={"stream": 100, "collector": 1}, max_iterator_age_ms=80_000, min_samples=31)
    assert latency_breaches(latency_figures(latency_rows()), alerts) == []


def test_psi_is_zero_for_the_same_population_and_large_for_a_shifted_one():
    rng = np.random.default_rng(0)
    train = list(rng.normal(0, 1, 5000))
    assert psi(train, list(rng.normal(0, 1, 5000))) < 0.02
    assert psi(train, list(rng.normal(1.5, 1, 5000))) > 0.5


def test_psi_flags_a_feature_served_off_the_single_value_it_was_trained_on():
    assert psi([9.0] * 100, [9.0] * 100) < 0.01
    assert psi([9.0] * 100, [4.0] * 100) > 1.0
    assert psi([9.0] * 100, [12.0] * 100) > 1.0


def predictions(n: int = 40, fallbacks: int = 4, shift: float = 0.0) -> pd.DataFrame:
    rows = []
    for i in range(n):
        fb = i < fallbacks
        rows.append(
            {
                "served_at": T0 + timedelta(minutes=i),
                "model": "store_offer",
                "version": None if fb else 2,
                "champion": 2,
                "challenger": 3,
                "challenger_score": None if fb else 0.6,
                "score": None if fb else 0.4,
                "fallback": fb,
                "reason": "no_profile" if fb else None,
                "features": None if fb else {"sessions": float(i % 10) + shift, "views": float(i % 5)},
            }
        )
    return pd.DataFrame(rows)


def training() -> pd.DataFrame:
    return pd.DataFrame({"sessions": [float(i % 10) for i in range(400)], "views": [float(i % 5) for i in range(400)]})


def test_model_figures_are_those_of_the_logged_predictions():
    f = model_figures(predictions(), training(), ["sessions", "views"])
    assert (f.predictions, f.fallback_rate, f.fallbacks_by_reason, f.versions) == (40, 0.1, {"no_profile": 4}, {2: 36})
    assert (f.champion_mean, f.challenger_mean, f.paired) == (pytest.approx(0.4), pytest.approx(0.6), 36)
    assert f.psi["views"] < 0.01


def test_a_model_check_names_the_fallback_rate_and_each_drifted_feature():
    f = model_figures(predictions(shift=8.0), training(), ["sessions", "views"])
    breaches = model_breaches("store_offer", f, AlertsConfig(max_fallback_rate=0.05, max_psi=0.25, min_psi_samples=36))
    assert breaches[0] == "model store_offer: fallback rate 10.0% over 40 predictions (threshold 5.0%)"
    assert len(breaches) == 2 and breaches[1].startswith("model store_offer: feature 'sessions' drifted")


def test_drift_is_shown_but_not_alerted_on_from_fewer_than_min_psi_samples_predictions():
    f = model_figures(predictions(shift=8.0), training(), ["sessions", "views"])
    alerts = AlertsConfig(max_fallback_rate=0.2, min_psi_samples=37)  # 36 answered
    page = model_report("store_offer", predictions(shift=8.0), training(), ["sessions", "views"], alerts).html()
    assert model_breaches("store_offer", f, alerts) == []
    assert "past threshold, 36 samples: too few" in page


def test_a_model_check_passes_within_thresholds():
    f = model_figures(predictions(), training(), ["sessions", "views"])
    assert model_breaches("store_offer", f, AlertsConfig(max_fallback_rate=0.2)) == []


def test_the_model_page_embeds_its_plots_and_flags_drift():
    alerts = AlertsConfig(min_psi_samples=36)
    page = model_report("store_offer", predictions(shift=8.0), training(), ["sessions", "views"], alerts).html()
    assert page.count('src="data:image/png;base64,') == 4  # scores, fallbacks, challenger, PSI
    assert "<td>sessions</td>" in page and "drifted" in page
    assert "<td>no_profile</td><td>4</td>" in page


def labelled(scores_match_labels: bool, version_3_from: int = 40) -> pd.DataFrame:
    """predictions(): 4 fallbacks, then rows 4..35 labelled 1 on even rows and 0 on odd ones,
    scored 0.9/0.1 as the label says (or the reverse); rows 36..39 still await their label.
    Rows from ``version_3_from`` on were answered by v3."""
    df = predictions()
    for i in range(4, 40):
        label = None if i >= 36 else float(i % 2 == 0)
        high = (label == 1.0) == scores_match_labels
        df.loc[i, ["label", "score"]] = [label, 0.9 if high else 0.1]
        if i >= version_3_from:
            df.loc[i, "version"] = 3
    df.loc[0, "label"] = 1.0  # a fallback's label counts nowhere
    return df


CHAMPION = ModelContext(champion_version=2, champion_test_auc=0.9)


def test_live_auc_is_one_for_scores_that_are_the_labels_and_zero_for_their_reverse():
    right = model_figures(labelled(True), training(), ["sessions", "views"], CHAMPION)
    wrong = model_figures(labelled(False), training(), ["sessions", "views"], CHAMPION)

    assert right.live == LiveAUC(labelled=32, positives=16, auc=1.0)
    assert wrong.live == LiveAUC(labelled=32, positives=16, auc=0.0)
    assert (right.awaiting_labels, right.champion_version, right.champion_test_auc) == (4, 2, 0.9)


def test_live_auc_per_answering_version_counts_its_own_predictions_and_needs_both_classes():
    df = labelled(True, version_3_from=35)  # v3 answered rows 35..39: only row 35 is labelled, a 0
    f = model_figures(df, training(), ["sessions", "views"], CHAMPION)

    assert f.live_by_version == {2: LiveAUC(31, 16, 1.0), 3: LiveAUC(1, 0, None)}
    page = model_report("store_offer", df, training(), ["sessions", "views"], AlertsConfig(), CHAMPION).html()
    assert "<td>v2 (champion)</td><td>31</td><td>16</td><td>1.000</td><td>0.900</td>" in page
    assert f"<td>v3</td><td>1</td><td>0</td><td>{NOT_ENOUGH_LABELS}</td><td>–</td>" in page


def test_a_model_check_names_a_live_auc_drop_below_the_champions_test_auc():
    f = model_figures(labelled(False), training(), ["sessions", "views"], CHAMPION)
    alerts = AlertsConfig(max_fallback_rate=0.2, max_live_auc_drop=0.05)
    assert model_breaches("store_offer", f, alerts) == [
        "model store_offer: live AUC of champion v2 is 0.000 over 32 labelled predictions, 0.900 below its test "
        "AUC 0.900 (threshold 0.050)"
    ]
    assert model_breaches("store_offer", f, AlertsConfig(max_fallback_rate=0.2, max_live_auc_drop=None)) == []
    assert model_breaches("store_offer", f, AlertsConfig(max_fallback_rate=0.2, min_samples=33)) == []


def test_a_model_check_passes_when_live_auc_holds_up():
    f = model_figures(labelled(True), training(), ["sessions", "views"], CHAMPION)
    assert model_breaches("store_offer", f, AlertsConfig(max_fallback_rate=0.2, max_live_auc_drop=0.0)) == []


def test_since_takes_an_iso_time_or_an_age():
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert parse_since("6h", now) == datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    assert parse_since("2026-11-30", now) == datetime(2026, 11, 30, tzinfo=UTC)
    with pytest.raises(ConfigError, match="--since 'yesterday'"):
        parse_since("yesterday", now)
