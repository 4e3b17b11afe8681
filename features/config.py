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
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from features.data_policy import DataPolicyConfig
from features.definitions import retention_problem
from features.errors import ConfigError
from features.monitoring_config import AlertsConfig, PredictionLogConfig
from features.pseudonyms import PseudonymiseConfig

ENV_VAR = "PLAYERPULSE_ENV"
CONF_DIR_VAR = "PLAYERPULSE_CONF_DIR"
DEFAULT_ENV = "local"


def _none_if_empty(v: Any) -> Any:
    return v or None


Sha256Digest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""A key as configuration stores it: the SHA-256 hex digest (``playerpulse keys hash``), never the key."""

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


class StreamAutoscalingConfig(_Strict):
    """How ``playerpulse stream autoscale`` sizes a Kinesis stream (``features/streams/kinesis_scaling.py``).

    Shards are paid by the hour whether used or not, so the stream follows the day's traffic:
    up fast (a full shard throttles the collector into 503s), down slowly (each change costs one
    of UpdateShardCount's few calls a day, and traffic that just fell often comes back).
    """

    mode: Literal["provisioned", "on_demand"] = "provisioned"
    """``provisioned``: this autoscaler picks the shard count. ``on_demand``: the stream is switched
    to Kinesis on-demand capacity (``StreamModeDetails``) and AWS scales it (no shard-hours, a
    higher price per GB)."""
    min_shards: int = Field(1, ge=1, le=10_000)
    max_shards: int = Field(64, ge=1, le=10_000)
    """A ceiling on the bill; at most 10,000 shards per stream for UpdateShardCount."""
    target_utilisation: float = Field(0.6, gt=0, le=1)
    """A scaling step sizes the stream so that the observed peak fills this share of its shards."""
    scale_up_at: float = Field(0.8, gt=0, le=1)
    """Scale up when the recent peak fills more than this share of the current shards."""
    scale_down_at: float = Field(0.3, gt=0, lt=1)
    """Scale down only when the sustained peak fills less than this share (hysteresis: below
    ``target_utilisation``, so that a scale-down never lands above ``scale_up_at``)."""
    scale_up_window_s: int = Field(300, ge=60, le=86_400)
    """The peak minute of this recent window decides a scale-up."""
    scale_down_window_s: int = Field(3600, ge=60, le=86_400)
    """The peak minute of this longer window decides a scale-down."""
    scale_up_cooldown_s: int = Field(120, ge=0)
    """Least time after any change before the next scale-up (resharding takes a while)."""
    scale_down_cooldown_s: int = Field(3600, ge=0)
    """Least time after any change before a scale-down."""
    max_updates_per_day: int = Field(10, ge=1, le=10)
    """UpdateShardCount calls allowed per rolling 24 hours (AWS allows 10 per stream)."""
    updates_kept_for_scale_up: int = Field(2, ge=0, le=9)
    """Scale-downs stop while fewer than this many calls of the day remain, so that a burst can
    still be met."""
    interval_s: int = Field(60, ge=10)
    """How often the autoscaler looks again when it runs continuously (without ``--once``)."""
    cloudwatch_endpoint_url: EndpointUrl = None
    """Override of the CloudWatch endpoint; unset means the stream's ``endpoint_url`` (one local
    server for both in tests) or, without one, AWS itself."""

    @model_validator(mode="after")
    def _consistent(self) -> StreamAutoscalingConfig:
        if self.min_shards > self.max_shards:
            raise ValueError(f"min_shards ({self.min_shards}) is above max_shards ({self.max_shards})")
        if not self.scale_down_at < self.target_utilisation < self.scale_up_at:
            raise ValueError(
                "need scale_down_at < target_utilisation < scale_up_at (hysteresis), got "
                f"{self.scale_down_at} / {self.target_utilisation} / {self.scale_up_at}"
            )
        if self.updates_kept_for_scale_up >= self.max_updates_per_day:
            raise ValueError("updates_kept_for_scale_up must be below max_updates_per_day")
        return self


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


class _OnlineStoreCommon(_Strict):
    idle_expiry_days: float | None = Field(None, gt=0, le=3650)
    """A profile whose player sent no event for this many days (counted from the collector's
    ``received_at`` of the latest event) expires: reads treat it as absent at once, the
    streaming job starts such a player afresh, and the row goes later (DynamoDB's TTL on
    ``expires_at``, typically within two days; on SQLite, ``pipeline maintain``). ``null``:
    profiles never expire."""


class SqliteOnlineStoreConfig(_OnlineStoreCommon):
    backend: Literal["sqlite"] = "sqlite"
    path: str
    """SQLite file holding one row per player profile."""


class DynamoDBOnlineStoreConfig(_OnlineStoreCommon):
    backend: Literal["dynamodb"] = "dynamodb"
    table_name: str = Field(min_length=3, max_length=255)
    """DynamoDB table with one string partition key ``pk`` = ``game_id#player_id``."""
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


