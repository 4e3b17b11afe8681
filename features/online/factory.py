"""Pick the online-store backend named by configuration."""

from __future__ import annotations

from features.config import DynamoDBOnlineStoreConfig, SqliteOnlineStoreConfig
from features.online.base import OnlineStore


def open_online_store(config: SqliteOnlineStoreConfig | DynamoDBOnlineStoreConfig) -> OnlineStore:
    if isinstance(config, SqliteOnlineStoreConfig):
        from features.online.sqlite import SqliteOnlineStore

        return SqliteOnlineStore(config)
    from features.online.dynamodb import DynamoDBOnlineStore

    return DynamoDBOnlineStore(config)
