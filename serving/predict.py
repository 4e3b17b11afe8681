"""One prediction for one player: profile → features as of now → champion → content.

A player is the pair ``(game_id, player_id)``: the caller names its game (the game of its API
key), and only that game's profile of the player id is read, so one game can never score
another game's player of the same id.

Features are computed at request time from the profile's folded state with the same
``FeatureSet`` the batch job used for training (``ProfileState.features``), not read from the
profile's stored ``features``, which were computed as of the last event and go stale as windows
slide. The game always gets content: no profile, no champion, or any failure in between answers
with the model's fallback content and ``fallback: true`` plus a ``reason``. The one exception is
a model name that is not declared at all, which is the caller's mistake (HTTP 404).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from features.config import Settings
from features.contract import now_ms
from features.definitions import FEATURE_SETS
from features.errors import ModelNotFound
from features.model_config import ModelConfig, load_model_config
from features.online import OnlineStore
from features.profile_state import ProfileState
from serving.models import ChampionCache

log = logging.getLogger(__name__)

PROFILE_HOPS = ("event_time", "received_at", "stream_at", "processed_at", "profile_written_at")


class Predictor:
    def __init__(
        self,
        settings: Settings,
        online_store: OnlineStore,
        champions: ChampionCache | None = None,
        clock_ms: Callable[[], int] = now_ms,
    ):
        self.settings = settings
        self.store = online_store
        self.champions = champions or ChampionCache(settings)
        self._clock_ms = clock_ms
        self._configs: dict[str, ModelConfig] = {}
        self._lock = threading.Lock()

    def config(self, model: str) -> ModelConfig:
        """The declaration of ``model``, read once per process; ``ModelNotFound`` if undeclared."""
        cfg = self._configs.get(model)
        if cfg is None:
            cfg = load_model_config(self.settings, model)
            with self._lock:
                self._configs[model] = cfg
        return cfg

    def predict(
        self, model: str, game_id: str, player_id: str, context: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """``{"model", "version", "player_id", "prediction", "fallback", "timestamps"}`` (plus
        ``"reason"`` on fallback) for player ``player_id`` of game ``game_id``. Raises only
        ``ModelNotFound`` for an undeclared model.

        ``context`` is what the game knows about the request (screen, placement); it is accepted
        so the HTTP contract is stable, and no current feature set reads it.
        """
        cfg = self.config(model)
        as_of = self._clock_ms()
        hops: dict[str, int] = {}
        version: int | None = None
        try:
            profile = self.store.get(game_id, player_id)
            if profile is None:
                return self._fallback(cfg, player_id, None, "no_profile", hops, as_of)
            hops = {k: v for k, v in profile.timestamps.items() if k in PROFILE_HOPS}
            try:
                champion = self.champions.get(model)
            except ModelNotFound:
                return self._fallback(cfg, player_id, None, "no_champion", hops, as_of)
            version = champion.version
            # The features of the set the champion was trained on, even if the config moved on.
            fs = FEATURE_SETS.get(champion.feature_set, cfg.fs)
            features = ProfileState.from_dict(profile.state).features(fs, as_of)
            score = champion.predict_proba(features)
        except Exception as exc:
            log.exception("prediction failed for model %s, game %s, player %s", model, game_id, player_id)
            return self._fallback(cfg, player_id, version, f"error: {type(exc).__name__}", hops, as_of)
        return {
            "model": model,
            "version": version,
            "player_id": player_id,
            "prediction": {"score": score, **cfg.response.content_for(score)},
            "fallback": False,
            "timestamps": {**hops, "features_as_of": as_of, "served_at": self._clock_ms()},
        }

    def _fallback(
        self, cfg: ModelConfig, player_id: str, version: int | None, reason: str, hops: dict[str, int], as_of: int
    ) -> dict[str, Any]:
        return {
            "model": cfg.name,
            "version": version,
            "player_id": player_id,
            "prediction": {"score": None, **cfg.fallback.content},
            "fallback": True,
            "reason": reason,
            "timestamps": {**hops, "served_at": self._clock_ms()},
        }
