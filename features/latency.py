"""Latency figures from hop timestamps: one percentile definition for every report.

Nearest-rank percentiles: the reported p95 is a latency some event really had, never an
interpolation between two.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0 < q ≤ 100) of ``values``; ``None`` when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


HOP_STAMPS: tuple[str, ...] = (
    "event_time",
    "sent_at",
    "received_at",
    "stream_at",
    "processed_at",
    "profile_written_at",
    "served_at",
)
"""The timestamps that travel with an event end to end, in the order it passes them."""

HOPS: tuple[tuple[str, str, str], ...] = (
    ("device", "event_time", "received_at"),
    ("collector", "received_at", "stream_at"),
    ("stream", "stream_at", "processed_at"),
    ("profile_write", "processed_at", "profile_written_at"),
    ("serve", "profile_written_at", "served_at"),
)
"""``(hop, from, to)``: each hop's latency is ``to - from`` on the server's clock.

``device`` starts at the skew-corrected ``event_time`` (``features.contract``), which shifts the
device clock by ``received_at - sent_at``: it equals ``sent_at - event_time`` on the device's own
clock, the time an event waited on the device before its batch left. ``sent_at`` still travels
with the data (as the device sent it), but ``received_at - sent_at`` compares two clocks and is
mostly the device's clock error, so it is no hop of its own. ``serve`` is the age of the profile
when a prediction read it."""

HOP_NAMES: tuple[str, ...] = tuple(name for name, _, _ in HOPS)


def hop_latencies(stamps: Mapping[str, int | float | None]) -> dict[str, float]:
    """Each hop's latency (ms) from one event's ``stamps``, for the hops both of whose
    timestamps are present (a profile has no ``served_at`` until a prediction reads it)."""
    out: dict[str, float] = {}
    for name, start, end in HOPS:
        a, b = stamps.get(start), stamps.get(end)
        if a is not None and b is not None:
            out[name] = float(b - a)
    return out
