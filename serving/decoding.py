"""Turn a request body into a list of raw events, within the size limits.

Decompression never trusts the sender: output is capped at ``max_decompressed_bytes`` while it
is produced, so a gzip or zstd bomb costs at most that much memory and ends as a 413.
"""

from __future__ import annotations

import io
import zlib
from typing import Any

import msgspec
import zstandard

ENCODINGS = ("gzip", "zstd", "identity")


class BodyError(Exception):
    """The body cannot be used; ``status`` is the HTTP answer (400, 413 or 415)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity"):
        if len(body) > limit:
            raise BodyError(413, f"body is larger than {limit} bytes")
        return body
    if enc in ("gzip", "x-gzip"):
        d = zlib.decompressobj(wbits=31)
        try:
            out = d.decompress(body, limit + 1)
        except zlib.error as exc:
            raise BodyError(400, f"body is not valid gzip: {exc}") from None
        if len(out) > limit or d.unconsumed_tail:
            raise BodyError(413, f"body decompresses to more than {limit} bytes")
        if not d.eof:
            raise BodyError(400, "gzip body is truncated")
        return out
    if enc == "zstd":
        try:
            with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body)) as reader:
                out = reader.read(limit + 1)
        except zstandard.ZstdError as exc:
            raise BodyError(400, f"body is not valid zstd: {exc}") from None
        if len(out) > limit:
            raise BodyError(413, f"body decompresses to more than {limit} bytes")
        return out
    raise BodyError(415, f"Content-Encoding '{encoding}' is not supported; use one of {', '.join(ENCODINGS)}")


_decoder = msgspec.json.Decoder()


def parse_events(data: bytes, content_type: str | None) -> list[Any]:
    """A JSON array, ``{"events": [...]}``, or NDJSON (one event per line) → raw items."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype not in ("application/x-ndjson", "application/ndjson", "application/jsonl"):
        try:
            doc = _decoder.decode(data)
        except msgspec.DecodeError as exc:
            if b"\n" not in data.strip():
                raise BodyError(400, f"body is not valid JSON: {exc}") from None
        else:
            if isinstance(doc, list):
                return doc
            if isinstance(doc, dict) and isinstance(doc.get("events"), list):
                return doc["events"]
            if isinstance(doc, dict) and "events" not in doc and "event_id" in doc:
                return [doc]
            raise BodyError(400, 'body must be a JSON array of events, {"events": [...]}, or NDJSON')
    items: list[Any] = []
    for n, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(_decoder.decode(line))
        except msgspec.DecodeError as exc:
            raise BodyError(400, f"NDJSON line {n} is not valid JSON: {exc}") from None
    return items
