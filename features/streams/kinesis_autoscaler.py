"""Kinesis shard autoscaling, applied: observe a stream with boto3 and apply ``decide`` to it.

Kinesis keeps no record of past UpdateShardCount calls that a client can read, so the
autoscaler writes the times of its own calls into a tag on the stream: the state lives with the
stream, not on the machine that runs the autoscaler.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from features.config import KinesisStreamConfig, StreamAutoscalingConfig
from features.errors import StreamUnavailable
from features.streams.kinesis_scaling import DAY_S, PERIOD_S, UPDATES_TAG, Decision, Throughput, decide


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
    return max((float(d["Sum"]) / PERIOD_S for d in datapoints if d["Timestamp"] >= since), default=0.0)


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
            Period=PERIOD_S,
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
            end = now + timedelta(seconds=PERIOD_S)  # the minute under way counts too
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
        kept = [t for t in updates if now - t < DAY_S][-(self.cfg.max_updates_per_day - 1) :]
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
