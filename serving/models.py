"""The champion of each model, loaded once and re-resolved on a timer.

Serving answers ``models:/NAME@champion``. Asking the registry on every request would put a
database round trip on the hot path; asking once would mean a promotion needs a restart. So the
alias is re-resolved every ``serving.model_cache_seconds``, and the booster is only reloaded
when the version behind it changed. If the registry cannot be reached at that moment the
loaded champion keeps serving (likewise when a newly promoted version fails to load): a registry
outage must not turn into fallback content for every player.

Prediction scores one row with xgboost's own in-place prediction: through its C API
(``serving.native_booster``) for a champion loaded from files or the registry, or through
``Booster.inplace_predict`` on one float32 row for an ``xgboost.Booster`` given directly; either
is far cheaper than the pyfunc wrapper (≈1.6 ms, pandas and schema enforcement per call). MLflow,
xgboost's Python package and numpy are imported only when needed (a model loaded from the
registry, an ``xgboost.Booster`` scored), so a Lambda cold start imports none of them.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from features.config import Settings
from features.errors import ModelNotFound
from features.model_context import ContextEncoding
from serving.native_booster import NativeBooster

if TYPE_CHECKING:
    import numpy as np
    import xgboost as xgb

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class ChampionModel:
    name: str
    version: int
    booster: NativeBooster | xgb.Booster
    feature_names: tuple[str, ...]
    """Every input in order: the feature set's features, then the context fields (if any)."""
    feature_set: str
    context: tuple[ContextEncoding, ...] = ()
    """The request-time fields it was trained with, as they were encoded: its last inputs."""
    profile_features: tuple[str, ...] = field(init=False, repr=False, compare=False)
    """The inputs computed from the profile: ``feature_names`` without the context fields."""

    def __post_init__(self) -> None:
        k = len(self.context)
        if k and tuple(e.name for e in self.context) != self.feature_names[-k:]:
            raise ValueError(
                f"model '{self.name}' v{self.version}: its context fields {[e.name for e in self.context]} "
                f"are not its last inputs {list(self.feature_names[-k:])}"
            )
        object.__setattr__(self, "profile_features", self.feature_names[: len(self.feature_names) - k])

    def values(self, features: Mapping[str, float | int | None], context: Sequence[float] = ()) -> list[float]:
        """The model's inputs in its order: ``features`` by name, a missing or ``None`` one as
        NaN (which xgboost routes down each split's learned default branch, as in training),
        then the encoded ``context`` inputs (``serving.context``), in the fields' order."""
        out = []
        for n in self.profile_features:
            v = features.get(n)
            out.append(math.nan if v is None else v)
        if len(context) != len(self.context):
            raise ValueError(f"model '{self.name}' takes {len(self.context)} context inputs, not {len(context)}")
        out.extend(context)
        return out

    def row(self, features: Mapping[str, float | int | None], context: Sequence[float] = ()) -> np.ndarray:
        """``values`` as one float32 numpy row, what ``Booster.inplace_predict`` takes."""
        import numpy as np

        return np.array([self.values(features, context)], dtype=np.float32)

    def predict_proba(self, features: Mapping[str, float | int | None], context: Sequence[float] = ()) -> float:
        if isinstance(self.booster, NativeBooster):
            return self.booster.predict_row(self.values(features, context))
        return float(self.booster.inplace_predict(self.row(features, context))[0])


def recorded_context(metadata: Mapping[str, Any]) -> tuple[ContextEncoding, ...]:
    """The context encodings a version's metadata records (none for a version trained before
    models had context); ``msgspec.ValidationError`` when they are malformed."""
    return tuple(msgspec.convert(metadata.get("context") or [], list[ContextEncoding]))


@dataclass
class _Entry:
    model: ChampionModel
    checked_at: float


class ChampionCache:
    """``name`` → its current champion, re-resolved after ``settings.serving.model_cache_seconds``."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.ttl = settings.serving.model_cache_seconds
        self._clock = clock
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()
        self._client: Any = None

    def _registry(self) -> Any:
        if self._client is None:
            from mlflow import MlflowClient

            cfg = self.settings.mlflow
            self._client = MlflowClient(
                tracking_uri=cfg.tracking_uri, registry_uri=cfg.registry_uri or cfg.tracking_uri
            )
        return self._client

    def _alias_version(self, name: str, alias: str) -> int:
        from mlflow.exceptions import MlflowException

        try:
            mv = self._registry().get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise ModelNotFound(
                    f"model '{name}' has no {alias}: train it (`playerpulse train {name}`) or "
                    f"promote a version (`playerpulse promote {name}`)"
                ) from None
            raise
        return int(mv.version)

    def _load(self, name: str, version: int) -> ChampionModel:
        """Download the version's model folder once and read both the booster and the feature
        names from it, so the two always come from the same artifact."""
        # Progress bars are noise in a server's or a Lambda's log (an operator may still opt in).
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        import mlflow.artifacts
        import mlflow.xgboost
        from mlflow.models import Model

        cfg = self.settings.mlflow
        with tempfile.TemporaryDirectory(prefix=f"pp-{name}-v{version}-") as tmp:
            # Resolve the version's storage location through *our* registry client: a
            # ``models:/`` URI would be resolved against the process-wide default registry.
            source = self._registry().get_model_version_download_uri(name, str(version))
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=source, dst_path=tmp, tracking_uri=cfg.tracking_uri
            )
            metadata = Model.load(local).metadata or {}
            booster = mlflow.xgboost.load_model(local)
            # scored through the C API (serving.native_booster): the same trees, without the
            # Python wrapper's ~0.2 ms a call
            booster.save_model(str(Path(tmp) / "native.ubj"))
            native = NativeBooster.load(Path(tmp) / "native.ubj")
        names = metadata.get("feature_names") or booster.feature_names
        if not names:
            raise ModelNotFound(
                f"model '{name}' version {version} records no feature names: retrain it with "
                "`playerpulse train`, which stores them in the model metadata"
            )
        if booster.feature_names and list(booster.feature_names) != list(names):
            raise ModelNotFound(
                f"model '{name}' version {version}: metadata and booster disagree on feature order; retrain it"
            )
        return ChampionModel(
            name, version, native, tuple(names), str(metadata.get("feature_set", "")), recorded_context(metadata)
        )

    def get(self, name: str, alias: str = CHAMPION) -> ChampionModel:
        """The version of ``name`` behind ``alias``; ``ModelNotFound`` when there is none."""
        now = self._clock()
        key = (name, alias)
        entry = self._entries.get(key)
        if entry is not None and now - entry.checked_at < self.ttl:
            return entry.model
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now - entry.checked_at < self.ttl:
                return entry.model
            try:
                version = self._alias_version(name, alias)
            except ModelNotFound:
                self._entries.pop(key, None)
                raise
            except Exception:
                if entry is None:
                    raise
                log.warning("registry unreachable; keeping %s v%d for now", name, entry.model.version, exc_info=True)
                entry.checked_at = now
                return entry.model
            if entry is not None and entry.model.version == version:
                entry.checked_at = now
                return entry.model
            try:
                model = self._load(name, version)
            except Exception:
                if entry is None:
                    raise
                log.error("model %s v%d failed to load; keeping v%d", name, version, entry.model.version, exc_info=True)
                entry.checked_at = now
                return entry.model
            self._entries[key] = _Entry(model, now)
            if entry is not None:
                log.info("model %s: %s v%d replaces v%d", name, alias, version, entry.model.version)
            return model
