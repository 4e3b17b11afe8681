"""Fitting on context: the search's trials and the final booster take the context columns after the
features, so a field the label depends on is learned.

A tiny pandas training set (as ``training.dataset`` writes it: context encoded) goes through
``training.train.fit_and_measure`` inside a real MLflow run, with and without a search; no Spark.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_tuning import declaration

from features.config import Settings, load_settings
from features.model_config import ModelConfig
from tests_support import PLATFORM_CONTEXT
from training.dataset import LABEL
from training.registry import ensure_experiment, tracking_client
from training.train import Fitted, fit_and_measure

DAY0 = date(2026, 10, 1)
PLATFORM = PLATFORM_CONTEXT


def rows(days: int = 10, players: int = 60) -> pd.DataFrame:
    """Snapshots whose label is the platform (android buys) and nothing else."""
    rng = np.random.default_rng(3)
    out = []
    for d in range(days):
        day = DAY0 + timedelta(days=d)
        for p in range(players):
            platform = int(rng.integers(0, 3))
            out.append(
                {
                    "game_id": "demo",
                    "player_id": f"p{p:03d}",
                    "as_of_date": day,
                    "as_of": datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=UTC),
                    "store_view_count_1d": float(rng.poisson(1.5)),
                    "purchase_count_30d": float(rng.poisson(0.3)),
                    "platform": float(platform),
                    LABEL: int(rng.random() < (0.9 if platform == 1 else 0.05)),
                }
            )
    return pd.DataFrame(out)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings("local", tmp_path_factory.mktemp("context-fit") / "var")


def fitted(store: Settings, **overrides: Any) -> Fitted:
    import mlflow

    cfg = ModelConfig.model_validate(declaration(context=[PLATFORM], **overrides))
    with mlflow.start_run(experiment_id=ensure_experiment(store, tracking_client(store))):
        return fit_and_measure(rows(), cfg)


@pytest.mark.parametrize("tuning", [None, {"trials": 2, "space": {"max_depth": {"low": 2, "high": 3}}}])
def test_the_fit_learns_from_the_context_columns_after_the_features(store: Settings, tuning: Any) -> None:
    fit = fitted(store, tuning=tuning)
    assert list(fit.booster.feature_names or []) == ["store_view_count_1d", "purchase_count_30d", "platform"]
    assert fit.metrics["test_auc"] > 0.85
    if tuning is not None:  # the trials, judged on the validation days, saw the context too
        assert fit.metrics["tuning_best_valid_auc"] > 0.85
