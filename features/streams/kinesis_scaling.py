"""Kinesis shard autoscaling: a pure decision, and the boto3 calls that observe and apply it.

A provisioned shard costs the same by the hour whether it carries traffic or not, and a
player population's traffic swings several-fold over a day, so a stream sized for the evening
peak pays for idle shards most of the day. ``decide`` picks a shard count from the stream's
measured throughput (CloudWatch ``IncomingBytes`` / ``IncomingRecords``): up fast, down slowly
(cool-downs and a utilisation band declared in ``StreamAutoscalingConfig``), within
UpdateShardCount's rules (at most double or half the open shards per call, a few calls per
rolling 24 hours, a ceiling on shards).

Kinesis keeps no record of past UpdateShardCount calls that a client can read, so the
autoscaler writes the times of its own calls into a tag on the stream: the state lives with the
stream, not on the machine that runs the autoscaler.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from features.config import KinesisStreamConfig, StreamAutoscalingConfig
from features.errors import StreamUnavailable

SHARD_BYTES_PER_S = 1024 * 1024
"""Write capacity of one provisioned shard: 1 MiB/s ..."""
SHARD_RECORDS_PER_S = 1000
"""... or 1,000 records/s, whichever fills first."""
UPDATES_TAG = "playerpulse:shard-updates"
"""Stream tag holding the epoch seconds of this autoscaler's UpdateShardCount calls (last 24 h)."""
_DAY_S = 86_400
_PERIOD_S = 60


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
    today = [t for t in updates if now - t < _DAY_S]
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


# --- observing and applying -----------------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    mode: str
    """``PROVISIONED`` or ``ON_DEMAND``."""
    status: str
    """``ACTIVE`` unless a reshard or mode switch is in progress."""
    open_shards: int
    recent: Throughput
    sustained: Throughput
    updates: list[float]


@dataclass(frozen=True)
class StepResult:
    observation: Observation
    decision: Decision
    applied: bool
    message: str


def _peak(datapoints: list[dict[str, Any]], since: datetime) -> float:
    """Highest per-second rate of the one-minute sums at or after ``since``."""
    return max((float(d["Sum"]) / _PERIOD_S for d in datapoints if d["Timestamp"] >= since), default=0.0)


