"""Pick the stream backend named by configuration."""

from __future__ import annotations

from features.config import KinesisStreamConfig, SqliteStreamConfig
from features.streams.base import Stream


def open_stream(config: SqliteStreamConfig | KinesisStreamConfig) -> Stream:
    if isinstance(config, SqliteStreamConfig):
        from features.streams.sqlite import SqliteStream

        return SqliteStream(config)
    from features.streams.kinesis import KinesisStream

    return KinesisStream(config)
