"""The monthly AWS bill of a PlayerPulse deployment, with and without each cost lever.

Volumes come from the workload (events per day, players) and the benchmark's measurements
(bytes per event, events per request and per record, payload units, objects per partition,
the day's hourly traffic shape); prices from a dated price table. What cannot be measured on
one machine (Lambda memory, how much compute a batch job spends per GB, how long data is
kept) is an explicit assumption of ``Workload`` with its default printed beside the bill.

The levers:
- ``batching``: one record per player per request (the collector's) instead of one per event;
  fewer API Gateway requests, Lambda invocations, Kinesis records and PUT payload units.
- ``zstd``: compressed records on the stream and Parquet/zstd in the lake instead of JSON.
- ``autoscaling``: shards follow the day's traffic (``decide``) instead of a fixed count for the peak.
- ``compaction``: the lake partitioned by event date and compacted daily instead of
  unpartitioned micro-batch files (fewer objects, and a job reads only the days it needs).
- ``lifecycle``: objects move to Standard-IA, then Glacier Instant Retrieval, as they age.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from features.config import StreamAutoscalingConfig
from features.streams.kinesis_scaling import Throughput, decide, shards_for
from playerpulse.cost.inputs import Measured, PriceTable

GB = 1e9


class Workload(BaseModel):
    """What is estimated: the traffic, and the assumptions the benchmark cannot measure."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    events_per_day: int = Field(gt=0)
    players: int = Field(gt=0)
    """Players with a profile in the online store."""
    compute: Literal["emr_serverless", "databricks"] = "emr_serverless"
    lambda_memory_mb: int = Field(512, ge=128, le=10_240)
    lambda_put_wait_ms: float = Field(20.0, ge=0)
    """Time a collector invocation waits for Kinesis to acknowledge its put (billed as duration)."""
    retention_days: int = Field(365, ge=1)
    """How long bronze events are kept in the lake."""
    standard_days: int = Field(30, ge=1)
    """With lifecycle: days in S3 Standard before Standard-IA."""
    ia_days: int = Field(90, ge=1)
    """With lifecycle: age in days at which objects move on to Glacier Instant Retrieval."""
    scan_days: int = Field(30, ge=1)
    """Days of events the daily batch jobs read (the longest feature window) when the lake is
    partitioned by date; an unpartitioned lake is read whole."""
    reads_per_player_per_day: float = Field(5.0, ge=0)
    """Profile reads (predictions, profile API) per player per day from DynamoDB."""
    profile_item_kb: float = Field(2.0, gt=0)
    stream_job_vcpu: float = Field(2.0, ge=0)
    """The streaming profiles job, running all month."""
    batch_vcpu_seconds_per_gb: float = Field(200.0, ge=0)
    """Compute a batch job spends per GB of Parquet it reads (decode, dedup, aggregate)."""
    batch_vcpu_seconds_per_file: float = Field(0.05, ge=0)
    """Fixed cost of opening one object (listing, footer, a task): why small files cost compute."""
    memory_gb_per_vcpu: float = Field(4.0, gt=0)


@dataclass(frozen=True)
class Levers:
    batching: bool = True
    zstd: bool = True
    autoscaling: bool = True
    compaction: bool = True
    lifecycle: bool = True

    @classmethod
    def none(cls) -> Levers:
        return cls(**{f.name: False for f in fields(cls)})


LEVER_LABELS = {
    "batching": "batching",
    "zstd": "zstd",
    "autoscaling": "autoscaling",
    "compaction": "compaction",
    "lifecycle": "lifecycle",
}
"""Column headings: batching per player, zstd, Kinesis autoscaling, S3 partitioning + compaction,
storage-class lifecycle."""

Bill = dict[str, float]
"""Service line → USD per month."""


@dataclass(frozen=True)
class Volumes:
    days: float
    requests_per_day: float
    records_per_event: float
    stream_bytes_per_event: float
    put_units_per_event: float


