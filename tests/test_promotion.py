"""The promotion gate: validation decides and records, promotion obeys it or is forced on the
record, and every move of ``champion`` leaves a trace of who, when and why.

Versions are registered the way ``training.train`` registers them (an xgboost booster with its
feature names, and its holdout rows logged by ``log_holdout`` in the same run) into a real
MLflow SQLite store under tmp; no Spark is needed. A "good" booster learned the signal of the
holdout (buyers view the store); a "bad" one learned the opposite.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from features.config import MlflowConfig, Settings, load_settings
from features.errors import PromotionRefused
from playerpulse.cli import main
from training.metrics import calibration_noise, expected_calibration_error
from training.promote import promote, promotion_history, rollback
from training.registry import PROMOTIONS_EXPERIMENT, ensure_experiment, log_holdout, tracking_client, version_by_alias
from training.validate import validate

FEATURES = ["store_view_count_1d", "session_count_7d"]
MODEL = "offer"


def p_buy(views: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(2.5 - 1.0 * views))


def rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    views = rng.poisson(2.0, n).astype(float)
    sessions = rng.poisson(5.0, n).astype(float)
    return pd.DataFrame(
        {
            "player_id": [f"p{i:05d}" for i in range(n)],
            "store_view_count_1d": views,
            "session_count_7d": sessions,
            "label": (rng.random(n) < p_buy(views)).astype(int),
        }
    )


def booster(learns_the_signal: bool, features: list[str] = FEATURES) -> Any:
    import xgboost as xgb

    train = rows(4000, seed=1)
    y = train["label"] if learns_the_signal else 1 - train["label"]
    data = xgb.DMatrix(train[features].to_numpy(np.float32), label=y.to_numpy(), feature_names=features)
    params = {"objective": "binary:logistic", "max_depth": 2, "eta": 0.3, "nthread": 1, "seed": 0}
    return xgb.train(params, data, 30)


HOLDOUT = rows(3000, seed=2)


def declaration(**gate: float) -> dict[str, Any]:
    return {
        "name": MODEL,
        "feature_set": "player_activity_v1",
        "features": FEATURES,
        "label": {"event_type": "purchase", "horizon_hours": 24},
        "training": {"test_days": 1},
        "quality_gate": {"min_auc": 0.65, "max_auc_drop_vs_champion": 0.02, "max_calibration_error": 0.05, **gate},
        "response": {"tiers": [{"min_score": 0.0, "content": {"offer": "gift"}}]},
        "fallback": {"content": {"offer": "gift"}},
    }


def declare(settings: Settings, **gate: float) -> None:
    (Path(settings.models_dir) / f"{MODEL}.yaml").write_text(yaml.safe_dump(declaration(**gate)))


def register(settings: Settings, model: Any, holdout: pd.DataFrame = HOLDOUT, name: str = MODEL) -> int:
    """A version as ``train_model`` leaves it: booster, feature names, holdout, no alias."""
    import mlflow
    import mlflow.xgboost

    client = tracking_client(settings)
    with mlflow.start_run(experiment_id=ensure_experiment(settings, client)):
        log_holdout(holdout)
        info = mlflow.xgboost.log_model(
            model,
            name="model",
            registered_model_name=name,
            metadata={"feature_names": list(model.feature_names), "feature_set": "player_activity_v1"},
            pip_requirements=["xgboost-cpu"],  # skips MLflow's slow requirement inference
        )
    return int(info.registered_model_version)


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite file with its schema created: copying it skips the migrations per test."""
    folder = tmp_path_factory.mktemp("mlflow-template")
    settings = load_settings("local", folder / "var").model_copy(
        update={"mlflow": MlflowConfig(tracking_uri=f"sqlite:///{folder}/mlflow.db", artifact_root=str(folder))}
    )
    tracking_client(settings).search_experiments()
    return folder / "mlflow.db"


