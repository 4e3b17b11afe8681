"""The online-store interface: versioned upserts, point reads, erasure."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import msgspec

PlayerKey = tuple[str, str]
"""``(game_id, player_id)``: a player is the pair, so the same player id in two games is two
players with two profiles (shared/ARCHITECTURE.md, "Identity")."""


class Profile(msgspec.Struct, kw_only=True):
    """A player's online profile: folded state, features as of ``as_of``, and hop timestamps."""

    game_id: str
    player_id: str
    version: int
    """Monotonic per player, i.e. per ``(game_id, player_id)`` (the streaming job's processing
    time in epoch ms, bumped past the stored version): an older write never replaces a newer."""
    as_of: int
    """Epoch ms the ``features`` were computed as of."""
    features: dict[str, float | int | str | None]
    state: dict[str, Any]
    timestamps: dict[str, int] = msgspec.field(default_factory=dict)
    """Latest event's hops: ``event_time``, ``received_at``, ``stream_at``, ``processed_at``,
    and ``profile_written_at`` (stamped by the store on write)."""
    feature_set: str = ""
    """The online feature sets whose inputs ``state`` folds and whose ``features`` it holds,
    comma-separated (``player_activity_v1``)."""

    @property
    def key(self) -> PlayerKey:
        """``(game_id, player_id)``, the profile's identity in every store."""
        return (self.game_id, self.player_id)


def expires_at_s(profile: Profile, idle_expiry_days: float | None, written_at_ms: int) -> int | None:
    """Epoch seconds after which ``profile`` has expired (the unit DynamoDB's TTL reads), or
    ``None`` when profiles never expire.

    Counted from the latest event's ``received_at`` (the collector's clock, which a device
    cannot move), else from the write: a replay from the start of the stream must not bring a
    long-idle player back to life for another full period."""
    if idle_expiry_days is None:
        return None
    since_ms = profile.timestamps.get("received_at") or written_at_ms
    return -int(-(since_ms + idle_expiry_days * 86_400_000) // 1000)  # rounded up: never early


class FoldedState(msgspec.Struct):
    """What features are computed from of a profile's folded state (``ProfileState``): the
    day and 5-minute tiles, the lifetime cells and the latest times. The ``seen`` event ids,
    most of a profile's bytes, serve only the streaming job's duplicate filter."""

    days: dict[str, dict[str, list[Any]]] = {}
    last: dict[str, int] = {}
    tiles: dict[str, dict[str, list[Any]]] = {}
    life: dict[str, list[Any]] = {}


class ScoringProfile(msgspec.Struct):
    """What a prediction reads of a profile (``OnlineStore.get_scoring``): the folded state's
    days and latest times, and the hop timestamps."""

    state: FoldedState
    timestamps: dict[str, int] = {}


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Profile)
_scoring_decoder = msgspec.json.Decoder(ScoringProfile)


def encode_profile(p: Profile) -> bytes:
    return _encoder.encode(p)


def decode_profile(data: bytes | str) -> Profile:
    return _decoder.decode(data)


def scoring_profile(p: Profile) -> ScoringProfile:
    """The part of ``p`` a prediction reads, as stored: a state of another shape is left for
    the prediction to fail on (``model_error``), as it would on the whole profile."""
    state = p.state
    return ScoringProfile(
        FoldedState(state.get("days", {}), state.get("last", {}), state.get("tiles") or {}, state.get("life") or {}),
        p.timestamps,
    )


def decode_scoring_profile(data: bytes | str) -> ScoringProfile:
    """``scoring_profile(decode_profile(data))`` without building what a prediction does not
    read: the ``seen`` ids and the stored ``features`` are skipped while parsing. A body the
    narrow types refuse is decoded whole, so it fails (or not) exactly as ``decode_profile``."""
    try:
        return _scoring_decoder.decode(data)
    except msgspec.ValidationError:
        return scoring_profile(decode_profile(data))


class OnlineStore(ABC):
    """Profiles keyed by ``(game_id, player_id)``: every read, write and erasure names the game,
    so one game's player can never see, overwrite or erase another game's player of the same id."""

    @abstractmethod
    def put(self, profiles: Sequence[Profile]) -> int:
        """Write each profile unless the stored one of the same ``(game_id, player_id)`` has an
        equal or higher ``version``; stamps ``timestamps['profile_written_at']``. Returns how
        many were written."""

    @abstractmethod
    def get(self, game_id: str, player_id: str) -> Profile | None: ...

    def get_scoring(self, game_id: str, player_id: str) -> ScoringProfile | None:
        """What a prediction reads of the profile ``get`` returns (same errors, same ``None``);
        stores that hold profiles as bytes decode only that part."""
        p = self.get(game_id, player_id)
        return scoring_profile(p) if p is not None else None

    def get_many(self, keys: Sequence[PlayerKey]) -> dict[PlayerKey, Profile]:
        """The stored profiles among ``keys`` (``(game_id, player_id)`` pairs), by pair."""
        out = {}
        for game_id, player_id in keys:
            p = self.get(game_id, player_id)
            if p is not None:
                out[(game_id, player_id)] = p
        return out

    @abstractmethod
    def delete(self, game_id: str, player_id: str) -> bool:
        """Erase one game's player's profile (privacy); True if there was one."""

    @abstractmethod
    def count(self) -> int: ...

    @abstractmethod
    def sweep_expired(self, now_ms: int) -> int:
        """Remove the profiles expired by ``now_ms`` (``idle_expiry_days``); how many went.
        Reads already treat them as absent: this only frees their space."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> OnlineStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EncodedProfileStore(OnlineStore):
    """A store holding each profile as its encoded body: ``get`` decodes all of it, and
    ``get_scoring`` only what a prediction reads, from the same one read (``_body``)."""

    @abstractmethod
    def _body(self, game_id: str, player_id: str) -> bytes | None:
        """The stored body of the player's profile, ``None`` when there is none."""

    def get(self, game_id: str, player_id: str) -> Profile | None:
        body = self._body(game_id, player_id)
        return decode_profile(body) if body is not None else None

    def get_scoring(self, game_id: str, player_id: str) -> ScoringProfile | None:
        body = self._body(game_id, player_id)
        return decode_scoring_profile(body) if body is not None else None
