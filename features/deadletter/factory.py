"""Pick the dead-letter backend named by configuration."""

from __future__ import annotations

from features.config import S3DeadLetterConfig, SqliteDeadLetterConfig
from features.deadletter.base import DeadLetterStore


def open_dead_letter_store(config: SqliteDeadLetterConfig | S3DeadLetterConfig) -> DeadLetterStore:
    if isinstance(config, SqliteDeadLetterConfig):
        from features.deadletter.sqlite import SqliteDeadLetterStore

        return SqliteDeadLetterStore(config)
    from features.deadletter.s3 import S3DeadLetterStore

    return S3DeadLetterStore(config)
