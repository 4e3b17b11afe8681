"""MLflow wiring for training: the tracking store and experiment from settings, and alias reads.

Every training-side entry point goes through ``tracking_client`` so that the tracking URI, the
registry URI and the experiment's artifact location always come from ``settings.mlflow`` and
never from whatever a previous call left in MLflow's process-wide state.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from features.config import Settings
from features.errors import ModelNotFound, PromotionRefused, TrainingFailed

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous_champion"

PROMOTIONS_EXPERIMENT = "promotions"
"""Every promotion and rollback of every model is one run here: the audit trail of who moved
``champion``, when, from which version to which, and why."""

# Model-version tags written by validation and promotion; ``promote`` reads the first three.
VALIDATION_STATUS = "validation.status"
"""``passed`` or ``failed``; a version without it was never validated."""
VALIDATION_RUN_ID = "validation.run_id"
VALIDATION_CHAMPION = "validation.champion_version"
"""The champion the version was compared with (``none``): a pass is stale once that changes."""
VALIDATION_FAILED_CHECKS = "validation.failed_checks"
VALIDATION_REASON = "validation.reason"
PASSED, FAILED = "passed", "failed"
NO_CHAMPION = "none"

HOLDOUT_ARTIFACT = "holdout/holdout.parquet"
"""The rows a training run measured its version on; validation re-scores both the version and
the champion on exactly these rows."""


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
    if cfg.s3_endpoint_url:  # MLflow's S3 artifact store reads its endpoint from this variable only
        os.environ["MLFLOW_S3_ENDPOINT_URL"] = cfg.s3_endpoint_url
    _ensure_sqlite_folder(cfg.tracking_uri)
    registry = cfg.registry_uri or cfg.tracking_uri
    _ensure_sqlite_folder(registry)
    with _environment_kept("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        mlflow.set_tracking_uri(cfg.tracking_uri)
        mlflow.set_registry_uri(registry)
    return MlflowClient(tracking_uri=cfg.tracking_uri, registry_uri=registry)


@contextmanager
def _environment_kept(*names: str) -> Iterator[None]:
    """MLflow's setters also export their URI to the environment, where a later
    ``load_settings`` in the same process (a notebook, a test run) would read it as that
    profile's own ``MLFLOW_REGISTRY_URI``: one training run would redirect the next profile's
    registry. Keep the process environment as the user set it."""
    before = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def ensure_experiment(settings: Settings, client: MlflowClient, name: str | None = None) -> str:
    """The id of experiment ``name`` (default: the configured one), creating it with
    ``artifact_root`` as its artifact location if missing."""
    name = name or settings.mlflow.experiment
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return client.create_experiment(name, artifact_location=_artifact_location(settings.mlflow.artifact_root))


def actor() -> str:
    """Who is acting, for the audit trail: ``$PLAYERPULSE_ACTOR`` (a CI job sets it to the
    person or pipeline it acts for), else the OS user."""
    named = os.environ.get("PLAYERPULSE_ACTOR", "").strip()
    if named:
        return named
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers) and no LOGNAME/USER
        return f"uid:{os.getuid()}"


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


def require_model(client: MlflowClient, name: str) -> None:
    """``ModelNotFound`` (saying what to run) unless ``name`` is a registered model."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise ModelNotFound(f"no registered model '{name}': run `playerpulse train {name}` first") from None
        raise


def resolve_version(client: MlflowClient, name: str, version: int | None) -> ModelVersion:
    """Version ``version`` of ``name``, or its newest when ``None``."""
    from mlflow.exceptions import MlflowException

    if version is None:
        versions = client.search_model_versions(f"name = '{name}'")
        if not versions:
            raise PromotionRefused(f"model '{name}' has no versions: run `playerpulse train {name}` first")
        return max(versions, key=lambda mv: int(mv.version))
    try:
        return client.get_model_version(name, str(version))
    except MlflowException:
        raise PromotionRefused(
            f"model '{name}' has no version {version}: see `playerpulse models list` for its versions"
        ) from None


def log_holdout(rows: pd.DataFrame) -> None:
    """Log ``rows`` as ``HOLDOUT_ARTIFACT`` of the active run."""
    import tempfile

    import mlflow

    folder, file = HOLDOUT_ARTIFACT.rsplit("/", 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / file
        rows.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=folder)


def load_holdout(client: MlflowClient, name: str, mv: ModelVersion) -> pd.DataFrame:
    """The holdout rows logged by the run that registered ``mv``."""
    import tempfile

    import pandas as pd
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(mv.run_id, HOLDOUT_ARTIFACT, tmp) if mv.run_id else None
        except (MlflowException, OSError):
            path = None
        if path is None:
            raise TrainingFailed(
                f"version {mv.version} of '{name}' has no {HOLDOUT_ARTIFACT} in its run, so it cannot be "
                f"validated on the rows it was measured on: register it with `playerpulse train {name}`"
            )
        return pd.read_parquet(path)
