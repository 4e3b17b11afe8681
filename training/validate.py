"""Validation: the one step that decides whether a registered version may serve.

Training registers every version with the holdout rows it was measured on (the last
``test_days`` snapshot days, logged as an artifact of its run). Validation re-scores the
registered model on those rows and checks it against the model's ``quality_gate`` in
``conf/models/NAME.yaml``:

- ``min_auc``: the version's AUC on its holdout rows;
- ``max_auc_drop_vs_champion``: the champion is re-scored on the *same* rows (its own logged
  AUC was measured on an older period and is not comparable), and the version may score at most
  this much below it;
- ``max_calibration_error``: the expected calibration error on the holdout rows, because the
  response tiers read probabilities as absolute thresholds. On a small holdout sampling alone
  gives a calibrated model an ECE above a tight bound, so the check allows the larger of the
  bound and ``calibration_noise`` (what a perfectly calibrated model reaches on these rows, 95th
  percentile) and says which one applied.

The decision is written twice: as tags on the model version (``validation.status``,
``validation.run_id``, … which ``promote`` reads) and as an MLflow run in the model's experiment
holding both sides of the comparison, the thresholds and the outcome. A version that passes
becomes ``challenger``; one that fails loses ``challenger`` if it had it.

Run directly: ``python training/validate.py MODEL [--version V]``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.config import Settings
from features.errors import TrainingFailed
from features.model_config import ModelConfig, QualityGate, load_model_config
from training.dataset import LABEL
from training.metrics import calibration_noise, classification_metrics
from training.registry import (
    CHALLENGER,
    CHAMPION,
    FAILED,
    NO_CHAMPION,
    PASSED,
    VALIDATION_CHAMPION,
    VALIDATION_FAILED_CHECKS,
    VALIDATION_REASON,
    VALIDATION_RUN_ID,
    VALIDATION_STATUS,
    actor,
    ensure_experiment,
    load_holdout,
    require_model,
    resolve_version,
    run_metrics,
    tracking_client,
    version_by_alias,
)
from training.train import _matrix

if TYPE_CHECKING:
    import xgboost as xgb
    from mlflow import MlflowClient


@dataclass(frozen=True)
class Check:
    name: str
    """The ``quality_gate`` key this check enforces, so a refusal names the declaration's line."""
    passed: bool
    detail: str


@dataclass(frozen=True)
class ChampionScore:
    version: int
    auc: float
    how: str
    """``on the same holdout rows``, or ``as logged for its own test period`` when the champion's
    features are not all in the holdout (then it was not re-scored)."""
    calibration_error: float | None = None


@dataclass(frozen=True)
class ValidationResult:
    name: str
    version: int
    status: str
    """``passed`` or ``failed``."""
    checks: list[Check]
    run_id: str
    """The MLflow run that holds the comparison."""
    metrics: dict[str, float]
    """The candidate's: ``auc``, ``logloss``, ``calibration_error``, ``calibration_noise``, ``base_rate``, ``rows``."""
    champion: ChampionScore | None
    thresholds: dict[str, float]
    aliases: list[str] = field(default_factory=list)
    """Aliases the version holds after validation."""

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    @property
    def failed_checks(self) -> list[str]:
        return [c.name for c in self.checks if not c.passed]

    @property
    def reason(self) -> str:
        """One line for people: the failed checks' details, or every check's when all passed."""
        chosen = [c for c in self.checks if not c.passed] or self.checks
        return "; ".join(f"{c.name}: {c.detail}" for c in chosen)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "failed_checks": self.failed_checks, "reason": self.reason}


def _load(name: str, version: int | str) -> xgb.Booster:
    import mlflow.xgboost

    booster = mlflow.xgboost.load_model(f"models:/{name}/{version}")
    if not booster.feature_names:
        raise TrainingFailed(
            f"version {version} of '{name}' carries no feature names, so it cannot be scored on the "
            f"holdout by name: retrain it with `playerpulse train {name}`"
        )
    return booster


def _score(booster: xgb.Booster, rows: pd.DataFrame) -> np.ndarray:
    return np.asarray(booster.inplace_predict(_matrix(rows, list(booster.feature_names))), dtype=np.float64)


