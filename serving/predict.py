"""One prediction for one player: profile → features as of now → champion → content.

A player is the pair ``(game_id, player_id)``: the caller names its game (the game of its API
key), and only that game's profile of the player id is read, so one game can never score
another game's player of the same id.

Features are computed at request time from the profile's folded state with the same
``FeatureSet`` the batch job used for training (``ProfileState.features``), not read from the
profile's stored ``features``, which were computed as of the last event and go stale as windows
slide. Any online set can be computed so, since the streaming job folds the inputs of every
online set into each profile; a version trained on a set that is not online is refused
(``model_error``, logged naming the model and the set), never scored from empty buckets.

The game always gets content: a slow or failing online-store read, no profile, no champion, or a
model error answers with the model's fallback content, ``fallback: true`` and a
``reason`` (one of ``FALLBACK_REASONS``, also a metric label). The one exception is a model
name that is not declared at all, which is the caller's mistake (HTTP 404).

Request-time context (``features.model_context``) is read per the model YAML's ``context`` by a
decoder built once per declaration (``serving.context``): the encoded fields follow the profile
features as the model's last inputs. A value of the wrong type for a declared field raises
``ClientMistake`` (HTTP 400 naming the field) before anything is read; keys the YAML does not
declare are ignored. A version trained with other context than the YAML declares is refused
(``model_error``, logged naming the fields: ``serving.model_files.check_context``), since it
would read the request's values as other inputs than it learned from.

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
from features.definitions import FEATURE_SETS, FeatureSet
from features.errors import ModelNotFound, OnlineStoreError, OnlineStoreTimeout
from features.latency import HOP_STAMPS
from features.model_config import ModelConfig, load_model_config, served_feature_set
from features.online import OnlineStore
from features.online.base import FoldedState
from features.profile_state import ProfileState
from serving.context import NO_CONTEXT, ContextDecoder
from serving.logsafe import digest_for_log
from serving.model_files import check_context
from serving.models import CHALLENGER, CHAMPION, ChampionCache, ChampionModel
from serving.prediction_log import PredictionLog

log = logging.getLogger(__name__)

PROFILE_HOPS = tuple(stamp for stamp in HOP_STAMPS if stamp != "served_at")
"""The hop timestamps a profile carries (``features.latency``); serving adds ``served_at``."""
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
        prediction_log: PredictionLog | None = None,
        feature_sets: Mapping[str, FeatureSet] | None = None,
    ):
        self.settings = settings
        self.feature_sets: Mapping[str, FeatureSet] = FEATURE_SETS if feature_sets is None else feature_sets
        """The feature sets by name that versions are scored with (default: every set defined)."""
        self.store = online_store
        self.champions: Champions = champions or ChampionCache(settings)
        self._clock_ms = clock_ms
        self._configs: dict[str, ModelConfig] = dict(configs or {})
        self._decoders: dict[str, ContextDecoder] = {}
        self._lock = threading.Lock()
        self.prediction_log = prediction_log
        """Where a sample of predictions goes (``serving.prediction_log``); ``None``: nowhere."""

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
        ``ModelNotFound`` for an undeclared model and ``ClientMistake`` for a context value of
        the wrong type for a field the model declares.

        ``context`` is what the game knows about the request (platform, placement): the fields
        the model YAML declares become model inputs, anything else is ignored.
        """
        cfg = self.config(model)
        decoder = self.context_decoder(cfg)
        inputs, used = decoder.decode(context)  # a client's mistake is a 400 whatever the profile
        as_of = self._clock_ms()
        try:
            profile = self.store.get_scoring(game_id, player_id)
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
            features = self._features(answering, cfg, profile.state, as_of)
            score = self._scored(answering, cfg, decoder, features, inputs)
        except Exception:
            log.exception("model %s v%d failed to score", model, answering.version)
            return self._fallback(cfg, game_id, player_id, answering.version, "model_error", hops)
        record: dict[str, Any] = {"model": model, "champion": champion.version, "served": answering.version}
        if challenger is not None and challenger is not answering:
            record["challenger"] = challenger.version
            try:
                record["challenger_score"] = self._scored(
                    challenger, cfg, decoder, self._features(challenger, cfg, profile.state, as_of), inputs
                )
            except Exception:
                log.exception("challenger %s v%d failed to score", model, challenger.version)
        if log.isEnabledFor(logging.INFO):  # the line's dict and digest only when it is written
            log.info(
                "prediction %s",
                {**record, "game": game_id, "player": digest_for_log(player_id), "score": round(score, 6)},
            )
        out = {
            "model": model,
            "version": answering.version,
            "player_id": player_id,
            "prediction": {"score": score, **cfg.response.content_for(score)},
            "fallback": False,
            "timestamps": {**hops, "features_as_of": as_of, "served_at": self._clock_ms()},
        }
        if self.prediction_log is not None:
            versions = {k: record.get(k) for k in ("champion", "challenger", "challenger_score")}
            self.prediction_log.offer({**log_record(out, game_id, player_id, features, used), **versions})
        return out

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

    def _features(self, model: ChampionModel, cfg: ModelConfig, state: FoldedState, as_of: int) -> dict[str, Any]:
        # The features of the set the version was trained on, even if the config moved on.
        fs = self.feature_sets.get(model.feature_set, cfg.fs)
        if not fs.online:  # no profile holds its buckets: refuse, naming the model and the set
            served_feature_set(model.name, fs.full_name, self.feature_sets)
        # features() only reads the state: a state of another shape fails here (model_error)
        return ProfileState(days=state.days, last=state.last, tiles=state.tiles, life=state.life).features(fs, as_of)

    def context_decoder(self, cfg: ModelConfig) -> ContextDecoder:
        """The decoder of ``cfg``'s context fields, built once per model."""
        decoder = self._decoders.get(cfg.name)
        if decoder is None:
            decoder = ContextDecoder.of(cfg.context_encodings) if cfg.context else NO_CONTEXT
            self._decoders[cfg.name] = decoder  # a racing thread builds an equal one: harmless
        return decoder

    @staticmethod
    def _scored(
        model: ChampionModel, cfg: ModelConfig, decoder: ContextDecoder, features: dict[str, Any], inputs: list[float]
    ) -> float:
        """``model``'s score of the profile ``features`` joined with the request's context ``inputs``."""
        if model.context != decoder.encodings:  # read otherwise than it was trained: refuse, naming why
            check_context(model, cfg)
        return model.predict_proba(features, inputs)

    def _fallback(
        self, cfg: ModelConfig, game_id: str, player_id: str, version: int | None, reason: str, hops: dict[str, int]
    ) -> dict[str, Any]:
        log.info(
            "fallback %s", {"model": cfg.name, "game": game_id, "player": digest_for_log(player_id), "reason": reason}
        )
        out = {
            "model": cfg.name,
            "version": version,
            "player_id": player_id,
            "prediction": {"score": None, **cfg.fallback.content},
            "fallback": True,
            "reason": reason,
            "timestamps": {**hops, "served_at": self._clock_ms()},
        }
        if self.prediction_log is not None:
            self.prediction_log.offer(log_record(out, game_id, player_id, None))
        return out


def log_record(
    out: dict[str, Any],
    game_id: str,
    player_id: str,
    features: dict[str, Any] | None,
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The prediction log's record of one answer: what it scored (the profile's features and the
    context values used, after defaults and clamping) and said, the player as a digest of the
    stored (pseudonymous, where configured) id, never the id itself."""
    return {
        "served_at": out["timestamps"]["served_at"],
        "model": out["model"],
        "version": out["version"],
        "game_id": game_id,
        "player_key": digest_for_log(player_id),
        "score": out["prediction"].get("score"),
        "fallback": out["fallback"],
        "reason": out.get("reason"),
        "features": features,
        "context": context,
        "timestamps": {k: v for k, v in out["timestamps"].items() if k in HOP_STAMPS},
        "champion": None,
        "challenger": None,
        "challenger_score": None,
    }
