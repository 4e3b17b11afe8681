"""Dead letters of one request, kept within a byte budget.

A rejected item is kept as sent so that someone can see what a client got wrong, but a client
must not be able to turn a small request into megabytes of dead-letter storage (37 KB of gzip
once grew the store by 10 MB). Each letter keeps at most ``max_dead_letter_bytes`` of its item
and one request at most ``max_dead_letter_bytes_per_request`` in all; every rejection still
gets its letter (with its reason), and a cut letter says so in its reason.
"""

from __future__ import annotations

from features.config import CollectorConfig
from features.deadletter import DeadLetter


class DeadLetterBudget:
    """Builds one request's dead letters; ``raw`` bytes beyond the budget are cut, never kept."""

    def __init__(self, per_letter: int, per_request: int):
        self.per_letter = per_letter
        self.left = per_request

    @classmethod
    def of(cls, config: CollectorConfig) -> DeadLetterBudget:
        return cls(config.max_dead_letter_bytes, config.max_dead_letter_bytes_per_request)

    def letter(
        self,
        *,
        received_at: int,
        reason: str,
        raw: bytes,
        game_id: str | None,
        request_id: str,
        index: int | None = None,
    ) -> DeadLetter:
        keep = min(len(raw), self.per_letter, self.left)
        self.left -= keep
        text = raw[:keep].decode("utf-8", "replace")
        if len(text) != keep or len(raw) > keep:  # replacement characters may take more bytes than they replace
            text = text.encode()[:keep].decode("utf-8", "ignore")
        if keep < len(raw):
            why = "max_dead_letter_bytes" if keep == self.per_letter else "max_dead_letter_bytes_per_request spent"
            reason = f"{reason} [raw truncated to {keep} of {len(raw)} bytes: {why}]"
        return DeadLetter(
            received_at=received_at, reason=reason, raw=text, game_id=game_id, index=index, request_id=request_id
        )
