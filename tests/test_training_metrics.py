"""Holdout metrics and the training-set expectations, on numbers small enough to check by hand
(no Spark: these are pure functions of labels, scores and rows)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from features.config import Settings
from features.errors import TrainingFailed
from features.model_config import ModelConfig
from training.data_checks import declared_checks, validate_training_rows
from training.metrics import (
    ceiling_metrics,
    classification_metrics,
    gain_importance,
    regression_metrics,
    reliability_table,
    top_decile_lift,
)
from training.validate import validate


def test_top_decile_lift_is_the_label_rate_of_the_highest_tenth_over_the_overall_rate() -> None:
    y = np.array([1, 0] + [0] * 8 + [1, 1, 0, 0, 0, 0, 0, 0, 0, 0])  # 20 rows, 3 positive
    scores = np.linspace(1.0, 0.0, 20)  # rows 0 and 1 are the top decile
    assert top_decile_lift(y, scores) == pytest.approx((1 / 2) / (3 / 20))


def test_the_reliability_table_holds_each_non_empty_bins_mean_prediction_and_observed_rate() -> None:
    y = np.array([0, 1, 1, 1])
    proba = np.array([0.05, 0.15, 0.85, 0.95])
    table = reliability_table(y, proba, bins=2)
    assert table["rows"].tolist() == [2, 2]
    assert table["mean_predicted"].tolist() == pytest.approx([0.1, 0.9])
    assert table["observed_rate"].tolist() == pytest.approx([0.5, 1.0])


def test_classification_metrics_include_brier_calibration_and_lift() -> None:
    y = np.array([0, 0, 1, 1])
    proba = np.array([0.1, 0.2, 0.7, 0.9])
    m = classification_metrics(y, proba, bins=10)
    assert m["test_auc"] == 1.0
    assert m["test_brier"] == pytest.approx((0.01 + 0.04 + 0.09 + 0.01) / 4)
    assert m["test_calibration_error"] == pytest.approx((0.1 + 0.2 + 0.3 + 0.1) / 4)
    assert m["test_top_decile_lift"] == pytest.approx(2.0)  # the single top row is positive; base rate 1/2
    assert m["base_rate"] == 0.5


def test_regression_metrics_are_rmse_mae_and_r2() -> None:
    m = regression_metrics(np.array([0.0, 0.0, 10.0]), np.array([1.0, 0.0, 7.0]))
    assert m["test_rmse"] == pytest.approx(np.sqrt((1 + 0 + 9) / 3))
    assert m["test_mae"] == pytest.approx(4 / 3)
    assert m["label_mean"] == pytest.approx(10 / 3)


def test_the_ceiling_is_a_difference_between_the_truths_auc_and_the_models_on_the_same_rows(tmp_path: Path) -> None:
    test = pd.DataFrame(
        {"player_id": ["a", "b", "c", "d"], "as_of_date": [date(2026, 10, 1)] * 4, "label": [0, 1, 0, 1]}
    )
    truth = pd.DataFrame(
        {"player_id": ["a", "b", "c", "d"], "date": [date(2026, 10, 2)] * 4, "p_churn_7d": [0.1, 0.9, 0.2, 0.8]}
    )
    truth.to_parquet(tmp_path / "truth.parquet")
    model = np.array([0.1, 0.3, 0.4, 0.9])  # ranks one positive below one negative: AUC 0.75
    m = ceiling_metrics(test, model, str(tmp_path / "truth.parquet"), "p_churn_7d")
    assert (m["auc_ceiling"], m["auc_on_ceiling_rows"]) == (1.0, 0.75)
    assert m["auc_gap_to_ceiling"] == pytest.approx(0.25)


def test_gain_importance_lists_every_feature_and_puts_the_informative_one_first() -> None:
    import xgboost as xgb

    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 2))
    y = (x[:, 0] + 0.1 * rng.normal(size=400) > 0).astype(int)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2, "nthread": 1},
        xgb.DMatrix(x, label=y, feature_names=["signal", "noise"]),
        10,
    )
    table = gain_importance(booster, ["signal", "noise", "unused"])
    assert table["feature"].tolist()[0] == "signal"
    assert set(table["feature"]) == {"signal", "noise", "unused"}
    assert table.loc[table["feature"] == "unused", "gain"].item() == 0.0
    assert table["gain_share"].sum() == pytest.approx(1.0)


# --- Great Expectations on the training set ---------------------------------------------------


def declaration(label: dict[str, Any] | None = None, **expectations: Any) -> dict[str, Any]:
    return {
        "name": "offer",
        "feature_set": "player_activity_v1",
        "features": ["store_view_count_1d", "session_count_7d"],
        "label": label or {"event_type": "purchase", "horizon_hours": 24},
        "training": {"test_days": 1},
        "quality_gate": {"min_auc": 0.6, "max_auc_drop_vs_champion": 0.01},
        "response": {"tiers": [{"min_score": 0.0, "content": {}}]},
        "fallback": {"content": {}},
        "expectations": expectations,
    }


def config(**expectations: Any) -> ModelConfig:
    return ModelConfig.model_validate(declaration(**expectations))


def test_validating_a_regression_model_is_refused_because_the_gate_judges_classifiers(
    settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "models").mkdir()
    spend = {"kind": "regression", "event_type": "purchase", "horizon_hours": 168, "value": "price_usd"}
    (tmp_path / "models" / "offer.yaml").write_text(yaml.safe_dump(declaration(spend)))
    own = settings.model_copy(update={"models_dir": str(tmp_path / "models")})
    with pytest.raises(TrainingFailed, match=r"regression label.*judges classifiers only"):
        validate(own, "offer")


def rows(labels: list[int], views: list[float | None]) -> pd.DataFrame:
    n = len(labels)
    return pd.DataFrame(
        {
            "game_id": ["demo"] * n,
            "player_id": [f"p{i}" for i in range(n)],
            "as_of_date": [date(2026, 10, 1)] * n,
            "as_of": [datetime(2026, 10, 1, 23, 59, 59, tzinfo=UTC)] * n,
            "store_view_count_1d": views,
            "session_count_7d": [3.0] * n,
            "label": labels,
        }
    )


def test_keys_and_label_are_always_required_non_null() -> None:
    described = [c.description for c in declared_checks(config())]
    assert [d.split(":")[1].split()[0] for d in described] == ["game_id", "player_id", "as_of_date", "as_of", "label"]


def test_a_training_set_within_its_declared_bounds_passes() -> None:
    cfg = config(label_share={"low": 0.2, "high": 0.6}, ranges={"store_view_count_1d": {"low": 0, "high": 10}})
    checked = validate_training_rows(rows([0, 1, 0, 1], [0, 2, None, 10]), cfg)
    assert checked.success and checked.evaluated == 7 and checked.failed == ()


def test_a_label_share_outside_its_bounds_fails_naming_the_expectation() -> None:
    checked = validate_training_rows(rows([1, 1, 1, 0], [0, 1, 2, 3]), config(label_share={"low": 0.0, "high": 0.5}))
    assert not checked.success
    [failure] = checked.failed
    assert failure.startswith("expectations.label_share") and "observed 0.75" in failure


def test_a_feature_out_of_range_and_a_null_required_feature_both_fail_with_row_counts() -> None:
    cfg = config(not_null=["store_view_count_1d"], ranges={"store_view_count_1d": {"low": 0, "high": 5}})
    checked = validate_training_rows(rows([0, 1, 0, 1], [None, 7, 9, 1]), cfg)
    assert sorted(checked.failed) == [
        "expectations.not_null: store_view_count_1d must never be null (1 rows break it)",
        "expectations.ranges.store_view_count_1d: values must lie in [0.0, 5.0] (2 rows break it)",
    ]
