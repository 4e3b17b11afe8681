"""Hyper-parameter search (a declaration's ``tuning:``): what a data scientist may declare, and
what a search does: only the training days, one nested MLflow run per trial, the best settings
recorded and used, the same trials again from the same seed.

The searches run for real (Optuna, xgboost, an MLflow SQLite store under a temporary folder) on
a tiny pandas training set through ``training.train.fit_and_measure``, the part of a training
run after Spark has built the rows, so no Spark session is needed.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from features.config import Settings, load_settings
from features.errors import ConfigError, TrainingFailed
from features.model_config import DEFAULT_SPACE, ModelConfig, load_model_config
from playerpulse.cli import main
from training import tuning
from training.dataset import LABEL
from training.registry import ensure_experiment, tracking_client
from training.train import Fitted, fit_and_measure
from training.tuning import with_tuning

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


def test_the_command_line_turns_a_search_on_off_or_changes_its_trials() -> None:
    untuned = config(tuning=None)
    assert with_tuning(untuned) is untuned
    assert with_tuning(untuned, tune=True).tuning.space == DEFAULT_SPACE  # type: ignore[union-attr]
    assert with_tuning(untuned, trials=3).tuning.trials == 3  # type: ignore[union-attr]
    assert with_tuning(config(), trials=3).tuning.space == config().tuning.space  # type: ignore[union-attr]
    assert with_tuning(config(), tune=False).tuning is None
    with pytest.raises(ConfigError, match="--no-tune and --trials 3 contradict"):
        with_tuning(config(), tune=False, trials=3)


def test_train_offers_tune_and_trials_and_refuses_them_with_reproduce(capsys, tmp_path) -> None:
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--tune" in out and "--no-tune" in out and "--trials" in out
    assert main(["train", "store_offer", "--reproduce", "abc", "--trials", "3", "--workdir", str(tmp_path)]) == 2
    assert "cannot change it" in " ".join(capsys.readouterr().err.split())
    assert main(["train", "store_offer", "--no-tune", "--trials", "3", "--workdir", str(tmp_path)]) == 1
    assert "--no-tune and --trials 3 contradict" in " ".join(capsys.readouterr().err.split())


# --- running a search -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A real MLflow SQLite store and artifact folder, as the local profile lays them out."""
    return load_settings("local", tmp_path_factory.mktemp("tuning") / "var")


def measured(store: Settings, frame: pd.DataFrame, cfg: ModelConfig) -> tuple[str, Fitted]:
    """``fit_and_measure`` inside a training run of its own, as ``train_model`` calls it."""
    import mlflow

    experiment_id = ensure_experiment(store, tracking_client(store))
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{cfg.name}-train") as run:
        return run.info.run_id, fit_and_measure(frame, cfg)


@pytest.fixture(scope="module")
def searched(store: Settings) -> tuple[str, Fitted, list[pd.DataFrame]]:
    """One search, with every frame handed to ``tune`` recorded."""
    seen: list[pd.DataFrame] = []
    real = tuning.tune
    with pytest.MonkeyPatch.context() as mp:

        def spy(train: pd.DataFrame, cfg: ModelConfig, **kwargs: Any) -> tuning.TuningResult:
            seen.append(train.copy())
            return real(train, cfg, **kwargs)

        mp.setattr(tuning, "tune", spy)
        run_id, fitted = measured(store, rows(), config())
    return run_id, fitted, seen


def children(store: Settings, parent: str) -> list[Any]:
    client = tracking_client(store)
    return client.search_runs([ensure_experiment(store, client)], filter_string=f"tags.mlflow.parentRunId = '{parent}'")


def test_each_trial_is_a_run_nested_in_the_training_run_with_its_settings_and_metric(searched, store) -> None:
    parent, _, _ = searched
    trials = children(store, parent)
    assert len(trials) == TRIALS
    assert sorted(t.info.run_name for t in trials) == [f"offer-trial-{n:03d}" for n in range(TRIALS)]
    for trial in trials:
        assert trial.data.tags["mlflow.parentRunId"] == parent
        assert {f"xgb_{name}" for name in SPACE} <= set(trial.data.params)
        assert 0.5 < trial.data.metrics["valid_auc"] <= 1 and trial.data.metrics["rounds"] >= 1


def test_the_training_run_records_the_best_trial_and_settings_that_lie_in_the_space(searched, store) -> None:
    parent, fitted, _ = searched
    run = tracking_client(store).get_run(parent)
    params = run.data.params
    assert params["tuning_trials"] == str(TRIALS) and params["tuning_metric"] == "auc"
    best = next(t for t in children(store, parent) if t.data.params["trial"] == params["tuning_best_trial"])
    best_auc = fitted.metrics["tuning_best_valid_auc"]  # logged by train_model with the test metrics
    assert (
        best_auc == best.data.metrics["valid_auc"] == max(t.data.metrics["valid_auc"] for t in children(store, parent))
    )
    eta, depth, weight = (float(params[f"tuning_best_{k}"]) for k in ("eta", "max_depth", "min_child_weight"))
    assert 0.05 <= eta <= 0.3 and 2 <= depth <= 5 and depth == int(depth) and weight in (1, 5, 10)
    assert fitted.tuning is not None and fitted.config.training.xgboost.eta == fitted.tuning.best_params["eta"]