class DynamoDBLogStoreConfig(_Strict):
    """Delta's multi-writer log store for S3 (``io.delta.storage.S3DynamoDBLogStore``): S3 has no
    put-if-absent for the commit file, so two clusters writing one table could both commit
    version N; this store makes each commit exclusive with a DynamoDB conditional put. One
    writer per table (the default) does not need it. It needs the jar
    ``io.delta:delta-storage-s3-dynamodb`` on the cluster (not in ``jvm/pom.xml``)."""

    table_name: str = Field(min_length=3, max_length=255)
    """DynamoDB table of commit entries (Delta creates it on first use if it may)."""
    region: str = "us-east-1"


class LakeConfig(_Strict):
    root: str
    """Where the Delta tables live: a local folder or an ``s3a://bucket/prefix`` URI."""
    checkpoints: str
    """Streaming checkpoints (bronze ingestion, silver, profiles)."""
    reports: str | None = None
    """Quality results and latency samples: a folder or an ``s3a://`` URI, so that no job leaves
    what a later one reads on the driver's disk; unset: ``{workdir}/reports`` (one machine)."""
    endpoint_url: EndpointUrl = None
    """S3-compatible endpoint for ``s3a://`` paths (``PLAYERPULSE_AWS_ENDPOINT``: a local server);
    set, S3A uses path-style requests, and plain HTTP when the URL says ``http://``."""
    region: str | None = None
    """Region of the lake's bucket, for S3A (``fs.s3a.endpoint.region``)."""
    catalog: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
    """Unity Catalog catalog (Databricks): tables are named ``catalog.bronze.player_events``
    (three parts) instead of ``bronze.player_events``; unset: the session's own catalog."""
    dynamodb_log_store: DynamoDBLogStoreConfig | None = None
    """Delta's S3 multi-writer log store; unset: Delta's default S3 log store (one writer)."""


class SparkConfig(_Strict):
    master: Annotated[str | None, BeforeValidator(_none_if_empty)] = "local[2]"
    """``local[N]`` on one machine (also against a remote lake on S3); ``null`` or empty for the
    cluster's session (Databricks, EMR) or the master given to ``spark-submit``."""
    shuffle_partitions: int = Field(2, ge=1)
    driver_memory: str = "2g"
    jars_dir: str | None = None
    """Folder of JVM jars (Delta, S3A) resolved by ``make jars``; ``null`` finds ``jvm/jars``."""
    conf: dict[str, str] = Field(default_factory=dict)
    """Extra Spark settings, passed through as they are."""