def score_metrics(y: np.ndarray, proba: np.ndarray, bins: int) -> dict[str, float]:
    """The metrics validation compares, computed as training computes its test metrics."""
    m = classification_metrics(y, proba, bins)
    return {
        "auc": m["test_auc"],
        "logloss": m["test_logloss"],
        "brier": m["test_brier"],
        "base_rate": m["base_rate"],
        "calibration_error": m["test_calibration_error"],
        "top_decile_lift": m["test_top_decile_lift"],
        "rows": float(len(y)),
    }


def _champion_score(
    client: MlflowClient, name: str, candidate: int, holdout: pd.DataFrame, bins: int
) -> ChampionScore | None:
    """The current champion (when it is another version), re-scored on ``holdout`` when its
    features are all there, else with its own logged test AUC."""
    champion = version_by_alias(client, name, CHAMPION)
    if champion is None or int(champion.version) == candidate:
        return None
    import mlflow.xgboost

    booster = mlflow.xgboost.load_model(f"models:/{name}/{champion.version}")
    if booster.feature_names and all(n in holdout.columns for n in booster.feature_names):
        m = score_metrics(holdout[LABEL].to_numpy(), _score(booster, holdout), bins)
        return ChampionScore(int(champion.version), m["auc"], "on the same holdout rows", m["calibration_error"])
    logged = run_metrics(client, champion.run_id).get("test_auc")
    if logged is None:
        return None
    return ChampionScore(int(champion.version), float(logged), "as logged for its own test period")


def run_checks(gate: QualityGate, candidate: dict[str, float], champion: ChampionScore | None) -> list[Check]:
    """The three checks of ``quality_gate``, each named by its key; pure, so each is testable."""
    auc, ece = candidate["auc"], candidate["calibration_error"]
    checks = [
        Check(
            "min_auc",
            auc >= gate.min_auc,
            f"AUC {auc:.4f} {'≥' if auc >= gate.min_auc else 'is below'} min_auc {gate.min_auc}",
        )
    ]
    if champion is None:
        checks.append(Check("max_auc_drop_vs_champion", True, "no other champion to compare with"))
    else:
        floor = champion.auc - gate.max_auc_drop_vs_champion
        ok = auc >= floor
        checks.append(
            Check(
                "max_auc_drop_vs_champion",
                ok,
                f"AUC {auc:.4f} {'≥' if ok else 'is below'} champion v{champion.version}'s "
                f"{champion.auc:.4f} − {gate.max_auc_drop_vs_champion} ({champion.how})",
            )
        )
    checks.append(_calibration_check(gate, ece, candidate["calibration_noise"], int(candidate["rows"])))
    return checks


def _calibration_check(gate: QualityGate, ece: float, noise: float, rows: int) -> Check:
    """ECE against ``max_calibration_error``, or against the noise floor of this holdout's size
    when that is larger (a bound tighter than sampling allows would refuse calibrated models)."""
    bins = f"{gate.calibration_bins} bins, {rows:,} rows"
    if noise <= gate.max_calibration_error:
        ok = ece <= gate.max_calibration_error
        verdict = "≤" if ok else "is above"
        return Check(
            "max_calibration_error",
            ok,
            f"expected calibration error {ece:.4f} {verdict} "
            f"max_calibration_error {gate.max_calibration_error} ({bins})",
        )
    ok = ece <= noise
    return Check(
        "max_calibration_error",
        ok,
        f"expected calibration error {ece:.4f} {'≤' if ok else 'is above'} {noise:.4f}, what a perfectly "
        f"calibrated model reaches on these rows (95th percentile), which is above max_calibration_error "
        f"{gate.max_calibration_error} ({bins}): {'not distinguishable from' if ok else 'beyond'} sampling noise",
    )