def test_the_final_booster_uses_the_best_settings_and_stops_at_the_best_trials_round(searched) -> None:
    _, fitted, _ = searched
    assert fitted.tuning is not None
    xgb = fitted.config.training.xgboost
    assert {k: getattr(xgb, k) for k in SPACE} == fitted.tuning.best_params
    assert fitted.rounds == fitted.tuning.best_rounds
    assert "test_auc" in fitted.metrics and len(fitted.test) == TEST_DAYS * PLAYERS


def test_the_search_is_handed_the_training_days_only(searched) -> None:
    _, fitted, seen = searched
    [handed] = seen
    assert set(handed["as_of_date"]) == set(fitted.train["as_of_date"])
    assert not set(handed["as_of_date"]) & last_days(rows())
    assert fitted.tuning is not None
    first_test_day = min(last_days(rows())).isoformat()
    assert fitted.tuning.validation_days.split("..")[1] < first_test_day


def test_whatever_the_test_days_hold_the_search_proposes_and_scores_the_same_trials(searched, store) -> None:
    _, fitted, _ = searched
    frame = rows()
    last = frame["as_of_date"].isin(last_days(frame))
    frame.loc[last, LABEL] = 1 - frame.loc[last, LABEL]
    frame.loc[last, "store_view_count_1d"] = 0.0
    _, other = measured(store, frame, config())
    assert other.tuning is not None and fitted.tuning is not None
    assert other.tuning.best_params == fitted.tuning.best_params
    pd.testing.assert_frame_equal(
        other.tuning.trials.drop(columns="seconds"), fitted.tuning.trials.drop(columns="seconds")
    )
    assert other.metrics["test_auc"] != fitted.metrics["test_auc"]  # the changed test days were measured


def test_the_same_seed_and_rows_give_the_same_trials_and_best_settings(searched, store) -> None:
    _, fitted, _ = searched
    _, again = measured(store, rows(), config())
    assert again.tuning is not None and fitted.tuning is not None
    assert again.tuning.best_params == fitted.tuning.best_params
    pd.testing.assert_frame_equal(
        again.tuning.trials.drop(columns="seconds"), fitted.tuning.trials.drop(columns="seconds")
    )
    assert again.metrics == fitted.metrics


def test_another_sampler_seed_proposes_other_trials(searched, store) -> None:
    _, fitted, _ = searched
    _, other = measured(store, rows(), config(tuning={"trials": TRIALS, "space": SPACE, "sampler_seed": 7}))
    assert other.tuning is not None and fitted.tuning is not None
    assert not np.allclose(other.tuning.trials["eta"], fitted.tuning.trials["eta"])


def test_the_search_summary_is_logged_as_a_table_a_plot_and_importances(searched, store) -> None:
    parent, _, _ = searched
    client = tracking_client(store)
    assert {a.path for a in client.list_artifacts(parent, "tuning")} == {
        "tuning/trials.csv",
        "tuning/trials.png",
        "tuning/importance.csv",
    }
    table = pd.read_csv(client.download_artifacts(parent, "tuning/trials.csv"))
    assert list(table["trial"]) == list(range(TRIALS))
    assert table["best_so_far"].is_monotonic_increasing and table["best_so_far"].iloc[-1] == table["auc"].max()
    importance = pd.read_csv(client.download_artifacts(parent, "tuning/importance.csv"))
    assert set(importance["setting"]) == set(SPACE)


def test_a_regression_search_minimises_rmse(store) -> None:
    frame = rows(days=8)
    frame[LABEL] = frame["store_view_count_1d"] * 2.0 + np.random.default_rng(1).normal(0, 1, len(frame))
    cfg = config(
        label={"kind": "regression", "event_type": "purchase", "horizon_hours": 24, "value": "price_usd"},
        tuning={"trials": 3, "space": {"max_depth": {"low": 1, "high": 4}}},
    )
    parent, fitted = measured(store, frame, cfg)
    assert fitted.tuning is not None and fitted.tuning.direction == "minimize"
    assert fitted.tuning.best_value == fitted.tuning.trials["rmse"].min()
    logged = {a.path for a in tracking_client(store).list_artifacts(parent, "tuning")}
    assert logged == {"tuning/trials.csv", "tuning/trials.png"}  # three trials: too few for importances


def test_a_timeout_stops_the_search_before_its_trials_are_done_and_the_run_says_how_many_ran(store) -> None:
    cfg = config(tuning={"trials": 500, "timeout_minutes": 0.0001, "space": SPACE})  # 6 ms
    parent, fitted = measured(store, rows(), cfg)
    params = tracking_client(store).get_run(parent).data.params
    assert fitted.tuning is not None and 1 <= len(fitted.tuning.trials) < 500
    assert params["tuning_trials"] == str(len(fitted.tuning.trials)) and params["tuning_trials_requested"] == "500"


def test_too_few_training_days_to_validate_a_search_is_refused_saying_why(store) -> None:
    with pytest.raises(TrainingFailed, match=r"tuning .offer. needs more training days than training\.test_days"):
        measured(store, rows(days=2 * TEST_DAYS), config())