@pytest.fixture
def store(tmp_path: Path, empty_store: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings with an empty MLflow store and the declaration of model 'offer' of their own."""
    monkeypatch.setenv("PLAYERPULSE_ACTOR", "ana@studio")
    (tmp_path / "models").mkdir()
    shutil.copyfile(empty_store, tmp_path / "mlflow.db")
    mlflow = MlflowConfig(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", artifact_root=str(tmp_path / "artifacts"))
    settings = load_settings("local", tmp_path / "var").model_copy(
        update={"mlflow": mlflow, "models_dir": str(tmp_path / "models")}
    )
    declare(settings)
    return settings


@pytest.fixture
def good_champion(store: Settings) -> int:
    """Version 1, good, validated and promoted."""
    version = register(store, booster(True))
    assert validate(store, MODEL, version).passed
    promote(store, MODEL, version)
    return version


def champion_of(settings: Settings, name: str = MODEL) -> int | None:
    mv = version_by_alias(tracking_client(settings), name, "champion")
    return int(mv.version) if mv else None


def version_tags(settings: Settings, version: int) -> dict[str, str]:
    return dict(tracking_client(settings).get_model_version(MODEL, str(version)).tags)


# --- calibration -------------------------------------------------------------------------------


def test_probabilities_that_match_the_observed_rates_have_no_calibration_error() -> None:
    y = np.array([0, 0, 0, 1] * 25 + [1] * 100)
    proba = np.array([0.25] * 100 + [0.999] * 100)
    assert expected_calibration_error(y, proba, bins=10) == pytest.approx(0.0005)


def test_the_calibration_noise_floor_shrinks_as_the_holdout_grows() -> None:
    rng = np.random.default_rng(0)
    floors = [calibration_noise(rng.beta(1, 8, size=n), bins=10) for n in (300, 3000, 30000)]
    assert floors[0] > floors[1] > floors[2] > 0


def test_the_calibration_noise_floor_is_what_calibrated_labels_reach_95_times_in_100() -> None:
    rng = np.random.default_rng(1)
    proba = rng.beta(1, 8, size=500)
    floor = calibration_noise(proba, bins=10)
    calibrated = [expected_calibration_error(rng.random(500) < proba, proba, 10) for _ in range(1000)]
    assert np.mean(np.array(calibrated) <= floor) == pytest.approx(0.95, abs=0.02)


def test_the_calibration_noise_floor_of_the_same_rows_is_always_the_same() -> None:
    proba = np.random.default_rng(2).beta(1, 8, size=400)
    assert calibration_noise(proba, bins=10) == calibration_noise(proba, bins=10)


def test_calibration_error_is_the_row_weighted_gap_per_bin() -> None:
    # bin [0.1, 0.2): 100 rows predicted 0.15, 50 % positive → gap 0.35 on half the rows;
    # bin [0.9, 1.0]: 100 rows predicted 1.0 (the last bin includes 1.0), all positive → no gap.
    y = np.array([0, 1] * 50 + [1] * 100)
    proba = np.array([0.15] * 100 + [1.0] * 100)
    assert expected_calibration_error(y, proba, bins=10) == pytest.approx(0.175)


# --- validation decides and records ----------------------------------------------------------


def test_a_good_first_version_passes_validation_and_becomes_challenger(store: Settings) -> None:
    version = register(store, booster(True))
    result = validate(store, MODEL, version)
    assert result.passed, result.reason
    assert [c.name for c in result.checks] == ["min_auc", "max_auc_drop_vs_champion", "max_calibration_error"]
    assert result.aliases == ["challenger"]
    assert champion_of(store) is None  # validation never makes a champion


def test_validation_records_its_decision_on_the_version_and_as_a_run(store: Settings, good_champion: int) -> None:
    worse = register(store, booster(False))
    result = validate(store, MODEL, worse)
    tags = version_tags(store, worse)
    assert tags["validation.status"] == "failed"
    assert tags["validation.run_id"] == result.run_id
    assert tags["validation.failed_checks"] == "min_auc,max_auc_drop_vs_champion,max_calibration_error"
    assert tags["validation.champion_version"] == str(good_champion)

    run = tracking_client(store).get_run(result.run_id)
    assert run.data.tags["validation.status"] == "failed"
    assert run.data.tags["model_version"] == str(worse)
    assert run.data.params["threshold_min_auc"] == "0.65"
    assert run.data.params["threshold_max_calibration_error"] == "0.05"
    assert run.data.metrics["candidate_auc"] < 0.5 < 0.7 < run.data.metrics["champion_auc"]
    assert run.data.metrics["passed"] == 0.0


def test_the_champion_is_rescored_on_the_candidates_holdout_rows(store: Settings, good_champion: int) -> None:
    candidate = register(store, booster(True), holdout=rows(1500, seed=9))
    result = validate(store, MODEL, candidate)
    # the same booster on the same rows scores the same: the champion was re-scored, not read from a log
    assert result.champion is not None and result.champion.how == "on the same holdout rows"
    assert result.champion.auc == pytest.approx(result.metrics["auc"])


def test_a_failed_validation_takes_challenger_away(store: Settings) -> None:
    version = register(store, booster(True))
    assert validate(store, MODEL, version).aliases == ["challenger"]
    declare(store, min_auc=0.99)
    result = validate(store, MODEL, version)
    assert result.failed_checks == ["min_auc"]
    assert version_by_alias(tracking_client(store), MODEL, "challenger") is None


def shifted(holdout: pd.DataFrame, extra: float, seed: int = 3) -> pd.DataFrame:
    """The same rows with ``extra`` more of them positive: a model that ranks them well now
    under-predicts every rate."""
    out = holdout.copy()
    flip = np.random.default_rng(seed).random(len(out)) < extra
    out["label"] = np.maximum(out["label"], flip.astype(int))
    return out


def test_a_calibration_bound_refuses_a_version_that_ranks_well(store: Settings) -> None:
    result = validate(store, MODEL, register(store, booster(True), holdout=shifted(HOLDOUT, 0.3)))
    assert result.metrics["auc"] > 0.65
    assert result.failed_checks == ["max_calibration_error"]
    assert "is above max_calibration_error 0.05" in result.reason


def test_a_calibration_error_within_a_small_holdouts_sampling_noise_passes_saying_so(store: Settings) -> None:
    declare(store, max_calibration_error=0.001)
    result = validate(store, MODEL, register(store, booster(True), holdout=rows(150, seed=5)))
    assert result.passed
    assert "what a perfectly calibrated model reaches on these rows" in result.reason
    assert "not distinguishable from sampling noise" in result.reason


def test_a_miscalibrated_version_on_a_small_holdout_fails_beyond_the_sampling_noise(store: Settings) -> None:
    declare(store, max_calibration_error=0.001)
    result = validate(store, MODEL, register(store, booster(True), holdout=shifted(rows(150, seed=5), 0.3)))
    assert result.failed_checks == ["max_calibration_error"]
    assert "beyond sampling noise" in result.reason


def test_validate_defaults_to_the_newest_version(store: Settings) -> None:
    register(store, booster(True))
    newest = register(store, booster(True))
    assert validate(store, MODEL).version == newest


# --- promotion obeys validation --------------------------------------------------------------


def test_promoting_a_version_the_gate_refused_is_refused_naming_the_check(store: Settings, good_champion: int) -> None:
    worse = register(store, booster(False))
    validate(store, MODEL, worse)
    with pytest.raises(PromotionRefused, match=r"version 2 of 'offer' failed validation \(check min_auc"):
        promote(store, MODEL, worse)
    assert champion_of(store) == good_champion


def test_promoting_a_version_never_validated_is_refused(store: Settings) -> None:
    version = register(store, booster(True))
    with pytest.raises(PromotionRefused, match=r"never validated: run `playerpulse validate offer --version 1`"):
        promote(store, MODEL, version)
    assert champion_of(store) is None


def test_a_pass_against_an_older_champion_must_be_validated_again(store: Settings, good_champion: int) -> None:
    second, third = register(store, booster(True)), register(store, booster(True))
    assert validate(store, MODEL, second).passed and validate(store, MODEL, third).passed
    promote(store, MODEL, third)
    with pytest.raises(PromotionRefused, match=r"validated against champion 1 but the champion is now 3"):
        promote(store, MODEL, second)


def test_force_without_a_reason_is_refused(store: Settings) -> None:
    version = register(store, booster(False))
    with pytest.raises(PromotionRefused, match=r"--force needs --reason"):
        promote(store, MODEL, version, force=True, reason="  ")
    assert champion_of(store) is None


def test_a_forced_promotion_is_recorded_with_reason_and_actor(store: Settings, good_champion: int) -> None:
    worse = register(store, booster(False))
    validate(store, MODEL, worse)
    move = promote(store, MODEL, worse, force=True, reason="INC-42: v1 mis-serves a new market")
    assert champion_of(store) == worse and move.forced and move.actor == "ana@studio"

    tags = version_tags(store, worse)
    assert tags["promotion.forced"] == "true"
    assert tags["promotion.by"] == "ana@studio"
    assert tags["promotion.reason"] == "INC-42: v1 mis-serves a new market"
    record, first = promotion_history(store, MODEL)  # newest first
    assert first["to_version"] == str(good_champion) and first["forced"] == "false"
    assert record["run_id"] == move.record_run_id == tags["promotion.run_id"]
    assert (record["action"], record["from_version"], record["to_version"]) == ("promote", "1", "2")
    assert (record["actor"], record["forced"], record["validation.status"]) == ("ana@studio", "true", "failed")
    assert record["reason"] == "INC-42: v1 mis-serves a new market"
    assert record["at"]


def test_every_promotion_is_recorded_in_the_promotions_experiment(store: Settings) -> None:
    version = register(store, booster(True))
    validate(store, MODEL, version)
    move = promote(store, MODEL)  # the challenger
    client = tracking_client(store)
    run = client.get_run(move.record_run_id)
    assert client.get_experiment(run.info.experiment_id).name == PROMOTIONS_EXPERIMENT
    assert run.data.tags["forced"] == "false" and run.data.tags["from_version"] == "none"
    assert run.data.tags["validation.status"] == "passed"


def test_rollback_moves_champion_back_and_is_recorded(store: Settings, good_champion: int) -> None:
    second = register(store, booster(True))
    validate(store, MODEL, second)
    promote(store, MODEL, second)
    move = rollback(store, MODEL, reason="conversion dropped")
    assert champion_of(store) == good_champion == move.champion

    latest, earlier, first = promotion_history(store, MODEL)
    assert (latest["action"], latest["from_version"], latest["to_version"]) == ("rollback", "2", "1")
    assert (latest["actor"], latest["reason"]) == ("ana@studio", "conversion dropped")
    assert [earlier["action"], first["action"]] == ["promote", "promote"]
    assert version_tags(store, second)["rolled_back.run_id"] == move.record_run_id
    assert version_tags(store, good_champion)["promotion.action"] == "rollback"


# --- the command line ------------------------------------------------------------------------
# The CLI reads settings from --workdir alone, so these use the local configuration as shipped:
# the MLflow store under the work folder and the shipped declaration of store_offer.

SHIPPED = "store_offer"


@pytest.fixture
def cli_store(tmp_path: Path, empty_store: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A work folder with an empty MLflow store where the local configuration looks for it,
    and a good store_offer version 1 validated and promoted."""
    monkeypatch.setenv("PLAYERPULSE_ACTOR", "ana@studio")
    settings = load_settings("local", tmp_path / "var")
    db = Path(settings.mlflow.tracking_uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True)
    shutil.copyfile(empty_store, db)
    version = register(settings, booster(True), name=SHIPPED)
    assert validate(settings, SHIPPED, version).passed
    promote(settings, SHIPPED, version)
    return settings


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, " ".join(captured.out.split()), " ".join(captured.err.split())  # the console wraps lines


def test_cli_validate_prints_each_check_and_exits_1_on_failure(
    cli_store: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    register(cli_store, booster(False), name=SHIPPED)
    code, out, _ = run_cli(capsys, "validate", SHIPPED, "--workdir", cli_store.workdir)
    assert code == 1
    assert "store_offer version 2: validation FAILED" in out
    assert "FAIL min_auc: AUC" in out and "is below min_auc 0.65" in out


def test_cli_promote_of_a_refused_version_names_the_failed_check(
    cli_store: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    register(cli_store, booster(False), name=SHIPPED)
    run_cli(capsys, "validate", SHIPPED, "--workdir", cli_store.workdir)
    code, _, err = run_cli(capsys, "promote", SHIPPED, "--version", "2", "--workdir", cli_store.workdir)
    assert code == 1
    assert "failed validation (check min_auc,max_auc_drop_vs_champion" in err and "--force" in err
    assert champion_of(cli_store, SHIPPED) == 1


def test_cli_force_without_reason_is_refused(cli_store: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    register(cli_store, booster(False), name=SHIPPED)
    code, _, err = run_cli(capsys, "promote", SHIPPED, "--version", "2", "--force", "--workdir", cli_store.workdir)
    assert code == 1 and '--force needs --reason "…"' in err
    assert champion_of(cli_store, SHIPPED) == 1


def test_cli_forced_promotion_and_rollback_show_in_the_history(
    cli_store: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    register(cli_store, booster(False), name=SHIPPED)
    wd = cli_store.workdir
    assert (
        run_cli(capsys, "promote", SHIPPED, "--version", "2", "--force", "--reason", "hotfix", "--workdir", wd)[0] == 0
    )
    assert champion_of(cli_store, SHIPPED) == 2
    assert run_cli(capsys, "models", "rollback", SHIPPED, "--workdir", wd)[0] == 0
    assert champion_of(cli_store, SHIPPED) == 1
    code, out, _ = run_cli(capsys, "models", "history", SHIPPED, "--workdir", wd)
    assert code == 0
    assert [r["action"] for r in promotion_history(cli_store, SHIPPED)] == ["rollback", "promote", "promote"]
    assert "rollback" in out and "hotfix" in out and "ana@studio" in out
