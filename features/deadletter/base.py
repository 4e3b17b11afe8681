"""The dead-letter interface: append rejected items durably; read them back in order."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence

import msgspec

_ID_CHARS = r"A-Za-z0-9_.:\-"
"""The characters of a player id (``features.contract.PLAYER_ID_PATTERN``)."""


def player_pattern(player_ids: Sequence[str]) -> str:
    """A regex (valid in Python and Java) matching any of ``player_ids`` as a whole token.

    A raw dead letter is text as the client sent it: a JSON event (``"player_id":"p1"``), a
    vendor's event (``"userId": "p1"``, ``"uid":"p1"``), a query string (``uid=p1&``) or the cut
    start of an unparseable body. What they share is the id standing alone between characters
    that cannot be part of an id, so ``p1`` matches in all of them and never inside ``p10``.
    """
    if not player_ids:
        raise ValueError("player_pattern needs at least one player id")
    alternatives = "|".join("".join(c if c.isalnum() else "\\" + c for c in pid) for pid in player_ids)
    return f"(?<![{_ID_CHARS}])(?:{alternatives})(?![{_ID_CHARS}])"


def names_player(letter: DeadLetter, game_id: str, pattern: re.Pattern[str]) -> bool:
    """True when ``letter`` came from ``game_id`` and its raw text names a player of ``pattern``."""
    return letter.game_id == game_id and pattern.search(letter.raw) is not None


class DeadLetter(msgspec.Struct, kw_only=True):
    received_at: int
    """Epoch ms the collector received the request."""
    reason: str
    raw: str
    """The rejected item as received (JSON text of one event, or the start of an unparseable body)."""
    game_id: str | None = None
    index: int | None = None
    """Position of the item in its request (``None`` when the whole request was rejected)."""
    request_id: str | None = None


class DeadLetterStore(ABC):
    @abstractmethod
    def put(self, letters: Sequence[DeadLetter]) -> None:
        """Durable on return."""

    @abstractmethod
    def read(self, after: str | None, limit: int) -> list[tuple[str, DeadLetter]]:
        """``(position, letter)`` pairs after ``after``, oldest first."""

    @abstractmethod
    def erase(self, game_id: str, player_ids: Sequence[str]) -> int:
        """Remove every letter of ``game_id`` whose raw text names one of ``player_ids``
        (``names_player``); the number removed. Positions of the letters kept do not change
        order, so a reader resuming after one of them neither skips nor repeats a letter it
        could still read."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
