"""Typed platform configuration, loaded from ``conf/<env>.yaml`` and validated at start-up.

Configuration is data: every command reads one YAML file (chosen by ``--env`` or
``PLAYERPULSE_ENV``), substitutes ``{workdir}`` and ``${ENV_VAR}`` placeholders, and validates
it here. An unknown or missing key stops start-up with a ``ConfigError`` that names the key,
so a typo never silently falls back to a default.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from features.errors import ConfigError

ENV_VAR = "PLAYERPULSE_ENV"
CONF_DIR_VAR = "PLAYERPULSE_CONF_DIR"
DEFAULT_ENV = "local"


def _none_if_empty(v: Any) -> Any:
    return v or None


EndpointUrl = Annotated[str | None, BeforeValidator(_none_if_empty)]
"""An AWS endpoint override; empty (an unset ``${VAR:-}``) means the real AWS endpoint."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- stream backends -------------------------------------------------------------------------


class SqliteStreamConfig(_Strict):
    backend: Literal["sqlite"] = "sqlite"
    path: str
    """SQLite file holding the stream (WAL mode); one machine, no server."""
    shards: int = Field(4, ge=1, le=1024)
    """Records are spread over this many shards by a hash of their partition key (the player)."""
    busy_timeout_ms: int = Field(5000, ge=0)
    """How long a writer waits for the file lock before the collector answers 503."""


class KinesisStreamConfig(_Strict):
    backend: Literal["kinesis"] = "kinesis"
    stream_name: str = Field(min_length=1, max_length=128)
    """Name of the Kinesis data stream; the collector writes, the Spark jobs read."""
    region: str = "us-east-1"
    endpoint_url: EndpointUrl = None
    """Override of the AWS endpoint (a local Kinesis-compatible server in tests)."""
    max_put_attempts: int = Field(5, ge=1, le=20)
    """PutRecords is retried (only for the records that failed) up to this many times."""
    create_if_missing: bool = False
    """Create the stream on first use (local servers); in AWS the stream comes from IaC."""
    shard_count: int = Field(1, ge=1)
    """Shards to create with ``create_if_missing``."""


StreamConfig = Annotated[SqliteStreamConfig | KinesisStreamConfig, Field(discriminator="backend")]


# --- dead-letter stores ---------------------------------------------------------------------


class SqliteDeadLetterConfig(_Strict):
    backend: Literal["sqlite"] = "sqlite"
    path: str
    """SQLite file for rejected input with its reason (may be the stream's own file)."""


class S3DeadLetterConfig(_Strict):
    backend: Literal["s3"] = "s3"
    bucket: str = Field(min_length=3, max_length=63)
    prefix: str = "dead_letter/"
    region: str = "us-east-1"
    endpoint_url: EndpointUrl = None
    create_if_missing: bool = False


DeadLetterConfig = Annotated[SqliteDeadLetterConfig | S3DeadLetterConfig, Field(discriminator="backend")]


# --- online stores --------------------------------------------------------------------------


class SqliteOnlineStoreConfig(_Strict):
    backend: Literal["sqlite"] = "sqlite"
    path: str
    """SQLite file holding one row per player profile."""


class DynamoDBOnlineStoreConfig(_Strict):
    backend: Literal["dynamodb"] = "dynamodb"
    table_name: str = Field(min_length=3, max_length=255)
    """DynamoDB table with partition key ``player_id`` (string)."""
    region: str = "us-east-1"
    endpoint_url: EndpointUrl = None
    create_if_missing: bool = False
    """Create the table (on-demand billing) on first use: local servers and dev accounts."""
    consistent_reads: bool = False
    """Strongly consistent GetItem: read-your-writes at twice the read cost and a little latency;
    serving is fine with eventual consistency (a profile is at most ~1 s stale)."""
    write_concurrency: int = Field(8, ge=1, le=64)
    """Conditional PutItems in flight at once: BatchWriteItem has no conditions, so a batch of
    profiles is written by this many threads instead."""


OnlineStoreConfig = Annotated[SqliteOnlineStoreConfig | DynamoDBOnlineStoreConfig, Field(discriminator="backend")]


# --- the rest -------------------------------------------------------------------------------


class LakeConfig(_Strict):
    root: str
    """Where the Delta tables live: a local folder or an ``s3a://bucket/prefix`` URI."""
    checkpoints: str
    """Streaming checkpoints (bronze ingestion, profiles)."""


class SparkConfig(_Strict):
    master: str | None = "local[2]"
    """``local[N]`` on one machine; ``null`` to use the cluster's session (Databricks, EMR)."""
    shuffle_partitions: int = Field(2, ge=1)
    driver_memory: str = "2g"
    jars_dir: str | None = None
    """Folder of JVM jars (Delta, S3A) resolved by ``make jars``; ``null`` finds ``jvm/jars``."""
    conf: dict[str, str] = Field(default_factory=dict)
    """Extra Spark settings, passed through as they are."""


