"""The dead-letter interface: append rejected items durably; read them back in order."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import msgspec


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

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
