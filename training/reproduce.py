"""``playerpulse train MODEL --reproduce RUN_ID``: rerun a past training run and compare.

A training run records everything that decides its outcome: the Delta version of every input
table (``lineage.*`` tags), the complete validated declaration (``model_config.json``, seed
and booster settings included), the ground truth it was measured against (``ground_truth``
param) and the code (``git_commit`` tag). Reproducing reads the same table versions by time
travel, trains with the same declaration in a new run tagged ``reproduces``, registers nothing,
and compares every metric the two runs share. xgboost's ``hist`` method on the CPU is
deterministic for the same rows, row order, parameters and thread count, so on the same code
the metrics are identical, not close; a difference means the inputs or the code moved.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from features.config import Settings
from features.errors import TrainingFailed
from features.model_config import ModelConfig
from training.registry import tracking_client
from training.train import CONFIG_ARTIFACT, git_commit, train_model

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LINEAGE = "lineage."
REPRODUCES = "reproduces"


@dataclass(frozen=True)
class Reproduction:
    model: str
    original_run_id: str
    run_id: str
    """The new run, tagged ``reproduces=<original_run_id>``."""
    inputs: dict[str, int]
    """Table → Delta version read, as the original run recorded them."""
    metrics: dict[str, float]
    """The new run's metrics."""
    differences: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Metric → (original, reproduced) for every shared metric that is not equal."""
    same_code: bool | None = None
    """Whether the code is the commit the original run recorded (``None``: one of them unknown)."""

    @property
    def identical(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "identical": self.identical}


def recorded_inputs(tags: dict[str, str]) -> dict[str, int]:
    """The ``lineage.TABLE = VERSION`` tags of a run as table → version."""
    return {k[len(LINEAGE) :]: int(v) for k, v in tags.items() if k.startswith(LINEAGE)}


def reproduce(spark: SparkSession, settings: Settings, name: str, run_id: str) -> Reproduction:
    """Rebuild the training set of run ``run_id`` of model ``name`` from the table versions it
    recorded, train with its recorded declaration, and compare the metrics."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = tracking_client(settings)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise TrainingFailed(f"no run '{run_id}' in the tracking store: see the model's runs in MLflow") from None
    tags = dict(run.data.tags)
    if tags.get("model") != name:
        raise TrainingFailed(f"run {run_id} trained '{tags.get('model', '?')}', not '{name}'")
    inputs = recorded_inputs(tags)
    if not inputs:
        raise TrainingFailed(f"run {run_id} recorded no input table versions (lineage.* tags), so it cannot be rebuilt")
    try:
        recorded = mlflow.artifacts.load_dict(f"runs:/{run_id}/{CONFIG_ARTIFACT}")
    except (MlflowException, OSError):
        raise TrainingFailed(
            f"run {run_id} has no {CONFIG_ARTIFACT}: it predates recorded declarations and cannot be reproduced"
        ) from None
    cfg = ModelConfig.model_validate(recorded)
    ground_truth = run.data.params.get("ground_truth")
    if ground_truth is not None and not Path(ground_truth).exists():
        raise TrainingFailed(f"run {run_id} was measured against {ground_truth}, which no longer exists")

    result = train_model(
        spark,
        settings,
        name,
        ground_truth,
        config=cfg,
        versions=inputs,
        register=False,
        extra_tags={REPRODUCES: run_id},
    )
    before = dict(run.data.metrics)
    differences = {
        k: (before[k], result.metrics[k])
        for k in sorted(set(before) & set(result.metrics))
        if before[k] != result.metrics[k]
    }
    now, then = git_commit(), tags.get("git_commit")
    same_code = None if now is None or then is None else now == then
    return Reproduction(name, run_id, result.run_id, inputs, result.metrics, differences, same_code)
