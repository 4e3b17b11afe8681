"""Moving the ``champion`` alias: promotion, one-step rollback, their record, and the listing.

Serving resolves ``models:/NAME@champion`` and re-resolves it every ``model_cache_seconds``,
so moving the alias *is* the deployment; no process restarts. Each promotion remembers the
champion it replaces as ``previous_champion``, so a bad release is undone by one command
without anyone having to look up version numbers under pressure.

Only a version that ``training.validate`` passed against the *current* champion may move
(the gate reads the version's ``validation.*`` tags); ``force`` with a reason goes past it in
the open. Every move is a run in the ``promotions`` experiment plus ``promotion.*`` tags on the
version, written before the alias moves, so the record cannot miss a move that happened.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from features.config import Settings
from features.errors import PromotionRefused
from training.registry import (
    CHALLENGER,
    CHAMPION,
    FAILED,
    NO_CHAMPION,
    PASSED,
    PREVIOUS_CHAMPION,
    PROMOTIONS_EXPERIMENT,
    VALIDATION_CHAMPION,
    VALIDATION_FAILED_CHECKS,
    VALIDATION_REASON,
    VALIDATION_RUN_ID,
    VALIDATION_STATUS,
    actor,
    ensure_experiment,
    require_model,
    resolve_version,
    tracking_client,
    version_by_alias,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

KEY_METRICS = (
    "test_auc",
    "test_logloss",
    "test_brier",
    "test_calibration_error",
    "base_rate",
    "rows",
    "auc_ceiling",
    "auc_gap_to_ceiling",
)
PROMOTE, ROLLBACK = "promote", "rollback"


@dataclass(frozen=True)
class AliasMove:
    name: str
    champion: int
    """Version that is champion now."""
    previous_champion: int | None
    """Version a ``rollback`` would return to (``None``: nothing to roll back to)."""
    changed: bool
    """False when the requested version already was the champion (nothing moved, nothing recorded)."""
    action: str = PROMOTE
    forced: bool = False
    """True when the version went past validation with ``--force``."""
    reason: str = ""
    actor: str = ""
    record_run_id: str | None = None
    """The run in the ``promotions`` experiment that records this move."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _validation_refusal(mv: ModelVersion, name: str, champion: ModelVersion | None) -> str | None:
    """Why ``mv`` may not become champion without ``--force``; ``None`` when it may."""
    tags = mv.tags or {}
    v = mv.version
    escape = f'or promote it anyway with `promote {name} --version {v} --force --reason "…"`'
    status = tags.get(VALIDATION_STATUS)
    if status is None:
        return f"version {v} of '{name}' was never validated: run `playerpulse validate {name} --version {v}` {escape}"
    if status == FAILED:
        checks = tags.get(VALIDATION_FAILED_CHECKS) or "unknown"
        return (
            f"version {v} of '{name}' failed validation (check {checks}: {tags.get(VALIDATION_REASON, '')}; "
            f"run {tags.get(VALIDATION_RUN_ID, '?')}): train a better version, {escape}"
        )
    if status != PASSED:
        return f"version {v} of '{name}' has validation status '{status}', not '{PASSED}' {escape}"
    compared = tags.get(VALIDATION_CHAMPION, NO_CHAMPION)
    current = str(champion.version) if champion is not None else NO_CHAMPION
    if compared != current:
        return (
            f"version {v} of '{name}' was validated against champion {compared} but the champion is now "
            f"{current}: run `playerpulse validate {name} --version {v}` again {escape}"
        )
    return None


def _record(
    settings: Settings,
    client: MlflowClient,
    *,
    action: str,
    name: str,
    to_version: str,
    from_version: str | None,
    who: str,
    forced: bool,
    reason: str,
    validation: dict[str, str],
) -> str:
    """One run in ``promotions`` and tags on the versions involved; returns the run id.

    The run is written before any alias moves: a move that cannot be recorded does not happen.
    """
    at = datetime.now(UTC).isoformat(timespec="seconds")
    tags = {
        "model": name,
        "action": action,
        "to_version": to_version,
        "from_version": from_version or NO_CHAMPION,
        "actor": who,
        "at": at,
        "forced": str(forced).lower(),
        "reason": reason,
        VALIDATION_STATUS: validation.get(VALIDATION_STATUS, "never"),
        VALIDATION_RUN_ID: validation.get(VALIDATION_RUN_ID, ""),
    }
    experiment_id = ensure_experiment(settings, client, PROMOTIONS_EXPERIMENT)
    run = client.create_run(experiment_id, tags=tags, run_name=f"{name}-{action}-v{to_version}")
    client.set_terminated(run.info.run_id)
    version_tags = {
        "promotion.action": action,
        "promotion.at": at,
        "promotion.by": who,
        "promotion.forced": str(forced).lower(),
        "promotion.reason": reason,
        "promotion.run_id": run.info.run_id,
        "promotion.from_version": from_version or NO_CHAMPION,
    }
    for key, value in version_tags.items():
        client.set_model_version_tag(name, to_version, key, value)
    if action == ROLLBACK and from_version is not None:
        for key, value in {"rolled_back.at": at, "rolled_back.by": who, "rolled_back.run_id": run.info.run_id}.items():
            client.set_model_version_tag(name, from_version, key, value)
    return run.info.run_id


