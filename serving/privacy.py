"""What the collector stores of a game's players: pseudonymised ids, policy-reduced properties.

``CollectorPrivacy`` holds every game's ``Pseudonymiser`` (``features.pseudonyms``) and
``DataPolicy`` (``features.data_policy``), built once at start-up. ``Collector.prepare_items``,
which ``POST /v1/events`` and every vendor adapter end in, applies them to each valid event
before it is batched for the stream, and reduces each dead letter the same way:

- a rejected item keeps only the contract's envelope fields with scalar values (fields outside
  the contract are dropped, whatever they hold), its ``player_id`` pseudonymised and its
  ``properties`` as the policy allows (dropped whole when they nest past the contract's depth);
- an item that is not a JSON object, a vendor event that could not be mapped, and a body that
  cannot be parsed at all keep only their size and SHA-256 digest (``{"bytes", "sha256"}``):
  nothing in them can be told apart from personal data.

A game with neither ``pseudonymise`` nor ``data_policy`` is not reduced: its events and dead
letters are stored as sent (within the dead-letter byte budgets).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from features.config import GameConfig
from features.contract import MAX_PROPERTIES_DEPTH, Event, nesting_depth
from features.data_policy import DataPolicy
from features.pseudonyms import GamePseudonyms, Pseudonymiser

if TYPE_CHECKING:
    from features.online import OnlineStore, Profile
    from serving.predict import Predictor

_ENVELOPE = frozenset(Event.__struct_fields__)
_decode = msgspec.json.Decoder().decode


def digest_only(raw: bytes) -> bytes:
    """The dead-letter form of bytes that may not be kept: their size and SHA-256."""
    return msgspec.json.encode({"bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()})


@dataclass(frozen=True)
class GamePrivacy:
    """One game's pseudonymiser and policy; ``None`` for each that is off."""

    pseudonymiser: Pseudonymiser | None
    policy: DataPolicy | None

    def events(self, player_id: str, events: list[Event]) -> str:
        """Rewrite one player's valid events in place; returns the id they are stored under."""
        stored = self.pseudonymiser.current(player_id) if self.pseudonymiser is not None else player_id
        policy = self.policy
        for ev in events:
            ev.player_id = stored
            if policy is not None and ev.properties:
                ev.properties = policy.apply(ev.properties)
        return stored

    def rejected_item(self, item: Any, raw: bytes) -> bytes:
        """What a rejected item's dead letter may keep (see the module docstring).

        ``item`` is what the core validated (an ``Event``, a ``msgspec.Raw``, a decoded value, or
        a vendor event's mapped form, ``None`` when it could not be mapped) and ``raw`` the
        bytes as sent (a vendor's format, for a vendor event)."""
        obj: Any = item
        if isinstance(item, Event):
            obj = msgspec.to_builtins(item)
        elif isinstance(item, msgspec.Raw):
            try:
                obj = _decode(item)
            except (msgspec.DecodeError, RecursionError):
                return digest_only(raw)
        if not isinstance(obj, dict):
            return digest_only(raw)
        out: dict[str, Any] = {}
        for name, value in obj.items():
            if name not in _ENVELOPE:
                continue
            if name == "properties":
                if not isinstance(value, dict):
                    continue
                if self.policy is not None:
                    if nesting_depth(value) > MAX_PROPERTIES_DEPTH:
                        continue
                    value = self.policy.apply(value)
            elif isinstance(value, (dict, list)):
                continue
            elif name == "player_id" and self.pseudonymiser is not None:
                if not isinstance(value, str):
                    continue
                value = self.pseudonymiser.current(value)
            out[name] = value
        return msgspec.json.encode(out)


class CollectorPrivacy:
    """Every game's ``GamePrivacy``; games with neither setting have none (stored as sent)."""

    def __init__(self, by_game: Mapping[str, GamePrivacy]):
        self._by_game = dict(by_game)

    @classmethod
    def of(cls, games: Mapping[str, GameConfig], pseudonyms: GamePseudonyms) -> CollectorPrivacy:
        out = {}
        for game, cfg in games.items():
            p = pseudonyms.for_game(game)
            policy = DataPolicy(cfg.data_policy) if cfg.data_policy is not None else None
            if p is not None or policy is not None:
                out[game] = GamePrivacy(p, policy)
        return cls(out)

    def for_game(self, game: str) -> GamePrivacy | None:
        return self._by_game.get(game)


# --- serving: the id the game sends, looked up as it is stored --------------------------------


def read_profile(store: OnlineStore, pseudonyms: GamePseudonyms, game: str, player_id: str) -> Profile | None:
    """The profile of the id the game sent, under its current pseudonym, else (during a secret
    rotation) under an older one; ``None`` when there is none."""
    for stored in pseudonyms.stored_ids(game, player_id):
        found = store.get(game, stored)
        if found is not None:
            return found
    return None


def predict_for(
    predictor: Predictor, pseudonyms: GamePseudonyms, model: str, game: str, player_id: str, context: dict[str, Any]
) -> dict[str, Any]:
    """``Predictor.predict`` for the id the game sent: under the current pseudonym, and only
    when that finds no profile, under older ones (one read in the common case). The answer
    names the player as the game did, never by the pseudonym."""
    ids = pseudonyms.stored_ids(game, player_id)
    out = predictor.predict(model, game, ids[0], context)
    for older in ids[1:]:
        if not (out["fallback"] and out.get("reason") == "no_profile"):
            break
        out = predictor.predict(model, game, older, context)
    out["player_id"] = player_id
    return out