class MlflowConfig(_Strict):
    tracking_uri: str
    registry_uri: Annotated[str | None, BeforeValidator(_none_if_empty)] = None
    """The model registry (default, or empty: the tracking store)."""
    artifact_root: str
    """Where new experiments store artifacts (a folder or an s3:// URI)."""
    s3_endpoint_url: EndpointUrl = None
    """S3-compatible endpoint of the artifact store (``PLAYERPULSE_AWS_ENDPOINT``); MLflow reads it
    as ``MLFLOW_S3_ENDPOINT_URL``. Unset: AWS."""
    experiment: str = "playerpulse"

    @model_validator(mode="after")
    def _registry_has_aliases(self) -> MlflowConfig:
        """Promotion and serving work by alias (``champion``, ``challenger``); the Databricks
        workspace registry has none, so every prediction would silently fall back."""
        registry = (self.registry_uri or self.tracking_uri).strip().lower()
        if registry == "databricks" or registry.startswith("databricks://"):
            raise ValueError(
                "the Databricks workspace model registry has no aliases, which promotion and serving need: "
                "set mlflow.registry_uri to 'databricks-uc' (Unity Catalog) or use an MLflow tracking server"
            )
        return self


class CollectorConfig(_Strict):
    max_body_bytes: int = Field(1_048_576, ge=1024)
    """Largest request body accepted on the wire (413 above it)."""
    max_decompressed_bytes: int = Field(8_388_608, ge=1024)
    """Largest body after gzip/zstd decoding (413 above it: a compression bomb stops here)."""
    max_events_per_batch: int = Field(1000, ge=1)
    max_past_days: float = Field(30.0, gt=0)
    """Events whose time lies further back than this are rejected as absurd."""
    max_future_minutes: float = Field(60.0, gt=0)
    """Events whose time lies further ahead than this (after skew correction) are rejected."""
    max_clock_skew_hours: float = Field(24.0, gt=0)
    """An event whose ``sent_at`` lies further than this from the collector's clock is rejected
    (its device clock is too far off to correct by), so the skew correction applied to
    ``event_time`` downstream never exceeds it."""
    max_json_values: int = Field(131_072, ge=1000)
    """JSON values (objects, arrays, strings, numbers) one body may hold, counted before any is
    built (413 above it): 8 KB of gzip can unpack to millions of ``{}`` of ~70 bytes each in
    Python. The default is 1,000 events of ~130 values."""
    max_dead_letter_bytes: int = Field(4096, ge=256)
    """Bytes of a rejected item (or of an unusable body) kept in its dead letter; the rest is cut
    and the letter's reason says so."""
    max_dead_letter_bytes_per_request: int = Field(65_536, ge=1024)
    """Dead-letter bytes one request may add in all; later rejections keep their reason and an
    empty (or cut) ``raw``, so a small request never grows the store by megabytes."""
    group_commit_max_wait_ms: float = Field(2.0, ge=0)
    """How long the stream writer waits to gather concurrent requests into one durable write."""
    inline_decode_bytes: int = Field(131_072, ge=0)
    """Bodies that decompress to at most this many bytes are decoded on the event loop (well
    under a millisecond); larger ones go to a thread pool, so heavy requests never stall it."""
    decode_threads: int = Field(2, ge=1, le=64)
    """Threads decoding large bodies off the event loop (per worker process)."""
    max_queued_decodes: int = Field(64, ge=1)
    """Large bodies waiting for a decode thread before new ones get a 503 with Retry-After."""


class StreamingConfig(_Strict):
    trigger_ms: int = Field(0, ge=0)
    """Micro-batch trigger interval; 0 starts the next batch as soon as the last one ends."""
    max_records_per_batch: int = Field(5000, ge=1)
    """Upper bound of stream records (compressed batches) read in one micro-batch of the
    profiles stream, whose batches should be small (freshness)."""
    ingest_records_per_batch: int = Field(50_000, ge=1)
    """The same bound for bronze's ingestion, where few large batches matter instead: each
    micro-batch costs a Delta commit and at least one file per ``event_date`` it touches."""
    state_days: int = Field(30, ge=1)
    """Days of per-player history kept in the online profile: at least the longest window of any
    online feature set (checked here, so every entry point refuses a shorter one)."""
    dedup_ids: int = Field(2000, ge=0)
    """Most recent event ids kept per player to drop re-sent duplicates in the streaming path."""

    @field_validator("state_days")
    @classmethod
    def _keeps_every_online_window(cls, v: int) -> int:
        problem = retention_problem(v)
        if problem is not None:
            raise ValueError(problem)
        return v


