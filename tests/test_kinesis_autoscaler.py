"""The Kinesis autoscaler: its decision as a table of cases, and its boto3 path against moto_server.

moto (5.2) supports what the apply path calls — DescribeStreamSummary, UpdateShardCount,
UpdateStreamMode, tags, PutMetricData and GetMetricStatistics — but does not enforce
UpdateShardCount's rules (at most double or half, 10 calls per 24 h): ``decide`` must, and the
table below checks that it does. The traffic is seeded as the per-minute ``AWS/Kinesis`` sums
that CloudWatch keeps for a real stream.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from features.config import KinesisStreamConfig, StreamAutoscalingConfig, conf_dir
from features.streams.kinesis import KinesisStream
from features.streams.kinesis_autoscaler import KinesisAutoscaler
from features.streams.kinesis_scaling import UPDATES_TAG, Throughput, decide, utilisation
from playerpulse.cli import main

MiB = 1024 * 1024
NOW = 1_800_000_000.0
CFG = StreamAutoscalingConfig()  # target 60 %, up above 80 %, down below 30 %, 10 calls a day, 2 kept


def mib(x: float, records: float = 0.0) -> Throughput:
    return Throughput(x * MiB, records)


# current, recent, sustained, updates (seconds ago), config changes, expected target, expected action
CASES = {
    "within the band: hold": (2, mib(1), mib(1), [], {}, 2, "hold"),
    "a burst at most doubles the shards per call": (2, mib(4), mib(4), [], {}, 4, "scale_up"),
    "a scale-up sizes for the target utilisation": (4, mib(3.5), mib(3.5), [], {}, 6, "scale_up"),
    "records per second fill a shard too": (
        1,
        Throughput(100_000, 900),
        Throughput(100_000, 900),
        [],
        {},
        2,
        "scale_up",
    ),
    "a scale-up stops at max_shards": (4, mib(8), mib(8), [], {"max_shards": 5}, 5, "scale_up"),
    "at max_shards an overload holds": (5, mib(8), mib(8), [], {"max_shards": 5}, 5, "hold"),
    "a scale-up waits out its cool-down": (2, mib(4), mib(4), [60], {}, 2, "hold"),
    "a scale-up after its cool-down": (2, mib(4), mib(4), [121], {}, 4, "scale_up"),
    "no scale-up once the day's calls are used": (
        2,
        mib(4),
        mib(4),
        [3600 * h + 200 for h in range(10)],
        {},
        2,
        "hold",
    ),
    "a scale-down at most halves the shards": (8, mib(1), mib(1), [], {}, 4, "scale_down"),
    "a scale-down sizes for the target utilisation": (4, mib(1), mib(1), [], {}, 2, "scale_down"),
    "a scale-down waits out its longer cool-down": (4, mib(1), mib(1), [1800], {}, 4, "hold"),
    "the last calls of the day are kept for scale-ups": (
        4,
        mib(1),
        mib(1),
        [4000 * h + 4000 for h in range(8)],
        {},
        4,
        "hold",
    ),
    "calls older than 24 hours do not count": (4, mib(1), mib(1), [90_000 + h for h in range(10)], {}, 2, "scale_down"),
    "a dip in the recent peak alone does not scale down": (4, mib(0.1), mib(2), [], {}, 4, "hold"),
    "never below min_shards": (2, mib(0), mib(0), [], {"min_shards": 2}, 2, "hold"),
    "up to min_shards even when idle": (1, mib(0), mib(0), [], {"min_shards": 2}, 2, "scale_up"),
    "above a lowered max_shards: halve toward it": (10, mib(1), mib(1), [], {"max_shards": 6}, 5, "scale_down"),
    "an idle stream shrinks to one shard": (2, mib(0), mib(0), [], {}, 1, "scale_down"),
}


@pytest.mark.parametrize(
    ("current", "recent", "sustained", "ago", "changes", "target", "action"), CASES.values(), ids=CASES.keys()
)
def test_decide(current, recent, sustained, ago, changes, target, action):
    cfg = CFG.model_copy(update=changes)
    decision = decide(current, recent, sustained, [NOW - a for a in ago], NOW, cfg)
    assert (decision.target, decision.action) == (target, action), decision.reason


@given(
    current=st.integers(1, 200),
    load_mib=st.floats(0, 300, allow_nan=False),
    records=st.floats(0, 300_000, allow_nan=False),
)
def test_a_scale_down_never_lands_where_the_same_traffic_scales_back_up(current, load_mib, records):
    load = mib(load_mib, records)
    down = decide(current, load, load, [], NOW, CFG.model_copy(update={"max_shards": 10_000}))
    if down.action == "scale_down":
        assert utilisation(down.target, load) <= CFG.target_utilisation + 1e-9
        again = decide(down.target, load, load, [NOW], NOW + 7200, CFG.model_copy(update={"max_shards": 10_000}))
        assert again.action != "scale_up"


def test_hysteresis_is_checked_when_the_configuration_loads():
    with pytest.raises(ValueError, match="scale_down_at < target_utilisation < scale_up_at"):
        StreamAutoscalingConfig(scale_down_at=0.7, target_utilisation=0.6)


# --- against moto_server -------------------------------------------------------------------------


@pytest.fixture
def stream_config(aws_endpoint: str) -> KinesisStreamConfig:
    config = KinesisStreamConfig(
        stream_name=f"autoscale-{uuid.uuid4().hex[:8]}", endpoint_url=aws_endpoint, create_if_missing=True
    )
    KinesisStream(config).close()  # creates the stream with one shard
    return config


def seed_traffic(cfg: KinesisStreamConfig, bytes_per_s: float, minutes: int = 3) -> None:
    """The per-minute sums CloudWatch keeps for a stream written at ``bytes_per_s``."""
    cw = boto3.client("cloudwatch", region_name=cfg.region, endpoint_url=cfg.endpoint_url)
    now = datetime.now(UTC)
    dims = [{"Name": "StreamName", "Value": cfg.stream_name}]
    cw.put_metric_data(
        Namespace="AWS/Kinesis",
        MetricData=[
            {"MetricName": name, "Dimensions": dims, "Timestamp": now - timedelta(minutes=m), "Value": v * 60}
            for m in range(minutes)
            for name, v in (("IncomingBytes", bytes_per_s), ("IncomingRecords", bytes_per_s / 5000))
        ],
    )


def summary(cfg: KinesisStreamConfig) -> dict:
    kinesis = boto3.client("kinesis", region_name=cfg.region, endpoint_url=cfg.endpoint_url)
    return kinesis.describe_stream_summary(StreamName=cfg.stream_name)["StreamDescriptionSummary"]


def test_a_busy_stream_is_scaled_up_with_update_shard_count(stream_config):
    seed_traffic(stream_config, 1.5 * MiB)
    result = KinesisAutoscaler(stream_config, CFG).step()
    assert (result.observation.open_shards, result.decision.target, result.applied) == (1, 2, True)
    assert result.observation.recent.bytes_per_s == pytest.approx(1.5 * MiB)
    assert summary(stream_config)["OpenShardCount"] == 2


def test_the_call_is_remembered_on_the_stream_so_the_next_run_cools_down(stream_config):
    seed_traffic(stream_config, 1.5 * MiB)
    KinesisAutoscaler(stream_config, CFG).step()
    seed_traffic(stream_config, 4 * MiB, minutes=1)  # the burst grows
    again = KinesisAutoscaler(stream_config, CFG).step()  # a new process: only the stream's tag remembers
    assert len(again.observation.updates) == 1
    assert (again.decision.action, again.applied) == ("hold", False)
    assert "cooling down" in again.decision.reason
    kinesis = boto3.client("kinesis", region_name=stream_config.region, endpoint_url=stream_config.endpoint_url)
    tags = kinesis.list_tags_for_stream(StreamName=stream_config.stream_name)["Tags"]
    assert [t["Key"] for t in tags] == [UPDATES_TAG]


def test_a_dry_run_changes_nothing(stream_config):
    seed_traffic(stream_config, 1.5 * MiB)
    result = KinesisAutoscaler(stream_config, CFG).step(dry_run=True)
    assert (result.decision.target, result.applied) == (2, False)
    assert summary(stream_config)["OpenShardCount"] == 1


def test_on_demand_mode_switches_the_stream_to_on_demand_capacity(stream_config):
    result = KinesisAutoscaler(stream_config, CFG.model_copy(update={"mode": "on_demand"})).step()
    assert result.applied
    assert summary(stream_config)["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}


def test_the_cli_prints_the_decision_of_one_dry_run(stream_config, tmp_path: Path, monkeypatch, capsys):
    conf = yaml.safe_load((conf_dir() / "local.yaml").read_text())
    conf["stream"] = {"backend": "kinesis", **stream_config.model_dump(exclude={"backend", "create_if_missing"})}
    conf["stream_autoscaling"] = {"max_shards": 8}
    (tmp_path / "local.yaml").write_text(yaml.safe_dump(conf))
    monkeypatch.setenv("PLAYERPULSE_CONF_DIR", str(tmp_path))
    seed_traffic(stream_config, 3 * MiB)
    assert main(["stream", "autoscale", "--once", "--dry-run", "--workdir", str(tmp_path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "scale_up 1 → 2 shards" in out and "dry run: would set 2 shards" in out
    assert summary(stream_config)["OpenShardCount"] == 1


def test_the_cli_refuses_the_embedded_stream_and_says_which_env_to_use(tmp_path, capsys):
    assert main(["stream", "autoscale", "--once", "--workdir", str(tmp_path)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "sizes a Kinesis stream" in err and "--env aws" in err
