"""Pick the online-store backend named by configuration."""

from __future__ import annotations

from features.config import DynamoDBOnlineStoreConfig, SqliteOnlineStoreConfig
from features.online.base import OnlineStore


def open_online_store(
    config: SqliteOnlineStoreConfig | DynamoDBOnlineStoreConfig, read_timeout_ms: float | None = None
) -> OnlineStore:
    """``read_timeout_ms``: a budget for each point read (serving's latency budget): a read
    that takes longer raises ``OnlineStoreTimeout``. Jobs that fold profiles pass none."""
    if isinstance(config, SqliteOnlineStoreConfig):
        from features.online.sqlite import SqliteOnlineStore

        return SqliteOnlineStore(config, read_timeout_ms)
    from features.online.dynamodb import DynamoDBOnlineStore

    return DynamoDBOnlineStore(config, read_timeout_ms)
