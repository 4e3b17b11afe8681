"""MLflow wiring for training: the tracking store and experiment from settings, and alias reads.

Every training-side entry point goes through ``tracking_client`` so that the tracking URI, the
registry URI and the experiment's artifact location always come from ``settings.mlflow`` and
never from whatever a previous call left in MLflow's process-wide state.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from features.config import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous_champion"


def _artifact_location(root: str) -> str:
    if "://" in root:
        return root
    path = Path(root).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path.as_uri()


def _ensure_sqlite_folder(uri: str) -> None:
    """SQLite creates the database file but not its folder."""
    prefix = "sqlite:///"
    if uri.startswith(prefix):
        Path(uri[len(prefix) :]).parent.mkdir(parents=True, exist_ok=True)


def tracking_client(settings: Settings) -> MlflowClient:
    """Point MLflow at ``settings.mlflow`` and return a client for it.

    The global tracking URI is set too, because ``mlflow.start_run`` and ``log_model`` use it.
    """
    import mlflow
    from mlflow import MlflowClient

    cfg = settings.mlflow
    _ensure_sqlite_folder(cfg.tracking_uri)
    registry = cfg.registry_uri or cfg.tracking_uri
    _ensure_sqlite_folder(registry)
    mlflow.set_tracking_uri(cfg.tracking_uri)
    mlflow.set_registry_uri(registry)
    return MlflowClient(tracking_uri=cfg.tracking_uri, registry_uri=registry)


def ensure_experiment(settings: Settings, client: MlflowClient) -> str:
    """The experiment's id, creating it with ``artifact_root`` as its artifact location if missing."""
    name = settings.mlflow.experiment
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return client.create_experiment(name, artifact_location=_artifact_location(settings.mlflow.artifact_root))


def version_by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version behind ``name@alias``, or ``None`` when the alias (or the model) does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def run_metrics(client: MlflowClient, run_id: str | None) -> dict[str, float]:
    if not run_id:
        return {}
    return dict(client.get_run(run_id).data.metrics)
