"""Turn a request body into a list of raw events, within the size limits.

Nothing here trusts the sender:

- decompression decodes *every* gzip member and zstd frame (a body of two parts is two parts'
  events, not the first part's behind a 202) and answers 400 for bytes after the last one;
  output is capped at ``max_decompressed_bytes`` while it is produced, so a bomb costs at most
  that much memory and ends as a 413;
- ``check_value_count`` counts a body's JSON values before any is built: 8 KB of gzip can
  unpack to millions of ``{}``, and each costs ~70 bytes of Python object, so a 413 must come
  before decoding, not after it (``max_json_values``);
- JSON nesting deeper than the decoder can follow is a 400, not a ``RecursionError``.
"""

from __future__ import annotations

import io
import re
import zlib
from typing import Any

import msgspec
import zstandard

ENCODINGS = ("gzip", "zstd", "identity")
_NDJSON = ("application/x-ndjson", "application/ndjson", "application/jsonl")


class BodyError(Exception):
    """The body cannot be used; ``status`` is the HTTP answer (400, 413 or 415)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _too_large(limit: int) -> BodyError:
    return BodyError(413, f"body decompresses to more than {limit} bytes")


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity"):
        if len(body) > limit:
            raise BodyError(413, f"body is larger than {limit} bytes")
        return body
    if enc in ("gzip", "x-gzip"):
        return _gunzip(body, limit)
    if enc == "zstd":
        return _unzstd(body, limit)
    raise BodyError(415, f"Content-Encoding '{encoding}' is not supported; use one of {', '.join(ENCODINGS)}")


def _gunzip(body: bytes, limit: int) -> bytes:
    """Every member of a gzip body (RFC 1952 allows several, concatenated), in order."""
    parts: list[bytes] = []
    size = 0
    rest: bytes = body
    while True:
        d = zlib.decompressobj(wbits=31)
        try:
            out = d.decompress(rest, limit + 1 - size)
        except zlib.error as exc:
            raise BodyError(400, f"body is not valid gzip: {exc}") from None
        size += len(out)
        if size > limit or d.unconsumed_tail:
            raise _too_large(limit)
        if not d.eof:
            raise BodyError(400, "gzip body is truncated")
        parts.append(out)
        rest = d.unused_data
        if not rest:
            return parts[0] if len(parts) == 1 else b"".join(parts)
        if not rest.startswith(b"\x1f\x8b"):
            raise BodyError(400, f"{len(rest)} bytes after the gzip data are not a gzip member: send gzip only")


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _unzstd(body: bytes, limit: int) -> bytes:
    """Every frame of a zstd body, in order; the frames must cover the body exactly."""
    _check_zstd_frames(body)
    try:
        with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body), read_across_frames=True) as reader:
            out = reader.read(limit + 1)
    except zstandard.ZstdError as exc:
        raise BodyError(400, f"body is not valid zstd: {exc}") from None
    if len(out) > limit:
        raise _too_large(limit)
    return out


def _check_zstd_frames(body: bytes) -> None:
    """Walk the frame and block headers (RFC 8878): a cut-off last frame or bytes after the
    last frame are a 400. The decompressor alone reads what it can and stops silently."""
    pos, end = 0, len(body)
    if end == 0:
        raise BodyError(400, "zstd body is empty")
    while pos < end:
        magic = body[pos : pos + 4]
        if len(magic) == 4 and magic[1:] == b"\x2a\x4d\x18" and 0x50 <= magic[0] <= 0x5F:  # skippable frame
            if pos + 8 > end:
                raise BodyError(400, "zstd body is truncated (in a skippable frame's header)")
            pos += 8 + int.from_bytes(body[pos + 4 : pos + 8], "little")
            continue
        if magic != _ZSTD_MAGIC:
            raise BodyError(400, f"{end - pos} bytes after the zstd frames are not a zstd frame: send zstd only")
        try:
            header = zstandard.frame_header_size(body[pos : pos + 18])
        except zstandard.ZstdError as exc:
            raise BodyError(400, f"body is not valid zstd: {exc}") from None
        checksum = 4 if body[pos + 4] & 0x04 else 0
        pos += header
        while True:
            if pos + 3 > end:
                raise BodyError(400, "zstd body is truncated")
            block = int.from_bytes(body[pos : pos + 3], "little")
            kind, size = (block >> 1) & 3, block >> 3
            pos += 3 + (1 if kind == 1 else size)  # an RLE block stores one byte
            if block & 1:
                break
        pos += checksum
    if pos > end:
        raise BodyError(400, "zstd body is truncated")


# --- counting before building -----------------------------------------------------------------

_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[,\[{\n]')
"""A JSON string (skipped whole) or a byte that precedes a value."""


def _values_upper_bound(data: bytes) -> int:
    """Every JSON value opens a container or follows ``[``, ``{``, ``,`` or (NDJSON) a newline."""
    return data.count(b",") + data.count(b"[") + data.count(b"{") + data.count(b"\n") + 1


def _values_outside_strings(data: bytes, stop: int) -> int:
    """``_values_upper_bound`` without the bytes inside strings, counting no further than ``stop``
    (a string is preceded by such a byte, so this loop runs at most about ``2 * stop`` times)."""
    count = 1
    for m in _TOKEN.finditer(data):
        if m.end() - m.start() == 1:
            count += 1
            if count > stop:
                break
    return count


def check_value_count(data: bytes, limit: int) -> None:
    """413 unless ``data`` holds at most ``limit`` JSON values, counted before any is built.

    Free for the common batch: a value takes a byte and is parted from the next by one, so a
    body of ``n`` bytes holds at most ``n // 2 + 1``. Larger bodies are counted in C, separators
    inside strings included (so the count can only overstate); only when that is over the limit
    are strings skipped and the rest counted, up to the limit.
    """
    if len(data) // 2 + 1 <= limit or _values_upper_bound(data) <= limit:
        return
    if b'"' not in data or _values_outside_strings(data, limit) > limit:
        raise BodyError(
            413, f"body holds more than {limit} JSON values (max_json_values): split the batch into smaller ones"
        )


# --- decoding ---------------------------------------------------------------------------------


class _RawEnvelope(msgspec.Struct):
    events: list[msgspec.Raw]


_raw_items = msgspec.json.Decoder(list[msgspec.Raw] | dict[str, msgspec.Raw])
_raw_list = msgspec.json.Decoder(list[msgspec.Raw])
_decoder = msgspec.json.Decoder()
_TOO_DEEP = "body nests deeper than the collector decodes (an event's properties may nest 8 levels)"


def parse_events(data: bytes, content_type: str | None) -> list[msgspec.Raw]:
    """A JSON array, ``{"events": [...]}``, or NDJSON (one event per line) → each item's JSON
    text. Items are decoded one by one later (``EventValidator.check``), so a bad item costs its
    own rejection and its dead letter keeps the bytes as sent."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype not in _NDJSON:
        try:
            doc = _raw_items.decode(data)
        except RecursionError:
            raise BodyError(400, _TOO_DEEP) from None
        except msgspec.DecodeError as exc:
            if b"\n" not in data.strip():
                raise BodyError(400, f"body is not valid JSON: {exc}") from None
        else:
            if isinstance(doc, list):
                return doc
            return _envelope_items(doc, data)
    items: list[msgspec.Raw] = []
    for n, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            _decoder.decode(line)  # the whole line must be one JSON value
        except RecursionError:
            raise BodyError(400, f"NDJSON line {n}: {_TOO_DEEP}") from None
        except msgspec.DecodeError as exc:
            raise BodyError(400, f"NDJSON line {n} is not valid JSON: {exc}") from None
        items.append(msgspec.Raw(line))
    return items


def _envelope_items(doc: dict[str, msgspec.Raw], data: bytes) -> list[msgspec.Raw]:
    events = doc.get("events")
    if events is not None:
        try:
            return _raw_list.decode(events)
        except msgspec.DecodeError:
            pass
    elif "event_id" in doc:
        return [msgspec.Raw(data)]
    raise BodyError(400, 'body must be a JSON array of events, {"events": [...]}, or NDJSON')


def item_bytes(item: Any) -> bytes:
    """The JSON text of one item as it arrived (``msgspec.Raw``) or re-encoded (decoded items)."""
    return bytes(item) if isinstance(item, msgspec.Raw) else msgspec.json.encode(item)
