"""The event contract (schema_version 1): one definition for the collector, Spark and the simulator.

A game sends events as JSON objects of the shape of ``Event``. The collector validates each one
with ``EventValidator`` and puts the *normalised* form on the stream: times as epoch
milliseconds, ``received_at`` stamped, ``properties`` kept as an object. Spark reads the same
normalised form with ``BRONZE_DDL``. Changing a field here is a contract change: add a new
``schema_version`` rather than altering version 1 in place.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal, get_args

import msgspec

SCHEMA_VERSION = 1

EventType = Literal[
    "session_start",
    "session_end",
    "level_up",
    "match_end",
    "store_view",
    "offer_shown",
    "purchase",
    "currency_earn",
    "currency_spend",
    "ad_view",
]
Platform = Literal["ios", "android", "pc", "console", "web"]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
PLATFORMS: tuple[str, ...] = get_args(Platform)

# Character rules on player_id and country are checked after decoding, once per distinct value
# (``identity_reason``): a regex inside the decoder runs per event and cost more than the rest
# of decoding together. The JSON Schema still publishes the patterns.
PLAYER_ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"
COUNTRY_PATTERN = r"^[A-Z]{2}$"
PlayerId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, extra_json_schema={"pattern": PLAYER_ID_PATTERN})]
# A game id only has to equal the API key's game (checked by the collector): no pattern needed.
GameId = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Country = Annotated[str, msgspec.Meta(min_length=2, max_length=2, extra_json_schema={"pattern": COUNTRY_PATTERN})]
EpochMs = Annotated[int, msgspec.Meta(ge=0, le=32503680000000)]  # up to year 3000
Timestamp = EpochMs | datetime
Properties = Annotated[dict[str, Any], msgspec.Meta(max_length=64)]


class Event(msgspec.Struct, forbid_unknown_fields=True):
    """One player event as a game sends it (schema_version 1)."""

    event_id: uuid.UUID
    """Client-made UUID, the deduplication key (parsed in C; any case, stored lower-case)."""
    event_type: EventType
    player_id: PlayerId
    game_id: GameId
    event_time: Timestamp
    platform: Platform
    app_version: ShortText
    schema_version: Literal[1] = 1
    sent_at: Timestamp | None = None
    country: Country | None = None
    session_id: ShortText | None = None
    properties: Properties = msgspec.field(default_factory=dict)


def to_epoch_ms(value: int | datetime) -> int:
    """Epoch milliseconds from either accepted time form (an RFC 3339 string without an offset is UTC)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp() * 1000)
    return int(value)


def corrected_event_time_ms(event_time_ms: int, sent_at_ms: int | None, received_at_ms: int) -> int:
    """Device time moved onto the server clock: a device whose clock runs ahead by d sends
    ``sent_at`` d ahead too, so ``received_at - sent_at`` undoes the skew (plus transit time)."""
    if sent_at_ms is None:
        return event_time_ms
    return event_time_ms + (received_at_ms - sent_at_ms)


_player_id_re = re.compile(PLAYER_ID_PATTERN)
_country_re = re.compile(COUNTRY_PATTERN)


@lru_cache(maxsize=65_536)
def _player_id_ok(value: str) -> bool:
    return _player_id_re.fullmatch(value) is not None


@lru_cache(maxsize=1024)
def _country_ok(value: str) -> bool:
    return _country_re.fullmatch(value) is not None


def identity_reason(ev: Event) -> str | None:
    """Why ``player_id`` or ``country`` breaks its character rules, or ``None``."""
    if not _player_id_ok(ev.player_id):
        return "player_id must be 1-64 characters of A-Z a-z 0-9 _ . : - - at `$.player_id`"
    if ev.country is not None and not _country_ok(ev.country):
        return "country must be an ISO 3166-1 alpha-2 code (two capital letters) - at `$.country`"
    return None


@dataclass(frozen=True)
class TimeBounds:
    """How far from the server clock a (skew-corrected) event time may lie."""

    max_past_ms: int
    max_future_ms: int

    @classmethod
    def of(cls, max_past_days: float, max_future_minutes: float) -> TimeBounds:
        return cls(int(max_past_days * 86_400_000), int(max_future_minutes * 60_000))