class MlflowConfig(_Strict):
    tracking_uri: str
    registry_uri: str | None = None
    artifact_root: str
    """Where new experiments store artifacts (a folder or an s3:// URI)."""
    experiment: str = "playerpulse"


class CollectorConfig(_Strict):
    api_keys: dict[str, str]
    """Game id → SHA-256 hex digest of that game's API key (keys themselves are never stored)."""
    max_body_bytes: int = Field(1_048_576, ge=1024)
    """Largest request body accepted on the wire (413 above it)."""
    max_decompressed_bytes: int = Field(8_388_608, ge=1024)
    """Largest body after gzip/zstd decoding (413 above it: a compression bomb stops here)."""
    max_events_per_batch: int = Field(1000, ge=1)
    max_past_days: float = Field(30.0, gt=0)
    """Events whose time lies further back than this are rejected as absurd."""
    max_future_minutes: float = Field(60.0, gt=0)
    """Events whose time lies further ahead than this (after skew correction) are rejected."""
    group_commit_max_wait_ms: float = Field(2.0, ge=0)
    """How long the stream writer waits to gather concurrent requests into one durable write."""

    @field_validator("api_keys")
    @classmethod
    def _digests(cls, keys: dict[str, str]) -> dict[str, str]:
        for game, digest in keys.items():
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise ValueError(f"api_keys.{game} must be a SHA-256 hex digest (64 hex characters)")
        return keys


class StreamingConfig(_Strict):
    trigger_ms: int = Field(0, ge=0)
    """Micro-batch trigger interval; 0 starts the next batch as soon as the last one ends."""
    max_records_per_batch: int = Field(5000, ge=1)
    """Upper bound of stream records (compressed batches) read in one micro-batch."""
    state_days: int = Field(30, ge=1)
    """Days of per-player history kept in the online profile (the longest feature window)."""
    dedup_ids: int = Field(2000, ge=0)
    """Most recent event ids kept per player to drop re-sent duplicates in the streaming path."""


class ServingConfig(_Strict):
    model_cache_seconds: float = Field(30.0, ge=0)
    """How long a resolved champion is reused before the registry is asked again."""


class Settings(_Strict):
    env: str
    workdir: str
    stream: StreamConfig
    dead_letter: DeadLetterConfig
    online_store: OnlineStoreConfig
    lake: LakeConfig
    spark: SparkConfig = SparkConfig()
    mlflow: MlflowConfig
    collector: CollectorConfig
    streaming: StreamingConfig = StreamingConfig()
    serving: ServingConfig = ServingConfig()
    models_dir: str
    """Folder of model declarations (``NAME.yaml``), owned by data scientists."""

    @property
    def reports_dir(self) -> Path:
        return Path(self.workdir) / "reports"


def hash_api_key(key: str) -> str:
    """The digest stored in configuration for an API key."""
    return hashlib.sha256(key.encode()).hexdigest()


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def conf_dir() -> Path:
    return Path(os.environ.get(CONF_DIR_VAR) or repo_root() / "conf")


_PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}")


def _substitute(value: Any, workdir: str, conf: Path) -> Any:
    if isinstance(value, str):

        def env(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(f"configuration refers to ${{{name}}} but that environment variable is not set")

        value = _PLACEHOLDER.sub(env, value)
        return value.replace("{workdir}", workdir).replace("{conf}", str(conf))
    if isinstance(value, dict):
        return {k: _substitute(v, workdir, conf) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, workdir, conf) for v in value]
    return value


def _describe(err: ValidationError, source: Path) -> str:
    lines = [f"invalid configuration in {source}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"  - unknown key '{key}': remove it or check its spelling")
        elif e["type"] == "missing":
            lines.append(f"  - missing key '{key}': add it")
        else:
            lines.append(f"  - '{key}': {e['msg']}")
    return "\n".join(lines)


def load_settings(env: str | None = None, workdir: str | Path | None = None) -> Settings:
    """Read, substitute and validate ``conf/<env>.yaml``; raise ``ConfigError`` naming bad keys.

    ``workdir`` overrides the file's ``workdir`` so that two work folders never share state.
    """
    env = env or os.environ.get(ENV_VAR) or DEFAULT_ENV
    conf = conf_dir()
    source = conf / f"{env}.yaml"
    if not source.is_file():
        known = sorted(p.stem for p in conf.glob("*.yaml"))
        raise ConfigError(f"no configuration for env '{env}': {source} does not exist (known: {known})")
    try:
        raw = yaml.safe_load(source.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must hold a mapping of settings at the top level")
    wd = str(Path(workdir if workdir is not None else raw.get("workdir", "./var")).resolve())
    raw = {**raw, "workdir": wd, "env": env}
    raw = _substitute(raw, wd, conf)
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
