"""Dead-letter stores: rejected input kept raw, with the reason it was rejected."""

from features.deadletter.base import DeadLetter, DeadLetterStore
from features.deadletter.factory import open_dead_letter_store

__all__ = ["DeadLetter", "DeadLetterStore", "open_dead_letter_store"]