def promote(
    settings: Settings,
    name: str,
    version: int | None = None,
    *,
    force: bool = False,
    reason: str | None = None,
) -> AliasMove:
    """Make ``version`` (default: the ``challenger``) the champion, keeping the old one as
    ``previous_champion``.

    Only a version whose validation passed against the *current* champion may move; ``force``
    skips that check and needs a ``reason``, which the promotion record keeps with the actor.
    """
    reason = (reason or "").strip()
    if force and not reason:
        raise PromotionRefused(
            '--force needs --reason "…": say why this version must serve despite validation; it is recorded'
        )
    client = tracking_client(settings)
    require_model(client, name)
    if version is None:
        challenger = version_by_alias(client, name, CHALLENGER)
        if challenger is None:
            raise PromotionRefused(
                f"model '{name}' has no challenger to promote: run `playerpulse validate {name}` on a "
                f"version, or name a version with `promote {name} --version N`"
            )
        version = int(challenger.version)
    mv = resolve_version(client, name, version)

    current = version_by_alias(client, name, CHAMPION)
    if current is not None and int(current.version) == version:
        previous = version_by_alias(client, name, PREVIOUS_CHAMPION)
        return AliasMove(name, version, int(previous.version) if previous else None, changed=False)
    if not force:
        refusal = _validation_refusal(mv, name, current)
        if refusal is not None:
            raise PromotionRefused(refusal)

    who = actor()
    run_id = _record(
        settings,
        client,
        action=PROMOTE,
        name=name,
        to_version=str(version),
        from_version=str(current.version) if current else None,
        who=who,
        forced=force,
        reason=reason,
        validation=dict(mv.tags or {}),
    )
    if current is not None:
        client.set_registered_model_alias(name, PREVIOUS_CHAMPION, current.version)
    client.set_registered_model_alias(name, CHAMPION, str(version))
    return AliasMove(
        name,
        version,
        int(current.version) if current else None,
        changed=True,
        forced=force,
        reason=reason,
        actor=who,
        record_run_id=run_id,
    )


def rollback(settings: Settings, name: str, reason: str | None = None) -> AliasMove:
    """Give ``champion`` back to ``previous_champion``, and record who did it and why.

    No validation is asked for: the version served before, and a rollback is the way out of an
    incident. The ``previous_champion`` alias is removed afterwards: a second rollback must not
    bring back the version that was just rolled back from.
    """
    client = tracking_client(settings)
    require_model(client, name)
    previous = version_by_alias(client, name, PREVIOUS_CHAMPION)
    if previous is None:
        raise PromotionRefused(
            f"model '{name}' has no previous champion to roll back to: promote a version "
            f"explicitly with `promote {name} --version N`"
        )
    current = version_by_alias(client, name, CHAMPION)
    who, why = actor(), (reason or "").strip()
    run_id = _record(
        settings,
        client,
        action=ROLLBACK,
        name=name,
        to_version=str(previous.version),
        from_version=str(current.version) if current else None,
        who=who,
        forced=False,
        reason=why,
        validation=dict(previous.tags or {}),
    )
    client.set_registered_model_alias(name, CHAMPION, previous.version)
    client.delete_registered_model_alias(name, PREVIOUS_CHAMPION)
    return AliasMove(
        name, int(previous.version), None, changed=True, action=ROLLBACK, reason=why, actor=who, record_run_id=run_id
    )


def promotion_history(settings: Settings, name: str) -> list[dict[str, str]]:
    """Every promotion and rollback of ``name``, newest first, as recorded in ``promotions``."""
    client = tracking_client(settings)
    exp = client.get_experiment_by_name(PROMOTIONS_EXPERIMENT)
    if exp is None:
        return []
    runs = client.search_runs(
        [exp.experiment_id], filter_string=f"tags.model = '{name}'", order_by=["attributes.start_time DESC"]
    )
    keys = ("action", "from_version", "to_version", "actor", "at", "forced", "reason", VALIDATION_STATUS)
    return [{"run_id": r.info.run_id, **{k: r.data.tags.get(k, "") for k in keys}} for r in runs]


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
                    "validation": (mv.tags or {}).get(VALIDATION_STATUS, ""),
                    "validation_reason": (mv.tags or {}).get(VALIDATION_REASON, ""),
                    "metrics": {k: metrics[k] for k in KEY_METRICS if k in metrics},
                }
            )
        out.append({"name": rm.name, "description": rm.description or "", "versions": versions})
    return out
