"""The online-store interface: versioned upserts, point reads, erasure."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import msgspec


class Profile(msgspec.Struct, kw_only=True):
    """A player's online profile: folded state, features as of ``as_of``, and hop timestamps."""

    player_id: str
    version: int
    """Monotonic per player (the streaming job's processing time in epoch ms, bumped past the
    stored version): an older write never replaces a newer."""
    as_of: int
    """Epoch ms the ``features`` were computed as of."""
    features: dict[str, float | int | None]
    state: dict[str, Any]
    timestamps: dict[str, int] = msgspec.field(default_factory=dict)
    """Latest event's hops: ``event_time``, ``received_at``, ``stream_at``, ``processed_at``,
    and ``profile_written_at`` (stamped by the store on write)."""
    feature_set: str = ""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Profile)


def encode_profile(p: Profile) -> bytes:
    return _encoder.encode(p)


def decode_profile(data: bytes | str) -> Profile:
    return _decoder.decode(data)


class OnlineStore(ABC):
    @abstractmethod
    def put(self, profiles: Sequence[Profile]) -> int:
        """Write each profile unless the stored one has an equal or higher ``version``; stamps
        ``timestamps['profile_written_at']``. Returns how many were written."""

    @abstractmethod
    def get(self, player_id: str) -> Profile | None: ...

    def get_many(self, player_ids: Sequence[str]) -> dict[str, Profile]:
        out = {}
        for pid in player_ids:
            p = self.get(pid)
            if p is not None:
                out[pid] = p
        return out

    @abstractmethod
    def delete(self, player_id: str) -> bool:
        """Erase a player's profile (privacy); True if there was one."""

    @abstractmethod
    def count(self) -> int: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> OnlineStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
