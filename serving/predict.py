"""One prediction for one player: profile → features as of now → champion → content.

A player is the pair ``(game_id, player_id)``: the caller names its game (the game of its API
key), and only that game's profile of the player id is read, so one game can never score
another game's player of the same id.

Features are computed at request time from the profile's folded state with the same
``FeatureSet`` the batch job used for training (``ProfileState.features``), not read from the
profile's stored ``features``, which were computed as of the last event and go stale as windows
slide. The game always gets content: a slow or failing online-store read, no profile, no champion,
or a model error answers with the model's fallback content, ``fallback: true`` and a
``reason`` (one of ``FALLBACK_REASONS``, also a metric label). The one exception is a model
name that is not declared at all, which is the caller's mistake (HTTP 404).

Challenger traffic follows the model YAML's ``serving.challenger``: in ``split`` mode a sticky
share of players (by a hash of game and player) is answered by the ``challenger`` alias; in
``shadow`` mode the challenger scores every request too but never answers. Every prediction
is logged with both versions, the player as a digest.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from features.config import Settings
from features.contract import now_ms
from features.definitions import FEATURE_SETS
from features.errors import ModelNotFound, OnlineStoreError, OnlineStoreTimeout
from features.model_config import ModelConfig, load_model_config
from features.online import OnlineStore
from features.profile_state import ProfileState
from serving.logsafe import digest_for_log
from serving.models import CHALLENGER, CHAMPION, ChampionCache, ChampionModel

log = logging.getLogger(__name__)

PROFILE_HOPS = ("event_time", "received_at", "stream_at", "processed_at", "profile_written_at")
FALLBACK_REASONS = ("store_timeout", "store_error", "no_profile", "no_champion", "model_error")


class Champions(Protocol):
    """Where versions come from: the registry (``ChampionCache``) or a package's files."""

    def get(self, name: str, alias: str = CHAMPION) -> ChampionModel: ...


def challenger_bucket(game_id: str, player_id: str) -> float:
    """A player's fixed place in [0, 1): the same player always lands on the same side."""
    digest = hashlib.sha256(f"{game_id}#{player_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class Predictor:
    def __init__(
        self,
        settings: Settings,
        online_store: OnlineStore,
        champions: Champions | None = None,
        clock_ms: Callable[[], int] = now_ms,
        configs: Mapping[str, ModelConfig] | None = None,
    ):
        self.settings = settings
        self.store = online_store
        self.champions: Champions = champions or ChampionCache(settings)
        self._clock_ms = clock_ms
        self._configs: dict[str, ModelConfig] = dict(configs or {})
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
        try:
            profile = self.store.get(game_id, player_id)
        except OnlineStoreTimeout:
            return self._fallback(cfg, game_id, player_id, None, "store_timeout", {})
        except OnlineStoreError:
            log.warning("online store read failed for model %s", model, exc_info=True)
            return self._fallback(cfg, game_id, player_id, None, "store_error", {})
        if profile is None:
            return self._fallback(cfg, game_id, player_id, None, "no_profile", {})
        hops = {k: v for k, v in profile.timestamps.items() if k in PROFILE_HOPS}
        try:
            champion = self.champions.get(model)
        except ModelNotFound:
            return self._fallback(cfg, game_id, player_id, None, "no_champion", hops)
        except Exception:
            log.exception("the registry could not name the champion of %s", model)
            return self._fallback(cfg, game_id, player_id, None, "no_champion", hops)
        challenger = self._challenger(cfg)
        answering = champion
        split = cfg.serving.challenger.mode == "split"
        if challenger is not None and split and challenger_bucket(game_id, player_id) < cfg.serving.challenger.share:
            answering = challenger
        try:
            score = self._score(answering, cfg, profile.state, as_of)
        except Exception:
            log.exception("model %s v%d failed to score", model, answering.version)
            return self._fallback(cfg, game_id, player_id, answering.version, "model_error", hops)
        record: dict[str, Any] = {"model": model, "champion": champion.version, "served": answering.version}
        if challenger is not None and challenger is not answering:
            record["challenger"] = challenger.version
            try:
                record["challenger_score"] = self._score(challenger, cfg, profile.state, as_of)
            except Exception:
                log.exception("challenger %s v%d failed to score", model, challenger.version)
        log.info(
            "prediction %s",
            {**record, "game": game_id, "player": digest_for_log(player_id), "score": round(score, 6)},
        )
        return {
            "model": model,
            "version": answering.version,
            "player_id": player_id,
            "prediction": {"score": score, **cfg.response.content_for(score)},
            "fallback": False,
            "timestamps": {**hops, "features_as_of": as_of, "served_at": self._clock_ms()},
        }

    def _challenger(self, cfg: ModelConfig) -> ChampionModel | None:
        """The challenger when the YAML gives it traffic and the alias exists; else ``None``."""
        spec = cfg.serving.challenger
        if spec.mode == "off" or (spec.mode == "split" and spec.share == 0):
            return None
        try:
            return self.champions.get(cfg.name, CHALLENGER)
        except ModelNotFound:
            return None
        except Exception:
            log.warning("challenger of %s unavailable; champion only", cfg.name, exc_info=True)
            return None

    @staticmethod
    def _score(model: ChampionModel, cfg: ModelConfig, state: dict[str, Any], as_of: int) -> float:
        # The features of the set the version was trained on, even if the config moved on.
        fs = FEATURE_SETS.get(model.feature_set, cfg.fs)
        return model.predict_proba(ProfileState.from_dict(state).features(fs, as_of))

    def _fallback(
        self, cfg: ModelConfig, game_id: str, player_id: str, version: int | None, reason: str, hops: dict[str, int]
    ) -> dict[str, Any]:
        log.info(
            "fallback %s", {"model": cfg.name, "game": game_id, "player": digest_for_log(player_id), "reason": reason}
        )
        return {
            "model": cfg.name,
            "version": version,
            "player_id": player_id,
            "prediction": {"score": None, **cfg.fallback.content},
            "fallback": True,
            "reason": reason,
            "timestamps": {**hops, "served_at": self._clock_ms()},
        }
