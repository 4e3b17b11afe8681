"""Latency figures from hop timestamps: one percentile definition for every report.

Nearest-rank percentiles: the reported p95 is a latency some event really had, never an
interpolation between two.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0 < q ≤ 100) of ``values``; ``None`` when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]
