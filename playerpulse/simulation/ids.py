"""Deterministic UUIDs and device timestamps, made in bulk.

Event ids are the collector's deduplication key, so replaying a seed must make the same ids:
they come from the seeded generator, not from ``uuid.uuid4``. Making hundreds of thousands of
them (and of RFC 3339 strings) one at a time would be the slowest part of a simulation, so both
are built with whole-array numpy operations.
"""

from __future__ import annotations

import numpy as np

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_GROUPS = ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))  # hex digit ranges between dashes


def uuid4_strings(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` random (version 4, RFC 4122 variant) UUIDs as lower-case text."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    digits = np.empty((n, 32), dtype=np.uint8)
    digits[:, 0::2] = _HEX[raw >> 4]
    digits[:, 1::2] = _HEX[raw & 0x0F]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    for group, (lo, hi) in enumerate(_GROUPS):
        text[:, lo + group : hi + group] = digits[:, lo:hi]
    return text.view("S36").ravel().astype("U36").tolist()


def rfc3339_strings(epoch_ms: np.ndarray) -> list[str]:
    """UTC RFC 3339 text with milliseconds and a ``Z``, as mobile SDKs usually write it."""
    text = np.datetime_as_string(np.asarray(epoch_ms, dtype="datetime64[ms]"), unit="ms")
    return np.char.add(text, "Z").tolist()
