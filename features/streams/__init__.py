"""Streams: where the collector puts event batches and the Spark jobs read them.

``Stream`` is the interface; ``SqliteStream`` (embedded default) and ``KinesisStream`` (cloud)
implement it; ``open_stream`` picks one from configuration.
"""

from features.streams.base import ReadRecord, Stream, StreamRecord
from features.streams.codec import decode_batch, encode_batch
from features.streams.factory import open_stream

__all__ = ["ReadRecord", "Stream", "StreamRecord", "decode_batch", "encode_batch", "open_stream"]
