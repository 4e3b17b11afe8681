"""Kinesis shard autoscaling, the decision: pure arithmetic, no AWS client (the estimator uses it too).

A provisioned shard costs the same by the hour whether it carries traffic or not, and a
player population's traffic swings several-fold over a day, so a stream sized for the evening
peak pays for idle shards most of the day. ``decide`` picks a shard count from the stream's
measured throughput (CloudWatch ``IncomingBytes`` / ``IncomingRecords``): up fast, down slowly
(cool-downs and a utilisation band declared in ``StreamAutoscalingConfig``), within
UpdateShardCount's rules (at most double or half the open shards per call, a few calls per
rolling 24 hours, a ceiling on shards).

``features.streams.kinesis_autoscaler`` observes a stream and applies the decision with boto3.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from features.config import StreamAutoscalingConfig

SHARD_BYTES_PER_S = 1024 * 1024
"""Write capacity of one provisioned shard: 1 MiB/s ..."""
SHARD_RECORDS_PER_S = 1000
"""... or 1,000 records/s, whichever fills first."""
UPDATES_TAG = "playerpulse:shard-updates"
"""Stream tag holding the epoch seconds of this autoscaler's UpdateShardCount calls (last 24 h)."""
DAY_S = 86_400
PERIOD_S = 60


@dataclass(frozen=True)
class Throughput:
    """Write rate into a stream, per second."""

    bytes_per_s: float
    records_per_s: float


def utilisation(shards: int, load: Throughput) -> float:
    """Share of ``shards``' write capacity that ``load`` fills (by bytes or records, whichever is higher)."""
    return max(load.bytes_per_s / (shards * SHARD_BYTES_PER_S), load.records_per_s / (shards * SHARD_RECORDS_PER_S))


def shards_for(load: Throughput, target_utilisation: float) -> int:
    """Fewest shards that ``load`` fills to at most ``target_utilisation``."""
    return max(1, math.ceil(utilisation(1, load) / target_utilisation - 1e-9))


Action = Literal["scale_up", "scale_down", "hold"]


@dataclass(frozen=True)
class Decision:
    current: int
    target: int
    action: Action
    reason: str


def decide(
    current: int,
    recent: Throughput,
    sustained: Throughput,
    updates: Sequence[float],
    now: float,
    cfg: StreamAutoscalingConfig,
) -> Decision:
    """The shard count for now, from the recent peak (for scaling up) and the sustained peak (down).

    ``updates`` are the epoch seconds of earlier UpdateShardCount calls; those older than 24 h
    are ignored. A pure function: everything it knows is in its arguments.
    """
    today = [t for t in updates if now - t < DAY_S]
    left = cfg.max_updates_per_day - len(today)
    since = now - max(today) if today else math.inf

    def hold(reason: str) -> Decision:
        return Decision(current, current, "hold", reason)

    up_use = utilisation(current, recent)
    if up_use > cfg.scale_up_at and current == cfg.max_shards:
        return hold(f"recent peak fills {up_use:.0%} of {current} shards, but max_shards is {cfg.max_shards}")
    if current < cfg.min_shards or (up_use > cfg.scale_up_at and current < cfg.max_shards):
        if left <= 0:
            return hold(f"needs more shards, but all {cfg.max_updates_per_day} UpdateShardCount calls of 24 h are used")
        if since < cfg.scale_up_cooldown_s:
            return hold(
                f"needs more shards; cooling down ({since:.0f} of {cfg.scale_up_cooldown_s} s since the last change)"
            )
        wanted = max(shards_for(recent, cfg.target_utilisation), cfg.min_shards)
        target = min(wanted, 2 * current, cfg.max_shards)
        return Decision(
            current, target, "scale_up", f"recent peak fills {up_use:.0%} of {current} shards (> {cfg.scale_up_at:.0%})"
        )
    down_use = utilisation(current, sustained)
    over_max = current > cfg.max_shards
    if over_max or (down_use < cfg.scale_down_at and current > cfg.min_shards):
        why = (
            f"above max_shards {cfg.max_shards}"
            if over_max
            else (f"sustained peak fills {down_use:.0%} of {current} shards (< {cfg.scale_down_at:.0%})")
        )
        if left <= cfg.updates_kept_for_scale_up:
            return hold(f"{why}, but only {max(left, 0)} UpdateShardCount calls of 24 h remain (kept for scale-ups)")
        if since < cfg.scale_down_cooldown_s:
            return hold(f"{why}; cooling down ({since:.0f} of {cfg.scale_down_cooldown_s} s since the last change)")
        wanted = max(shards_for(sustained, cfg.target_utilisation), cfg.min_shards)
        target = max(min(wanted, cfg.max_shards), math.ceil(current / 2))
        if target >= current:
            return hold(f"{why}, but one fewer shard would fill more than {cfg.target_utilisation:.0%}")
        return Decision(current, target, "scale_down", why)
    return hold(f"recent peak fills {up_use:.0%}, sustained {down_use:.0%} of {current} shards: within the band")
