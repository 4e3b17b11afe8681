"""The wire form of a stream record: a zstd-compressed JSON batch of events.

Two record versions exist, and readers get the same normalised dicts from both:
1. ``{"v": 1, "stream_at", "events": [normalised event, ...]}``;
2. ``{"v": 2, "stream_at", "received_at", "events": [event as sent, ...]}`` — what the collector
   writes: validated events are encoded as received (no per-event rewriting on the hot path)
   and normalised by ``decode_batch`` on the reading side.

Compressing a whole batch per record is the cost lever on Kinesis (fewer, fuller 25 KB PUT
payload units) and on disk. The ``stream_at`` inside a record is the collector's, stamped just
before the put; readers prefer the stream's own stamp after the durable write
(``ReadRecord.stream_at``) and use this one only for a backend that has none.
"""

from __future__ import annotations

import threading
from typing import Any

import msgspec
import zstandard

from features.contract import Event, normalise

RECORD_VERSION = 1
EVENTS_RECORD_VERSION = 2
_LEVEL = 3
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class _Batch(msgspec.Struct):
    v: int
    stream_at: int
    events: list[dict[str, Any]]


class _EventsBatch(msgspec.Struct):
    v: int
    stream_at: int
    received_at: int
    events: list[Event]


_events_decoder = msgspec.json.Decoder(_EventsBatch)
_V2_PREFIX = b'{"v":2,'


def encode_batch(events: list[dict[str, Any]], stream_at_ms: int) -> bytes:
    payload = _encoder.encode(_Batch(v=RECORD_VERSION, stream_at=stream_at_ms, events=events))
    return _compressor().compress(payload)


_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    """One compressor per thread: building one costs more than compressing a small batch."""
    c = getattr(_local, "zstd", None)
    if c is None:
        c = _local.zstd = zstandard.ZstdCompressor(level=_LEVEL)
    return c


def encode_events(events: list[Event], received_at_ms: int, stream_at_ms: int) -> bytes:
    """A version-2 record of validated events from one request (the collector's hot path)."""
    payload = _encoder.encode(
        _EventsBatch(v=EVENTS_RECORD_VERSION, stream_at=stream_at_ms, received_at=received_at_ms, events=events)
    )
    return _compressor().compress(payload)


def decode_batch(data: bytes) -> tuple[int, list[dict[str, Any]]]:
    """``(stream_at_ms, normalised events)`` of one record of either version."""
    raw = zstandard.ZstdDecompressor().decompress(data)
    if raw.startswith(_V2_PREFIX):
        batch = _events_decoder.decode(raw)
        return batch.stream_at, [normalise(e, batch.received_at) for e in batch.events]
    obj = _decoder.decode(raw)
    return int(obj["stream_at"]), list(obj["events"])