def volumes(w: Workload, m: Measured, p: PriceTable, levers: Levers) -> Volumes:
    s = m.stream
    mode = "player_batches_zstd" if levers.batching else "one_event_json"
    if levers.batching:
        stream_bytes = s.bytes_per_event.zstd_player_record if levers.zstd else s.bytes_per_event.raw_json
    else:
        stream_bytes = s.bytes_per_event.zstd_one_event if levers.zstd else s.bytes_per_event.raw_json
    return Volumes(
        days=p.hours_per_month / 24,
        requests_per_day=w.events_per_day / (s.events_per_request if levers.batching else 1.0),
        records_per_event=getattr(s.kinesis.records_per_million_events, mode) / 1e6,
        stream_bytes_per_event=stream_bytes,
        put_units_per_event=getattr(s.kinesis.put_units_per_million_events, mode) / 1e6,
    )


def shard_hours_per_day(w: Workload, m: Measured, v: Volumes, autoscaling: bool) -> float:
    """Shard-hours of one day: fixed for the peak hour, or as the autoscaler would follow the
    measured hourly shape (its second day, so that it starts from where the first day ended)."""
    cfg = StreamAutoscalingConfig(max_shards=10_000)
    loads = [
        Throughput(
            w.events_per_day * share / 3600 * v.stream_bytes_per_event,
            w.events_per_day * share / 3600 * v.records_per_event,
        )
        for share in m.hourly_share
    ]
    peak = max(shards_for(load, cfg.target_utilisation) for load in loads)
    if not autoscaling:
        return 24.0 * peak
    shards, updates, used = peak, [], 0.0
    for step in range(48):
        now = step * 3600.0
        load, before = loads[step % 24], loads[(step - 1) % 24]
        sustained = Throughput(max(load.bytes_per_s, before.bytes_per_s), max(load.records_per_s, before.records_per_s))
        decision = decide(shards, load, sustained, updates, now, cfg)
        if decision.action != "hold":
            shards = decision.target
            updates.append(now)
        if step >= 24:
            used += shards
    return used


def _s3(w: Workload, m: Measured, p: PriceTable, levers: Levers) -> Bill:
    layout = m.lake["event_date" if levers.compaction else "unpartitioned"]
    landed_per_event = (
        layout.bytes_after_compaction if levers.compaction else layout.bytes_before_compaction
    ) / m.stream.events
    bytes_day = w.events_per_day * (landed_per_event if levers.zstd else m.stream.bytes_per_event.raw_json)
    if levers.compaction:
        objects_day = max(
            float(layout.objects_after_compaction), layout.partitions * math.ceil(bytes_day / 128e6 / layout.partitions)
        )
        puts_day = layout.objects_before_compaction + objects_day
        compaction_gets_day = float(layout.objects_before_compaction)
    else:
        objects_day = float(layout.objects_before_compaction)
        puts_day, compaction_gets_day = objects_day, 0.0
    classes = p.s3.classes
    r = w.retention_days
    if levers.lifecycle:
        std = min(w.standard_days, r)
        ia = max(0, min(w.ia_days, r) - std)
        gir = max(0, r - std - ia)
    else:
        std, ia, gir = r, 0, 0
    days = p.hours_per_month / 24
    avg_object = bytes_day / objects_day
    bill: Bill = {}
    for label, cls, n in (
        ("S3 Standard", classes.standard, std),
        ("S3 IA", classes.standard_ia, ia),
        ("S3 Glacier IR", classes.glacier_instant_retrieval, gir),
    ):
        billed_object = max(avg_object, cls.min_object_kb * 1024)
        bill[label] = objects_day * n * billed_object / GB * cls.storage_gb_month
    transitions = 0.0
    if levers.lifecycle:
        if ia:
            transitions += objects_day * days / 1000 * classes.standard_ia.transition_in_per_1000
        if gir:
            transitions += objects_day * days / 1000 * classes.glacier_instant_retrieval.transition_in_per_1000
    scanned_days = min(w.scan_days, r) if levers.compaction else r
    # the scanned days are the newest ones: Standard first, then the older classes
    in_std = min(scanned_days, std)
    in_ia = min(scanned_days - in_std, ia)
    in_gir = scanned_days - in_std - in_ia
    gets = sum(
        n * objects_day / 1000 * c.get_per_1000
        for n, c in (
            (in_std, classes.standard),
            (in_ia, classes.standard_ia),
            (in_gir, classes.glacier_instant_retrieval),
        )
    )
    retrieval = (
        (in_ia * classes.standard_ia.retrieval_per_gb + in_gir * classes.glacier_instant_retrieval.retrieval_per_gb)
        * bytes_day
        / GB
    )
    requests = (
        puts_day / 1000 * classes.standard.put_per_1000 + compaction_gets_day / 1000 * classes.standard.get_per_1000
    )
    bill["S3 requests"] = days * (requests + gets + retrieval) + transitions
    bill["_scan_gb_per_day"] = scanned_days * bytes_day / GB
    bill["_files_per_day"] = scanned_days * objects_day + compaction_gets_day
    return bill


