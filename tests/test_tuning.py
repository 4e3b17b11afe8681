"""Hyper-parameter search (a declaration's ``tuning:``): what a data scientist may declare."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from features.config import Settings
from features.errors import ConfigError
from features.model_config import DEFAULT_SPACE, ModelConfig, load_model_config
from training.dataset import LABEL

DAY0 = date(2026, 10, 1)
DAYS = 12
PLAYERS = 60
TEST_DAYS = 2
TRIALS = 6
SPACE = {
    "eta": {"low": 0.05, "high": 0.3, "log": True},
    "max_depth": {"low": 2, "high": 5},
    "min_child_weight": {"choices": [1, 5, 10]},
}


def declaration(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "offer",
        "feature_set": "player_activity_v1",
        "features": ["store_view_count_1d", "purchase_count_30d"],
        "label": {"event_type": "purchase", "horizon_hours": 24},
        # One thread: two OpenMP threads on a busy 2-core machine wait on each other every round.
        "training": {
            "test_days": TEST_DAYS,
            "num_boost_round": 60,
            "early_stopping_rounds": 5,
            "xgboost": {"nthread": 1},
        },
        "quality_gate": {"min_auc": 0.6, "max_auc_drop_vs_champion": 0.01},
        "response": {"tiers": [{"min_score": 0.0, "content": {"offer": "free_daily_gift"}}]},
        "fallback": {"content": {"offer": "free_daily_gift"}},
        "tuning": {"trials": TRIALS, "space": SPACE},
    }
    base.update(overrides)
    return base


def config(**overrides: Any) -> ModelConfig:
    return ModelConfig.model_validate(declaration(**overrides))


def rows(seed: int = 7, days: int = DAYS) -> pd.DataFrame:
    """Daily snapshots where more store views make a purchase the next day likelier."""
    rng = np.random.default_rng(seed)
    out = []
    for d in range(days):
        day = DAY0 + timedelta(days=d)
        for p in range(PLAYERS):
            views = int(rng.poisson(1.5))
            out.append(
                {
                    "game_id": "demo",
                    "player_id": f"p{p:03d}",
                    "as_of_date": day,
                    "as_of": datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=UTC),
                    "store_view_count_1d": float(views),
                    "purchase_count_30d": float(rng.poisson(0.3)),
                    LABEL: int(rng.random() < 1 / (1 + math.exp(3.0 - 1.2 * views))),
                }
            )
    return pd.DataFrame(out)


def last_days(frame: pd.DataFrame) -> set[date]:
    return set(sorted(frame["as_of_date"].unique())[-TEST_DAYS:])


# --- declaring a search ---------------------------------------------------------------------


@pytest.fixture
def models_dir(tmp_path: Path, settings: Settings) -> tuple[Settings, Path]:
    folder = tmp_path / "models"
    folder.mkdir()
    return settings.model_copy(update={"models_dir": str(folder)}), folder


def refusal(models_dir: tuple[Settings, Path], tuning_section: Any, **overrides: Any) -> str:
    settings, folder = models_dir
    path = folder / "offer.yaml"
    path.write_text(yaml.safe_dump(declaration(tuning=tuning_section, **overrides)))
    with pytest.raises(ConfigError) as err:
        load_model_config(settings, "offer")
    message = str(err.value)
    assert str(path) in message
    return message


def test_the_shipped_models_declare_no_search_so_the_demo_stays_fast(settings: Settings) -> None:
    assert load_model_config(settings, "store_offer").tuning is None
    assert load_model_config(settings, "churn_risk").tuning is None


def test_an_empty_tuning_section_searches_the_default_space_twenty_times_judged_by_auc() -> None:
    spec = config(tuning={}).tuning
    assert spec is not None and spec.trials == 20 and spec.space == DEFAULT_SPACE
    assert spec.metric_for(config().label) == "auc"
    assert spec.seed_for(config().training) == 42  # training.seed unless sampler_seed says otherwise


def test_a_regression_is_judged_by_rmse_by_default() -> None:
    cfg = config(label={"kind": "regression", "event_type": "purchase", "horizon_hours": 24, "value": "price_usd"})
    assert cfg.tuning is not None and cfg.tuning.metric_for(cfg.label) == "rmse"


def test_an_unknown_setting_in_the_space_is_refused_naming_it_and_the_tunable_ones(models_dir) -> None:
    message = refusal(models_dir, {"space": {"max_detph": {"low": 2, "high": 6}}})
    assert "'tuning.space'" in message and "'max_detph' is not a booster setting" in message
    assert "max_depth" in message and "nthread" not in message.split("tunable:")[1]


def test_a_range_whose_low_is_above_its_high_is_refused_naming_the_setting(models_dir) -> None:
    message = refusal(models_dir, {"space": {"eta": {"low": 0.3, "high": 0.05}}})
    assert "'tuning.space.eta'" in message and "low 0.3 is above high 0.05" in message


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"space": {"max_depth": {"low": 2.5, "high": 6}}}, "'max_depth' is an integer setting"),
        ({"space": {"eta": {"low": 0.1, "high": 2.0}}}, "'eta': 2.0 is outside what training.xgboost accepts"),
        ({"space": {"eta": {"low": 0, "high": 0.3, "log": True}}}, "a log scale needs low > 0"),
        ({"space": {"eta": {"low": 0.1}}}, "needs both 'low' and 'high'"),
        ({"space": {"eta": {"low": 0.1, "high": 0.2, "choices": [0.1]}}}, "either 'choices' or 'low'/'high'"),
        ({"space": {"nthread": {"low": 1, "high": 2}}}, "'nthread' is not a booster setting"),
        ({"space": {}}, "at least one booster setting"),
        ({"trials": 0}, "'tuning.trials'"),
        ({"trails": 5}, "unknown key 'tuning.trails'"),
        ({"metric": "rmse"}, "metric 'rmse' does not judge a occurrence label"),
    ],
)
def test_a_search_that_cannot_run_as_declared_is_refused_at_load(models_dir, section, expected) -> None:
    assert expected in refusal(models_dir, section)
