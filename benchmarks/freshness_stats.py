"""The arithmetic of ``benchmarks/freshness.py``, apart from anything it measures (unit-tested).

Percentiles are the project's one definition (nearest rank, ``features.latency``), so a p95
here is a freshness some batch really had. Backlog growth is judged by the least-squares slope
of the sampled backlog over a step rather than by its last sample: a job that keeps up leaves
a sawtooth (the backlog fills while a micro-batch runs and drops when it commits), whose end
point lands anywhere between zero and one batch's worth of events.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from features.latency import nearest_rank

GROWTH_TOLERANCE = 0.05
"""A backlog grows when it rises by more than this share of the arrival rate: the job then
folds less than 95% of what arrives, and falls further behind every second."""
RATE_SLACK = 0.95
"""A phase whose load reached this share of the asked-for rate counts as run at that rate."""
SPARKS = "▁▂▃▄▅▆▇█"
PROGRESS_MARKER = "Streaming query made progress: "
"""What Spark's ``ProgressReporter`` logs before each micro-batch's progress JSON (at INFO)."""


@dataclass(frozen=True)
class Quantiles:
    n: int
    p50: float
    p95: float
    p99: float
    mean: float
    max: float


def quantiles(values: Iterable[float]) -> Quantiles:
    """Nearest-rank p50/p95/p99, mean and max; NaN throughout when there are no values."""
    data = [float(v) for v in values]
    if not data:
        nan = math.nan
        return Quantiles(0, nan, nan, nan, nan, nan)
    return Quantiles(
        len(data),
        float(nearest_rank(data, 50)),
        float(nearest_rank(data, 95)),
        float(nearest_rank(data, 99)),
        math.fsum(data) / len(data),
        max(data),
    )


def linear_fit(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """``(intercept, slope)`` of the least-squares line through ``(x, y)`` points; NaN for
    fewer than two points or when every x is the same."""
    if len(points) < 2:
        return math.nan, math.nan
    n = len(points)
    mx = math.fsum(x for x, _ in points) / n
    my = math.fsum(y for _, y in points) / n
    sxx = math.fsum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return math.nan, math.nan
    slope = math.fsum((x - mx) * (y - my) for x, y in points) / sxx
    return my - slope * mx, slope


def backlog_slope(samples: Sequence[tuple[float, float]]) -> float:
    """Events per second by which the backlog grew over ``(seconds, backlog events)`` samples."""
    return linear_fit(samples)[1]


def troughs(samples: Sequence[tuple[float, float]], commits: Sequence[float]) -> list[tuple[float, float]]:
    """The first sample at or after each commit and before the next: what each micro-batch
    left behind (the events that arrived while it ran), the low points of the sawtooth."""
    ordered = sorted(samples)
    marks = sorted(commits)
    out: list[tuple[float, float]] = []
    for i, commit in enumerate(marks):
        following = marks[i + 1] if i + 1 < len(marks) else math.inf
        first = next(((t, v) for t, v in ordered if commit <= t < following), None)
        if first is not None:
            out.append(first)
    return out


def growth_slope(samples: Sequence[tuple[float, float]], commits: Sequence[float]) -> float:
    """Backlog growth (events/s) from the troughs after each commit, or from every sample when
    fewer than two commits fell in the window.

    Not from every sample: a least-squares line through ``n`` whole teeth of a sawtooth that
    rises at ``r`` rises at ``r / n²`` itself, so three micro-batches of a job that keeps up
    would read as growth of a ninth of the rate. The troughs of such a job stay level."""
    low = troughs(samples, commits)
    return backlog_slope(low) if len(low) >= 2 else backlog_slope(samples)


def backlog_grows(slope_per_s: float, rate_per_s: float, tolerance: float = GROWTH_TOLERANCE) -> bool:
    """Whether a backlog rising at ``slope_per_s`` under ``rate_per_s`` arrivals means the job
    is falling behind (a NaN slope, too few samples to tell, is not growth)."""
    return not math.isnan(slope_per_s) and slope_per_s > tolerance * rate_per_s


@dataclass(frozen=True)
class Step:
    """One constant-rate step of a ramp (or the main run), as measured."""

    offered: float
    """Events per second the load generator was asked for."""
    achieved: float
    """Events per second the collector acknowledged."""
    slope: float
    """Backlog growth over the step, events per second (``backlog_slope``)."""

    @property
    def grows(self) -> bool:
        return backlog_grows(self.slope, self.achieved)


@dataclass(frozen=True)
class Sustained:
    rate: float | None
    """The highest achieved rate of the steps before the first whose backlog grew (``None``
    when the first step grew already)."""
    first_growing: float | None
    """The achieved rate at which the backlog first grew; ``None`` if it never did, so the job
    sustains at least ``rate``, and the ramp did not find its limit."""


def sustained_rate(steps: Sequence[Step]) -> Sustained:
    """The highest rate the job kept up with, walking the steps in the order they ran."""
    best: float | None = None
    for step in steps:
        if step.grows:
            return Sustained(best, step.achieved)
        best = step.achieved if best is None else max(best, step.achieved)
    return Sustained(best, None)


def rate_target_verdict(main: Step, sustained: Sustained, target: float) -> str:
    """``met`` when the main run at the target rate, or a ramp step at or above it before any
    grew, kept the backlog flat, and no run at or below the target rate saw it grow; ``not met``
    when one saw it grow and none kept it flat at the rate; ``mixed`` when both happened (a job
    at its limit, whose 60 s and 15 s windows disagree); ``not tested`` when none ran near it."""
    reached, ceiling = RATE_SLACK * target, target / RATE_SLACK
    held = (main.achieved >= reached and not main.grows) or (sustained.rate is not None and sustained.rate >= reached)
    fell_behind = (main.grows and main.achieved <= ceiling) or (
        sustained.first_growing is not None and sustained.first_growing <= ceiling
    )
    if held and fell_behind:
        return "mixed"
    if held:
        return "met"
    return "not met" if fell_behind else "not tested"


def settled_batch_ms(fixed_ms: float, per_event_ms: float, rate_per_s: float) -> float:
    """The micro-batch length a steady ``rate_per_s`` settles at, given a batch of ``n`` events
    takes ``fixed_ms + per_event_ms × n``: each batch holds what arrived during the one before,
    so ``T = fixed + per_event × rate × T``, i.e. ``fixed / (1 - busy)`` with ``busy`` the share
    of each second spent on events. Infinite when ``busy`` reaches 1 (the job falls behind), NaN
    without a fit."""
    if math.isnan(fixed_ms) or math.isnan(per_event_ms):
        return math.nan
    busy = rate_per_s * per_event_ms / 1000
    return math.inf if busy >= 1 else fixed_ms / (1 - busy)


def sparkline(values: Sequence[float], width: int = 60) -> str:
    """``values`` as one line of block characters, at most ``width`` of them (each the maximum
    of the values it covers, so a spike is never averaged away); empty for no values."""
    if not values:
        return ""
    buckets = min(width, len(values))
    size = len(values) / buckets
    peaks = [max(values[int(i * size) : max(int(i * size) + 1, int((i + 1) * size))]) for i in range(buckets)]
    top = max(peaks)
    if top <= 0:
        return SPARKS[0] * buckets
    return "".join(SPARKS[min(len(SPARKS) - 1, int(v / top * (len(SPARKS) - 1) + 0.5))] for v in peaks)


def per_second(samples: Sequence[tuple[float, float]], start: float) -> list[float]:
    """The highest sample in each whole second since ``start``; a second without a sample
    repeats the one before (samples before ``start`` are left out)."""
    peaks: dict[int, float] = {}
    for t, v in samples:
        second = int(t - start)
        if second >= 0:
            peaks[second] = max(peaks.get(second, v), v)
    out: list[float] = []
    last = 0.0
    for second in range(max(peaks) + 1 if peaks else 0):
        last = peaks.get(second, last)
        out.append(last)
    return out


def parse_offsets(text: str) -> dict[str, int | None]:
    """A source's positions (shard → position) from a Spark checkpoint ``offsets/N`` file:
    ``v1``, the batch metadata, then one JSON line per source (the stream source is the only one)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 3:
        raise ValueError("an offsets file has a version, a metadata line and a line per source")
    raw = json.loads(lines[2])
    return {str(shard): (None if pos is None else int(pos)) for shard, pos in raw.items()}