def _log_run(
    settings: Settings,
    client: MlflowClient,
    cfg: ModelConfig,
    version: int,
    candidate_run_id: str | None,
    metrics: dict[str, float],
    champion: ChampionScore | None,
    checks: list[Check],
    status: str,
) -> str:
    """One run holding both sides of the comparison, the thresholds and the decision."""
    import mlflow

    thresholds = cfg.quality_gate.model_dump()
    tags = {
        "model": cfg.name,
        "model_version": str(version),
        "step": "validation",
        VALIDATION_STATUS: status,
        "validated_by": actor(),
        "champion_version": str(champion.version) if champion else NO_CHAMPION,
    }
    if candidate_run_id:
        tags["candidate_run_id"] = candidate_run_id
    logged = {f"candidate_{k}": v for k, v in metrics.items()}
    if champion is not None:
        logged["champion_auc"] = champion.auc
        if champion.calibration_error is not None:
            logged["champion_calibration_error"] = champion.calibration_error
        logged["auc_floor_vs_champion"] = champion.auc - cfg.quality_gate.max_auc_drop_vs_champion
    logged["passed"] = 1.0 if status == PASSED else 0.0
    experiment_id = ensure_experiment(settings, client)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{cfg.name}-validate-v{version}", tags=tags) as run:
        mlflow.log_params({f"threshold_{k}": v for k, v in thresholds.items()})
        if champion is not None:
            mlflow.log_param("champion_scored", champion.how)
        mlflow.log_metrics(logged)
        mlflow.log_dict(
            {
                "model": cfg.name,
                "version": version,
                "status": status,
                "thresholds": thresholds,
                "candidate": metrics,
                "champion": asdict(champion) if champion else None,
                "checks": [asdict(c) for c in checks],
            },
            "validation.json",
        )
        return run.info.run_id


def validate(settings: Settings, name: str, version: int | None = None) -> ValidationResult:
    """Validate ``version`` of ``name`` (default: its newest), record the decision on the version
    and as an MLflow run, and make it ``challenger`` when it passes."""
    cfg = load_model_config(settings, name)
    if not cfg.label.is_classification:
        raise TrainingFailed(
            f"model '{name}' has a {cfg.label.kind} label, and the quality gate (min_auc, calibration) "
            "judges classifiers only: a regression gate is not implemented yet, so its versions cannot be validated"
        )
    client = tracking_client(settings)
    require_model(client, name)
    mv = resolve_version(client, name, version)
    number = int(mv.version)
    holdout = load_holdout(client, name, mv)
    bins = cfg.quality_gate.calibration_bins
    candidate = _load(name, number)
    missing = [n for n in candidate.feature_names if n not in holdout.columns]
    if missing:
        raise TrainingFailed(f"the holdout of version {number} of '{name}' lacks features {missing} the version uses")
    scores = _score(candidate, holdout)
    # the candidate's noise floor only: the champion's re-score is compared by AUC
    metrics = score_metrics(holdout[LABEL].to_numpy(), scores, bins)
    metrics["calibration_noise"] = calibration_noise(scores, bins)
    champion = _champion_score(client, name, number, holdout, bins)
    checks = run_checks(cfg.quality_gate, metrics, champion)
    status = PASSED if all(c.passed for c in checks) else FAILED

    run_id = _log_run(settings, client, cfg, number, mv.run_id, metrics, champion, checks, status)
    failed = [c for c in checks if not c.passed]
    version_tags = {
        VALIDATION_STATUS: status,
        VALIDATION_RUN_ID: run_id,
        VALIDATION_CHAMPION: str(champion.version) if champion else NO_CHAMPION,
        VALIDATION_FAILED_CHECKS: ",".join(c.name for c in failed),
        VALIDATION_REASON: "; ".join(f"{c.name}: {c.detail}" for c in failed or checks)[:5000],
        "validation.validated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    for key, value in version_tags.items():
        client.set_model_version_tag(name, str(number), key, value)

    challenger = version_by_alias(client, name, CHALLENGER)
    if status == PASSED:
        client.set_registered_model_alias(name, CHALLENGER, str(number))
    elif challenger is not None and int(challenger.version) == number:
        client.delete_registered_model_alias(name, CHALLENGER)
    aliases = sorted(a for a in (client.get_model_version(name, str(number)).aliases or []))
    return ValidationResult(
        name, number, status, checks, run_id, metrics, champion, cfg.quality_gate.model_dump(), aliases
    )


def main(argv: list[str] | None = None) -> int:
    import argparse

    from features.config import load_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--version", type=int, default=None)
    parser.add_argument("--env", default=None)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)
    result = validate(load_settings(args.env, args.workdir), args.model, args.version)
    print(json.dumps(result.to_dict(), indent=2, default=str))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