class SilverConfig(_Strict):
    """How silver treats rows that break its expectations (``features.expectations``)."""

    max_failing_share: float = Field(0.5, ge=0.0, le=1.0)
    """A micro-batch whose share of quarantined rows exceeds this fails the run with nothing of
    it committed: past it something upstream is broken (a client release, a changed schema), and
    quarantining the bulk of the data would only hide that. Below it, bad rows go to
    silver.quarantine and the run goes on."""
    late_after_days: float = Field(7.0, gt=0)
    """Events received more than this many days after their skew-corrected ``event_time`` are
    quarantined as too late (their day's features were served and trained on long ago); later
    events within it land in their own ``event_date``."""


RetainedTable = Literal["bronze.player_events", "silver.player_events"]
"""Tables a retention delete may shorten: those partitioned by ``event_date``, where dropping
old days removes whole files instead of rewriting them."""


class UpkeepConfig(_Strict):
    """The daily upkeep job (``pipelines/maintain.py``): retention, compaction, VACUUM, S3 tiering."""

    vacuum_retain_hours: float = Field(168.0, ge=0)
    """VACUUM keeps every file a table version of this many past hours references (time travel,
    readers and streams still running). Delta refuses less than 168 unless its
    ``retentionDurationCheck`` is disabled, because shorter windows can break running readers."""
    retention_days: dict[RetainedTable, int] = Field(default_factory=lambda: {"bronze.player_events": 365})
    """Maximum age per table: ``event_date`` partitions older than this many days are deleted
    (then freed by VACUUM). A table not named keeps everything; silver usually does, since gold
    recomputes lifetime features from it."""
    bronze_to_ia_days: int = Field(30, ge=30)
    """Days after which bronze objects on S3 move to STANDARD_IA (S3 requires at least 30)."""
    bronze_to_glacier_days: int = Field(90, ge=31)
    """Days after which bronze objects on S3 move to GLACIER. Spark cannot read GLACIER objects
    without a restore, so keep it past any day that still receives events (the collector's
    ``max_past_days``) or that anything re-reads."""

    @field_validator("retention_days")
    @classmethod
    def _positive_ages(cls, ages: dict[str, int]) -> dict[str, int]:
        bad = {t: d for t, d in ages.items() if d < 1}
        if bad:
            raise ValueError(f"retention ages must be at least 1 day, got {bad}")
        return ages

    @model_validator(mode="after")
    def _tiers_in_order(self) -> UpkeepConfig:
        if self.bronze_to_glacier_days <= self.bronze_to_ia_days:
            raise ValueError(
                f"bronze_to_glacier_days ({self.bronze_to_glacier_days}) must be after bronze_to_ia_days "
                f"({self.bronze_to_ia_days}): objects move to STANDARD_IA first"
            )
        bronze_days = self.retention_days.get("bronze.player_events")
        if bronze_days is not None and bronze_days <= self.bronze_to_glacier_days:
            raise ValueError(
                f"retention_days of bronze.player_events ({bronze_days}) is not after bronze_to_glacier_days "
                f"({self.bronze_to_glacier_days}): objects would move to GLACIER only to be deleted, and GLACIER "
                "bills at least 90 days; raise the retention or the GLACIER day"
            )
        return self


