"""The wire form of a stream record: a zstd-compressed JSON batch of normalised events.

Compressing a whole batch per record is the cost lever on Kinesis (fewer, fuller 25 KB PUT
payload units) and on disk. ``stream_at`` is stamped once per record, when it is put.
"""

from __future__ import annotations

from typing import Any

import msgspec
import zstandard

RECORD_VERSION = 1
_LEVEL = 3
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class _Batch(msgspec.Struct):
    v: int
    stream_at: int
    events: list[dict[str, Any]]


def encode_batch(events: list[dict[str, Any]], stream_at_ms: int) -> bytes:
    payload = _encoder.encode(_Batch(v=RECORD_VERSION, stream_at=stream_at_ms, events=events))
    return zstandard.ZstdCompressor(level=_LEVEL).compress(payload)


def decode_batch(data: bytes) -> tuple[int, list[dict[str, Any]]]:
    """``(stream_at_ms, events)`` of one record."""
    raw = zstandard.ZstdDecompressor().decompress(data)
    obj = _decoder.decode(raw)
    return int(obj["stream_at"]), list(obj["events"])