def estimate(w: Workload, m: Measured, p: PriceTable, levers: Levers) -> Bill:
    """The monthly bill by service line for one combination of levers."""
    v = volumes(w, m, p, levers)
    events_month = w.events_per_day * v.days
    requests_month = v.requests_per_day * v.days
    k = p.kinesis
    shard_hours = shard_hours_per_day(w, m, v, levers.autoscaling) * v.days
    cpu_ms = m.stream.collector_cpu_ms_per_request * (1.0 if levers.batching else 1.0 / m.stream.events_per_request)
    duration_s = math.ceil(cpu_ms + w.lambda_put_wait_ms) / 1000
    item_units = math.ceil(w.profile_item_kb)
    profile_writes = w.events_per_day / m.stream.events_per_request * v.days
    bill: Bill = {
        "Kinesis": shard_hours * k.shard_hour
        + events_month * v.put_units_per_event / 1e6 * k.put_payload_units_per_million,
        "Lambda": requests_month / 1e6 * p.lambda_.requests_per_million
        + requests_month * duration_s * w.lambda_memory_mb / 1024 * p.lambda_.gb_second,
        "API Gateway": requests_month / 1e6 * p.api_gateway.http_requests_per_million,
        # the profiles job writes each player once per micro-batch: about once per device batch,
        # however the events travel on the stream
        "DynamoDB": profile_writes * item_units / 1e6 * p.dynamodb.write_request_units_per_million
        + w.players
        * w.reads_per_player_per_day
        * v.days
        * 0.5
        * math.ceil(w.profile_item_kb / 4)
        / 1e6
        * p.dynamodb.read_request_units_per_million
        + w.players * w.profile_item_kb * 1024 / GB * p.dynamodb.storage_gb_month,
    }
    s3 = _s3(w, m, p, levers)
    scan_gb, files = s3.pop("_scan_gb_per_day"), s3.pop("_files_per_day")
    bill.update(s3)
    vcpu_hours = (
        p.hours_per_month * w.stream_job_vcpu
        + v.days * (scan_gb * w.batch_vcpu_seconds_per_gb + files * w.batch_vcpu_seconds_per_file) / 3600
    )
    if w.compute == "emr_serverless":
        e = p.emr_serverless
        bill["EMR Serverless"] = vcpu_hours * (e.vcpu_hour + w.memory_gb_per_vcpu * e.gb_hour)
    else:
        d = p.databricks
        bill["Databricks"] = vcpu_hours * (d.dbu_per_vcpu_hour * d.dbu + d.ec2_vcpu_hour)
    return bill


def kinesis_on_demand(w: Workload, m: Measured, p: PriceTable, levers: Levers, readers: int = 2) -> float:
    """The stream's monthly cost in on-demand mode instead (bronze and profiles jobs read it)."""
    v = volumes(w, m, p, levers)
    billed = getattr(
        m.stream.kinesis.on_demand_billed_bytes_per_event,
        "player_batches_zstd" if levers.batching else "one_event_json",
    )
    events_month = w.events_per_day * v.days
    k = p.kinesis
    return (
        p.hours_per_month * k.on_demand_stream_hour
        + events_month * billed / GB * k.on_demand_ingest_per_gb
        + readers * events_month * v.stream_bytes_per_event / GB * k.on_demand_retrieval_per_gb
    )


def cumulative(w: Workload, m: Measured, p: PriceTable) -> list[tuple[str, Levers, Bill]]:
    """No lever, then each lever added in turn: the column-to-column difference is what it saves."""
    levers = Levers.none()
    out = [("no levers", levers, estimate(w, m, p, levers))]
    for name, label in LEVER_LABELS.items():
        levers = replace(levers, **{name: True})
        out.append((f"+{label}", levers, estimate(w, m, p, levers)))
    return out