class MetricsAccessConfig(_Strict):
    """Who may read ``/metrics``: its labels name games and show their traffic, so it is never
    open to whoever can reach the API. Choose a key, a separate port, or both."""

    keys: list[Sha256Digest] = Field(default_factory=list)
    """Digests of bearer keys that may read ``/metrics`` on the API port (a scraper's key)."""
    port: int | None = Field(None, ge=1, le=65535)
    """Serve ``/metrics`` on this separate port (bound to ``host``) instead of the API port."""
    host: str = "127.0.0.1"
    """Interface of the separate metrics port: keep it private (loopback or a VPC address)."""

    @model_validator(mode="after")
    def _protected(self) -> MetricsAccessConfig:
        if not self.keys and self.port is None:
            raise ValueError("set metrics.keys (bearer key digests) or metrics.port (a separate private port)")
        return self


class ServingConfig(_Strict):
    model_cache_seconds: float = Field(30.0, ge=0)
    """How long a resolved champion is reused before the registry is asked again."""
    store_timeout_ms: float = Field(50.0, gt=0)
    """Budget of one online-store read while serving: a slower read (or a failing store) is
    answered with the model's fallback content, reason ``store_timeout`` (``store_error``)."""
    max_request_bytes: int = Field(65_536, ge=1024)
    """Largest body of a predict request (413 above it); read only after the key is checked."""
    max_context_keys: int = Field(32, ge=0, le=1024)
    """Most fields a predict request's ``context`` object may carry (400 above it)."""
    body_read_timeout_s: float = Field(10.0, gt=0)
    """A request body must arrive within this many seconds (408 otherwise): a client that
    trickles its body cannot hold a connection indefinitely."""
    max_connections: int = Field(2048, ge=1)
    """Concurrent connections per worker before new ones get a 503 (uvicorn's limit)."""
    keep_alive_timeout_s: float = Field(5.0, gt=0)
    """Idle keep-alive connections are closed after this many seconds."""
    metrics: MetricsAccessConfig = MetricsAccessConfig(port=9464)
    prediction_log: PredictionLogConfig = PredictionLogConfig()
    """A bounded sample of predictions (features, score, version, fallback reason)."""


GAME_ID_PATTERN = r"^[A-Za-z0-9_.\-]{1,32}$"
"""Game ids appear in keys of the online store (``game#player``): no ``#``, no spaces."""

DEVELOPMENT_KEYS: dict[str, str] = {
    "ingest": "pp-demo-key-local-only",
    "serve": "pp-demo-serve-key-local-only",
    "metrics": "pp-demo-metrics-key-local-only",
}
"""Keys published in the README for the embedded demo: accepted by the ``local`` env only."""