def parse_progress(text: str) -> list[dict]:
    """Every micro-batch progress report Spark logged in ``text`` (pretty-printed JSON after
    ``PROGRESS_MARKER``), oldest first; a report cut off by the end of the log is skipped."""
    decoder = json.JSONDecoder()
    out: list[dict] = []
    pos = 0
    while (found := text.find(PROGRESS_MARKER, pos)) >= 0:
        start = found + len(PROGRESS_MARKER)
        try:
            obj, pos = decoder.raw_decode(text, start)
        except ValueError:
            pos = start
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


def epoch_ms(iso: str) -> float:
    """Epoch milliseconds of Spark's progress ``timestamp`` (``2026-12-02T13:02:35.123Z``)."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000


def shares(means: dict[str, float]) -> dict[str, float]:
    """Each part's share of the parts' total (NaN parts count as zero; empty when all are)."""
    parts = {k: (0.0 if math.isnan(v) else max(0.0, v)) for k, v in means.items()}
    total = math.fsum(parts.values())
    return {k: v / total for k, v in parts.items()} if total > 0 else {}


def verdict(measured: float, limit: float) -> str:
    """``met`` / ``not met`` for a ceiling, ``not measured`` for NaN."""
    if math.isnan(measured):
        return "not measured"
    return "met" if measured <= limit else "not met"