class KinesisAutoscaler:
    """Observes one Kinesis stream and applies ``decide`` to it (or switches it to on-demand)."""

    def __init__(
        self,
        stream: KinesisStreamConfig,
        cfg: StreamAutoscalingConfig,
        clock: Callable[[], float] = time.time,
    ):
        self.stream = stream
        self.cfg = cfg
        self.clock = clock
        boto_cfg = Config(retries={"mode": "standard"}, connect_timeout=5, read_timeout=30)
        self._kinesis = boto3.client(
            "kinesis", region_name=stream.region, endpoint_url=stream.endpoint_url, config=boto_cfg
        )
        self._cloudwatch = boto3.client(
            "cloudwatch",
            region_name=stream.region,
            endpoint_url=cfg.cloudwatch_endpoint_url or stream.endpoint_url,
            config=boto_cfg,
        )

    def _fail(self, action: str, exc: Exception) -> StreamUnavailable:
        where = f"Kinesis stream '{self.stream.stream_name}' in {self.stream.region}"
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            code = err.get("Code", "Unknown")
            if code in ("AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException"):
                hint = (
                    "the autoscaler needs kinesis:DescribeStreamSummary, ListTagsForStream, AddTagsToStream, "
                    "UpdateShardCount, UpdateStreamMode and cloudwatch:GetMetricStatistics"
                )
            elif code == "ResourceNotFoundException":
                hint = "check stream.stream_name and the region; the stream comes from infrastructure as code"
            elif code == "LimitExceededException":
                hint = "an AWS limit was hit (calls per 24 h, shards per account): lower max_updates_per_day or ask AWS"
            else:
                hint = "retry later"
            return StreamUnavailable(f"could not {action} for {where}: {code}: {err.get('Message', '')} — {hint}")
        return StreamUnavailable(f"could not {action} for {where}: {exc} — check that the endpoint is reachable")

    def _throughput(self, metric: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        resp = self._cloudwatch.get_metric_statistics(
            Namespace="AWS/Kinesis",
            MetricName=metric,
            Dimensions=[{"Name": "StreamName", "Value": self.stream.stream_name}],
            StartTime=start,
            EndTime=end,
            Period=_PERIOD_S,
            Statistics=["Sum"],
        )
        return list(resp["Datapoints"])

    def observe(self) -> Observation:
        """The stream's mode, status, open shards, recent and sustained peak rates, and past calls."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        start = now - timedelta(seconds=max(self.cfg.scale_up_window_s, self.cfg.scale_down_window_s))
        name = self.stream.stream_name
        try:
            summary = self._kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
            tags = self._kinesis.list_tags_for_stream(StreamName=name)["Tags"]
            end = now + timedelta(seconds=_PERIOD_S)  # the minute under way counts too
            rates = {m: self._throughput(m, start, end) for m in ("IncomingBytes", "IncomingRecords")}
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("observe the stream", exc) from exc
        text = next((t["Value"] for t in tags if t["Key"] == UPDATES_TAG), "")
        updates = sorted(float(v) for v in text.split())

        def peak(window_s: int) -> Throughput:
            since = now - timedelta(seconds=window_s)
            return Throughput(_peak(rates["IncomingBytes"], since), _peak(rates["IncomingRecords"], since))

        return Observation(
            mode=summary.get("StreamModeDetails", {}).get("StreamMode", "PROVISIONED"),
            status=summary["StreamStatus"],
            open_shards=int(summary["OpenShardCount"]),
            recent=peak(self.cfg.scale_up_window_s),
            sustained=peak(self.cfg.scale_down_window_s),
            updates=updates,
        )

    def step(self, dry_run: bool = False) -> StepResult:
        """Observe, decide and (unless ``dry_run``) apply once."""
        obs = self.observe()
        if self.cfg.mode == "on_demand":
            return self._on_demand(obs, dry_run)
        if obs.mode != "PROVISIONED":
            hold = Decision(obs.open_shards, obs.open_shards, "hold", "stream is on-demand")
            return StepResult(obs, hold, False, "stream is in on-demand mode but mode is provisioned: switch it in IaC")
        decision = decide(obs.open_shards, obs.recent, obs.sustained, obs.updates, self.clock(), self.cfg)
        if decision.action == "hold":
            return StepResult(obs, decision, False, decision.reason)
        if obs.status != "ACTIVE":
            return StepResult(obs, decision, False, f"stream is {obs.status}: a change is in progress, try again later")
        if dry_run:
            return StepResult(obs, decision, False, f"dry run: would set {decision.target} shards ({decision.reason})")
        self._apply(decision.target, obs.updates)
        return StepResult(obs, decision, True, f"{decision.current} → {decision.target} shards ({decision.reason})")

    def _apply(self, target: int, updates: list[float]) -> None:
        now = self.clock()
        kept = [t for t in updates if now - t < _DAY_S][-(self.cfg.max_updates_per_day - 1) :]
        name = self.stream.stream_name
        try:
            self._kinesis.update_shard_count(StreamName=name, TargetShardCount=target, ScalingType="UNIFORM_SCALING")
            value = " ".join(str(int(t)) for t in [*kept, now])
            self._kinesis.add_tags_to_stream(StreamName=name, Tags={UPDATES_TAG: value})
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(f"set {target} shards", exc) from exc

    def _on_demand(self, obs: Observation, dry_run: bool) -> StepResult:
        hold = Decision(obs.open_shards, obs.open_shards, "hold", "on-demand: AWS scales the stream")
        if obs.mode == "ON_DEMAND":
            return StepResult(obs, hold, False, "stream is on-demand already: AWS scales it")
        if dry_run:
            return StepResult(obs, hold, False, "dry run: would switch the stream to on-demand capacity")
        name = self.stream.stream_name
        try:
            arn = self._kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
            self._kinesis.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "ON_DEMAND"})
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("switch to on-demand capacity", exc) from exc
        return StepResult(obs, hold, True, "switched the stream to on-demand capacity")

    def close(self) -> None:
        self._kinesis.close()
        self._cloudwatch.close()
