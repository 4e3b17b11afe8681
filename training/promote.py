"""Moving the ``champion`` alias: promotion, one-step rollback, and the registry listing.

Serving resolves ``models:/NAME@champion`` and re-resolves it every ``model_cache_seconds``,
so moving the alias *is* the deployment; no process restarts. Each promotion remembers the
champion it replaces as ``previous_champion``, so a bad release is undone by one command
without anyone having to look up version numbers under pressure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from features.config import Settings
from features.errors import ModelNotFound, PromotionRefused
from training.registry import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, tracking_client, version_by_alias

KEY_METRICS = ("test_auc", "test_logloss", "base_rate", "rows", "ceiling_auc", "auc_vs_ceiling")


@dataclass(frozen=True)
class AliasMove:
    name: str
    champion: int
    """Version that is champion now."""
    previous_champion: int | None
    """Version a ``rollback`` would return to (``None``: nothing to roll back to)."""
    changed: bool
    """False when the requested version already was the champion."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _require_model(client: Any, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise ModelNotFound(f"no registered model '{name}': run `playerpulse train {name}` first") from None
        raise


def promote(settings: Settings, name: str, version: int | None = None) -> AliasMove:
    """Make ``version`` (default: the ``challenger``) the champion, keeping the old one as
    ``previous_champion``."""
    from mlflow.exceptions import MlflowException

    client = tracking_client(settings)
    _require_model(client, name)
    if version is None:
        challenger = version_by_alias(client, name, CHALLENGER)
        if challenger is None:
            raise PromotionRefused(
                f"model '{name}' has no challenger to promote: train a version that passes the "
                f"quality gate, or name a version with `promote {name} --version N`"
            )
        version = int(challenger.version)
    else:
        try:
            client.get_model_version(name, str(version))
        except MlflowException:
            raise PromotionRefused(
                f"model '{name}' has no version {version}: see `playerpulse models` for its versions"
            ) from None

    current = version_by_alias(client, name, CHAMPION)
    if current is not None and int(current.version) == version:
        previous = version_by_alias(client, name, PREVIOUS_CHAMPION)
        return AliasMove(name, version, int(previous.version) if previous else None, changed=False)
    if current is not None:
        client.set_registered_model_alias(name, PREVIOUS_CHAMPION, current.version)
    client.set_registered_model_alias(name, CHAMPION, str(version))
    return AliasMove(name, version, int(current.version) if current else None, changed=True)


def rollback(settings: Settings, name: str) -> AliasMove:
    """Give ``champion`` back to ``previous_champion``.

    The ``previous_champion`` alias is removed afterwards: a second rollback must not bring
    back the version that was just rolled back from.
    """
    client = tracking_client(settings)
    _require_model(client, name)
    previous = version_by_alias(client, name, PREVIOUS_CHAMPION)
    if previous is None:
        raise PromotionRefused(
            f"model '{name}' has no previous champion to roll back to: promote a version "
            f"explicitly with `promote {name} --version N`"
        )
    client.set_registered_model_alias(name, CHAMPION, previous.version)
    client.delete_registered_model_alias(name, PREVIOUS_CHAMPION)
    return AliasMove(name, int(previous.version), None, changed=True)


def list_models(settings: Settings) -> list[dict[str, Any]]:
    """Registered models, each with its versions (newest first), their aliases and key metrics,
    for ``playerpulse models``."""
    client = tracking_client(settings)
    out = []
    for rm in sorted(client.search_registered_models(), key=lambda m: m.name):
        by_version: dict[str, list[str]] = {}
        for alias, v in (rm.aliases or {}).items():
            by_version.setdefault(str(v), []).append(alias)
        versions = []
        for mv in sorted(
            client.search_model_versions(f"name = '{rm.name}'"), key=lambda m: int(m.version), reverse=True
        ):
            metrics = client.get_run(mv.run_id).data.metrics if mv.run_id else {}
            versions.append(
                {
                    "version": int(mv.version),
                    "aliases": sorted(by_version.get(str(mv.version), [])),
                    "created": datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=UTC).isoformat(
                        timespec="seconds"
                    ),
                    "run_id": mv.run_id,
                    "gate": (mv.tags or {}).get("gate", ""),
                    "metrics": {k: metrics[k] for k in KEY_METRICS if k in metrics},
                }
            )
        out.append({"name": rm.name, "description": rm.description or "", "versions": versions})
    return out
