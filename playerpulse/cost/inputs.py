"""The estimator's two data files: a dated AWS price table and the benchmark's measurements.

Both are validated at load like the platform's configuration: an unknown, missing or wrong
key stops the estimate with an error naming it, because a price read under the wrong key is a
bill off by an order of magnitude that nobody notices.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from features.config import repo_root
from features.errors import ConfigError

DEFAULT_PRICES = repo_root() / "conf" / "prices" / "aws-us-east-1-2026-11.yaml"
DEFAULT_MEASURED = repo_root() / "conf" / "cost" / "measured.json"

Price = float


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KinesisPrices(_Strict):
    shard_hour: Price = Field(ge=0)
    put_payload_units_per_million: Price = Field(ge=0)
    on_demand_stream_hour: Price = Field(ge=0)
    on_demand_ingest_per_gb: Price = Field(ge=0)
    on_demand_retrieval_per_gb: Price = Field(ge=0)


class LambdaPrices(_Strict):
    requests_per_million: Price = Field(ge=0)
    gb_second: Price = Field(ge=0)


class ApiGatewayPrices(_Strict):
    http_requests_per_million: Price = Field(ge=0)


class DynamoDBPrices(_Strict):
    write_request_units_per_million: Price = Field(ge=0)
    read_request_units_per_million: Price = Field(ge=0)
    storage_gb_month: Price = Field(ge=0)


class S3ClassPrices(_Strict):
    storage_gb_month: Price = Field(ge=0)
    put_per_1000: Price = Field(ge=0)
    get_per_1000: Price = Field(ge=0)
    retrieval_per_gb: Price = Field(ge=0)
    transition_in_per_1000: Price = Field(ge=0)
    """Lifecycle transition requests into this class."""
    min_object_kb: float = Field(ge=0)
    """Smaller objects are billed as this size (128 KB in Standard-IA and Glacier Instant Retrieval)."""


class S3Classes(_Strict):
    standard: S3ClassPrices
    standard_ia: S3ClassPrices
    glacier_instant_retrieval: S3ClassPrices


class S3Prices(_Strict):
    classes: S3Classes


class EmrServerlessPrices(_Strict):
    vcpu_hour: Price = Field(ge=0)
    gb_hour: Price = Field(ge=0)


class DatabricksPrices(_Strict):
    dbu: Price = Field(ge=0)
    dbu_per_vcpu_hour: float = Field(ge=0)
    ec2_vcpu_hour: Price = Field(ge=0)


class PriceTable(_Strict):
    region: str
    currency: str
    recorded: date
    source: str = Field(min_length=1)
    hours_per_month: float = Field(gt=0)
    kinesis: KinesisPrices
    lambda_: LambdaPrices = Field(alias="lambda")
    api_gateway: ApiGatewayPrices
    dynamodb: DynamoDBPrices
    s3: S3Prices
    emr_serverless: EmrServerlessPrices
    databricks: DatabricksPrices


class _Measured(BaseModel):
    """Only the figures the estimator uses; the benchmark writes more (extra keys are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class MeasuredKinesisPair(_Measured):
    one_event_json: float = Field(gt=0)
    player_batches_zstd: float = Field(gt=0)


class MeasuredKinesis(_Measured):
    put_units_per_million_events: MeasuredKinesisPair
    on_demand_billed_bytes_per_event: MeasuredKinesisPair
    records_per_million_events: MeasuredKinesisPair


class MeasuredBytes(_Measured):
    raw_json: float = Field(gt=0)
    zstd_one_event: float = Field(gt=0)
    zstd_player_record: float = Field(gt=0)


class MeasuredStream(_Measured):
    events: int = Field(gt=0)
    events_per_request: float = Field(ge=1)
    collector_cpu_ms_per_request: float = Field(ge=0)
    bytes_per_event: MeasuredBytes
    kinesis: MeasuredKinesis


class MeasuredLayout(_Measured):
    partitions: int = Field(ge=1)
    objects_before_compaction: int = Field(ge=1)
    bytes_before_compaction: int = Field(ge=1)
    objects_after_compaction: int = Field(ge=1)
    bytes_after_compaction: int = Field(ge=1)


class Measured(_Measured):
    measured_at: date
    source: str
    players: int = Field(gt=0)
    stream: MeasuredStream
    lake: dict[str, MeasuredLayout]
    hourly_share: list[float] = Field(min_length=24, max_length=24)


def _describe(err: ValidationError, source: Path) -> str:
    lines = [f"invalid {source}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"  - unknown key '{key}': remove it or check its spelling")
        elif e["type"] == "missing":
            lines.append(f"  - missing key '{key}': add it")
        else:
            lines.append(f"  - '{key}': {e['msg']}")
    return "\n".join(lines)


def _read(path: Path, parse: Any) -> Any:
    try:
        return parse(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not valid: {exc}") from exc


def load_prices(path: Path = DEFAULT_PRICES) -> PriceTable:
    """The price table in ``path``; ``ConfigError`` names any bad key."""
    try:
        return PriceTable.model_validate(_read(path, yaml.safe_load))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None


def load_measured(path: Path = DEFAULT_MEASURED) -> Measured:
    """Measurements written by ``benchmarks/cost.py``; ``ConfigError`` names any bad key."""
    try:
        measured = Measured.model_validate(_read(path, json.loads))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path) + "\n  (re-run benchmarks/cost.py to write it afresh)") from None
    for layout in ("unpartitioned", "event_date"):
        if layout not in measured.lake:
            raise ConfigError(f"{path} has no measurements for lake layout '{layout}': re-run benchmarks/cost.py")
    return measured