class GameVendorsConfig(_Strict):
    """How this game's events may also arrive through analytics SDKs it already ships
    (Segment, Snowplow, GameAnalytics; ``serving/vendors``). Segment and Snowplow clients carry
    the game's ingest key; GameAnalytics signs each body with its own secret instead."""

    mapping: str = Field("default", pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    """``conf/vendors/<mapping>.yaml``: how each vendor's events become PlayerPulse events
    (validated when the collector starts)."""
    gameanalytics_game_key: str | None = Field(None, pattern=r"^[A-Za-z0-9]{1,64}$")
    """The GameAnalytics game key in the SDK's URL (``/v2/<game_key>/events``)."""
    gameanalytics_secret_env: str | None = Field(None, pattern=r"^[A-Z][A-Z0-9_]{0,127}$")
    """Name of the environment variable holding the GameAnalytics secret key: the body's
    HMAC needs the secret itself (not a digest), so it never appears in configuration."""

    @model_validator(mode="after")
    def _gameanalytics_pair(self) -> GameVendorsConfig:
        if (self.gameanalytics_game_key is None) != (self.gameanalytics_secret_env is None):
            raise ValueError("set both gameanalytics_game_key and gameanalytics_secret_env, or neither")
        return self


class RateLimitConfig(_Strict):
    """A token bucket per ingest key: ``events_per_second`` refill, ``burst`` capacity."""

    events_per_second: float = Field(gt=0)
    """Sustained events per second one key may post; a request takes one token per item."""
    burst: int = Field(ge=1)
    """Tokens a full bucket holds: at least ``collector.max_events_per_batch``, so that one
    full batch can always pass (checked at start-up)."""


class GameConfig(_Strict):
    """One game's credentials, per role. Several keys may be live per role, so a key rotates
    with overlap: add the new digest, ship it, remove the old one."""

    ingest_keys: list[Sha256Digest] = Field(min_length=1)
    """Digests of keys that may post this game's events; they ship inside the game client."""
    serve_keys: list[Sha256Digest] = Field(default_factory=list)
    """Digests of keys that may read this game's profiles and predictions; they stay on the
    game's servers. Empty: nobody reads this game's players over HTTP."""
    vendors: GameVendorsConfig | None = None
    """Accept this game's events in vendor SDK formats too; absent: ``/v1/events`` only."""
    pseudonymise: PseudonymiseConfig | None = None
    """Replace ``player_id`` by a keyed hash before anything is stored (``features/pseudonyms.py``);
    absent: raw player ids are stored everywhere (see the README's Privacy section)."""
    data_policy: DataPolicyConfig | None = None
    """Which event properties are kept, dropped or coarsened (``features/data_policy.py``);
    absent: properties are stored as sent and dead letters keep items as sent."""
    rate_limit: RateLimitConfig | None = None
    """Events per second each of this game's ingest keys may post (per worker process);
    absent: no limit beyond the collector's size limits."""


class Settings(_Strict):
    env: str
    workdir: str
    games: dict[str, GameConfig] = Field(min_length=1)
    """Game id → its keys. Every key reaches its own game's data only."""
    stream: StreamConfig
    dead_letter: DeadLetterConfig
    online_store: OnlineStoreConfig
    lake: LakeConfig
    spark: SparkConfig = SparkConfig()
    mlflow: MlflowConfig
    collector: CollectorConfig
    streaming: StreamingConfig = StreamingConfig()
    silver: SilverConfig = SilverConfig()
    upkeep: UpkeepConfig = UpkeepConfig()
    stream_autoscaling: StreamAutoscalingConfig = StreamAutoscalingConfig()
    serving: ServingConfig = ServingConfig()
    alerts: AlertsConfig = AlertsConfig()
    """Thresholds of ``playerpulse report ... --check`` (``features.monitoring_config``)."""
    models_dir: str
    """Folder of model declarations (``NAME.yaml``), owned by data scientists."""

    @field_validator("games")
    @classmethod
    def _game_ids(cls, games: dict[str, GameConfig]) -> dict[str, GameConfig]:
        for game in games:
            if not re.fullmatch(GAME_ID_PATTERN, game):
                raise ValueError(f"game id '{game}' must be 1-32 characters of A-Z a-z 0-9 _ . -")
        return games

    @model_validator(mode="after")
    def _keys_are_distinct_and_private(self) -> Settings:
        seen: dict[str, str] = {}
        places = [
            (f"games.{g}.{role}", d)
            for g, c in self.games.items()
            for role in ("ingest_keys", "serve_keys")
            for d in getattr(c, role)
        ]
        places += [("serving.metrics.keys", d) for d in self.serving.metrics.keys]
        for place, digest in places:
            if digest in seen and seen[digest] != place:
                raise ValueError(f"one key is configured twice ({seen[digest]} and {place}): give each role its own")
            seen[digest] = place
        if self.env != "local":
            published = {hash_api_key(k) for k in DEVELOPMENT_KEYS.values()}
            for place, digest in places:
                if digest in published:
                    raise ValueError(
                        f"{place} holds a development key published in the README; it is accepted only by "
                        f"env 'local': generate a secret key and configure its SHA-256 digest"
                    )
        return self

    @property
    def reports_dir(self) -> Path:
        return Path(self.workdir) / "reports"

    @property
    def reports_location(self) -> str:
        """Where jobs keep reports: ``lake.reports``, else ``{workdir}/reports``."""
        return (self.lake.reports or str(self.reports_dir)).rstrip("/")


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