class EventValidator:
    """Checks raw JSON values against the contract and the time bounds; never raises."""

    def __init__(self, bounds: TimeBounds):
        self.bounds = bounds

    def check_time(self, ev: Event, received_at_ms: int) -> str | None:
        """The reason a structurally valid event is still refused (its time), or ``None``."""
        sent_ms = to_epoch_ms(ev.sent_at) if ev.sent_at is not None else None
        corrected = corrected_event_time_ms(to_epoch_ms(ev.event_time), sent_ms, received_at_ms)
        if corrected < received_at_ms - self.bounds.max_past_ms:
            return "event_time is further in the past than the collector accepts"
        if corrected > received_at_ms + self.bounds.max_future_ms:
            return "event_time is further in the future than the collector accepts"
        return None

    def batch_rejections(self, events: list[Event], received_at_ms: int) -> dict[int, str]:
        """What ``check`` would refuse in a batch already decoded into ``Event`` s (index →
        reason), written for the collector's hot path: the common case (an ``int`` time within
        bounds, a player id seen before) costs a few comparisons and a cache hit."""
        lo = received_at_ms - self.bounds.max_past_ms
        hi = received_at_ms + self.bounds.max_future_ms
        out: dict[int, str] = {}
        for i, ev in enumerate(events):
            t = ev.event_time
            if t.__class__ is not int:
                t = to_epoch_ms(t)
            sent = ev.sent_at
            if sent is not None:
                t += received_at_ms - (sent if sent.__class__ is int else to_epoch_ms(sent))
            if t < lo or t > hi:
                out[i] = self.check_time(ev, received_at_ms) or "event_time is out of bounds"
            elif not _player_id_ok(ev.player_id) or (ev.country is not None and not _country_ok(ev.country)):
                out[i] = identity_reason(ev) or "invalid identity"
        return out

    def check(self, raw: Any, received_at_ms: int) -> tuple[Event | None, str | None]:
        """``(event, None)`` when valid, else ``(None, reason)``."""
        if not isinstance(raw, dict):
            return None, f"an event must be a JSON object, got {type(raw).__name__}"
        try:
            ev = msgspec.convert(raw, Event, strict=False)
        except msgspec.ValidationError as exc:
            return None, str(exc)
        reason = identity_reason(ev) or self.check_time(ev, received_at_ms)
        return (None, reason) if reason else (ev, None)

    def validate(self, raw: Any, received_at_ms: int) -> tuple[dict[str, Any] | None, str | None]:
        """``(normalised_event, None)`` when valid, else ``(None, reason)``."""
        ev, reason = self.check(raw, received_at_ms)
        return (normalise(ev, received_at_ms), None) if ev is not None else (None, reason)


def normalise(ev: Event, received_at_ms: int) -> dict[str, Any]:
    """The stream form of a valid event: times as epoch ms, ``received_at`` stamped."""
    return {
        "event_id": str(ev.event_id),
        "schema_version": ev.schema_version,
        "event_type": ev.event_type,
        "player_id": ev.player_id,
        "game_id": ev.game_id,
        "event_time": to_epoch_ms(ev.event_time),
        "sent_at": to_epoch_ms(ev.sent_at) if ev.sent_at is not None else None,
        "received_at": received_at_ms,
        "platform": ev.platform,
        "app_version": ev.app_version,
        "country": ev.country,
        "session_id": ev.session_id,
        "properties": ev.properties,
    }


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# Columns of a normalised event as Spark reads it off the stream (times are epoch ms; the
# Spark jobs turn them into TIMESTAMPs). ``properties`` stays JSON text: each event type has its
# own properties, typed in silver.
STREAM_EVENT_DDL = (
    "event_id STRING, schema_version INT, event_type STRING, player_id STRING, game_id STRING, "
    "event_time BIGINT, sent_at BIGINT, received_at BIGINT, stream_at BIGINT, platform STRING, "
    "app_version STRING, country STRING, session_id STRING, properties STRING, "
    "stream_shard STRING, stream_position STRING"
)
