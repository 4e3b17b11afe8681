"""The event contract (schema_version 1): one definition for the collector, Spark and the simulator.

A game sends events as JSON objects of the shape of ``Event``. The collector validates each one
with ``EventValidator`` and puts the *normalised* form on the stream: times as epoch
milliseconds, ``received_at`` stamped, ``properties`` kept as an object. Spark reads the same
normalised form with ``BRONZE_DDL``. Changing a field here is a contract change: add a new
``schema_version`` rather than altering version 1 in place.

Limits a sender cannot move: ``properties`` holds at most 64 keys and nests at most
``MAX_PROPERTIES_DEPTH`` (8) levels of objects and arrays, counting ``properties`` itself as
level 1. The limit is part of the type, so the decoder enforces it in C for whole batches and
one event at a time alike, and the published JSON Schema spells it out; without it, the depth
an event could nest was set by Python's recursion limit (a 956-deep object failed only when the
collector re-encoded it). A device clock may be off by at most ``TimeBounds.max_skew_ms``
(24 h by default): an event whose ``sent_at`` is further from the collector's clock is rejected,
never corrected, so the correction silver and bronze apply to ``event_time`` is bounded too.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal, Union, get_args

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
    # A vendor SDK's event with no PlayerPulse equivalent, kept when the game's vendor mapping
    # says ``unmapped: custom`` (serving/vendors); its vendor name is ``properties.name``.
    "custom",
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

MAX_PROPERTIES_DEPTH = 8
"""Levels of objects/arrays ``properties`` may nest, itself included: ``{"a": {"b": [1]}}`` is 3."""
MAX_REASON_CHARS = 240
"""Rejection reasons quote the sender's input (an unknown field's name): kept to this length."""
_Scalar = None | bool | int | float | str


def _value_at(depth: int) -> Any:
    """A property value whose containers sit at ``depth``: scalars only past the limit."""
    if depth > MAX_PROPERTIES_DEPTH:
        return _Scalar
    inner = _value_at(depth + 1)
    return Union[_Scalar, list[inner], dict[str, inner]]  # noqa: UP007 - built at run time


Properties = Annotated[
    dict[str, _value_at(2)],
    msgspec.Meta(
        max_length=64,
        description=f"Per event type (e.g. purchase: sku, price_usd); at most 64 keys, nesting at most "
        f"{MAX_PROPERTIES_DEPTH} levels of objects and arrays (this object is level 1).",
        extra_json_schema={"x-max-depth": MAX_PROPERTIES_DEPTH},
    ),
]


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


def event_schema_components(ref_template: str = "#/$defs/{name}") -> dict[str, Any]:
    """JSON Schema components of ``Event`` as msgspec derives them, except ``properties``: its
    depth-bounded value type unrolls into 2^7 nested ``anyOf`` copies (~40 KB that schema tools
    crawl through), so it is published as an object of at most 64 keys with the depth stated in
    ``x-max-depth`` and its description."""
    (_, components) = msgspec.json.schema_components([Event], ref_template=ref_template)
    props = components["Event"]["properties"]["properties"]
    props.pop("additionalProperties", None)
    props["type"] = "object"
    return components


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


DEFAULT_MAX_CLOCK_SKEW_HOURS = 24.0


@dataclass(frozen=True)
class TimeBounds:
    """How far from the server clock a (skew-corrected) event time may lie, and how far a
    device clock (``sent_at``) may be off before its correction is refused."""

    max_past_ms: int
    max_future_ms: int
    max_skew_ms: int = int(DEFAULT_MAX_CLOCK_SKEW_HOURS * 3_600_000)

    @classmethod
    def of(
        cls, max_past_days: float, max_future_minutes: float, max_clock_skew_hours: float = DEFAULT_MAX_CLOCK_SKEW_HOURS
    ) -> TimeBounds:
        return cls(
            int(max_past_days * 86_400_000), int(max_future_minutes * 60_000), int(max_clock_skew_hours * 3_600_000)
        )

    def skew_reason(self) -> str:
        hours = f"{self.max_skew_ms / 3_600_000:g}"
        return (
            f"sent_at is more than {hours} h from the collector's clock: the device clock is too far off to "
            "correct event_time by; fix the clock or send the batch without sent_at"
        )


class EventValidator:
    """Checks raw JSON values against the contract and the time bounds; never raises."""

    def __init__(self, bounds: TimeBounds):
        self.bounds = bounds
        self._skew_reason = bounds.skew_reason()

    def check_time(self, ev: Event, received_at_ms: int) -> str | None:
        """The reason a structurally valid event is still refused (its time), or ``None``."""
        sent_ms = to_epoch_ms(ev.sent_at) if ev.sent_at is not None else None
        if sent_ms is not None and abs(received_at_ms - sent_ms) > self.bounds.max_skew_ms:
            return self._skew_reason
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
        skew, neg_skew = self.bounds.max_skew_ms, -self.bounds.max_skew_ms
        out: dict[int, str] = {}
        for i, ev in enumerate(events):
            # identity before time, in the order ``check`` tests them, so both give one reason
            if not _player_id_ok(ev.player_id) or (ev.country is not None and not _country_ok(ev.country)):
                out[i] = identity_reason(ev) or "invalid identity"
                continue
            t = ev.event_time
            if t.__class__ is not int:
                t = to_epoch_ms(t)
            sent = ev.sent_at
            if sent is not None:
                shift = received_at_ms - (sent if sent.__class__ is int else to_epoch_ms(sent))
                if shift > skew or shift < neg_skew:
                    out[i] = self._skew_reason
                    continue
                t += shift
            if t < lo or t > hi:
                out[i] = self.check_time(ev, received_at_ms) or "event_time is out of bounds"
        return out

    def check(self, raw: Any, received_at_ms: int) -> tuple[Event | None, str | None]:
        """``(event, None)`` when valid, else ``(None, reason)``; ``raw`` is a decoded JSON value
        or a ``msgspec.Raw`` (one item's JSON text, decoded here so that a bad item costs only
        its own rejection)."""
        if isinstance(raw, msgspec.Raw):
            try:
                raw = _decode_item(raw)
            except msgspec.DecodeError as exc:
                return None, _short(f"not valid JSON: {exc}")
            except RecursionError:
                return None, f"nests too deep to decode (properties may nest {MAX_PROPERTIES_DEPTH} levels)"
        if not isinstance(raw, dict):
            return None, f"an event must be a JSON object, got {type(raw).__name__}"
        try:
            ev = msgspec.convert(raw, Event, strict=False)
        except msgspec.ValidationError as exc:
            return None, _validation_reason(exc, raw)
        reason = identity_reason(ev) or self.check_time(ev, received_at_ms)
        return (None, reason) if reason else (ev, None)

    def validate(self, raw: Any, received_at_ms: int) -> tuple[dict[str, Any] | None, str | None]:
        """``(normalised_event, None)`` when valid, else ``(None, reason)``."""
        ev, reason = self.check(raw, received_at_ms)
        return (normalise(ev, received_at_ms), None) if ev is not None else (None, reason)


_decode_item = msgspec.json.Decoder().decode


def _short(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 3] + "..."


def nesting_depth(value: Any) -> int:
    """Levels of objects/arrays in ``value`` (0 for a scalar), without recursion; counting stops
    past ``MAX_PROPERTIES_DEPTH``."""
    depth, level = 0, [value]
    while True:
        containers = [c for c in level if isinstance(c, (dict, list))]
        if not containers or depth > MAX_PROPERTIES_DEPTH:
            return depth
        depth += 1
        level = [v for c in containers for v in (c.values() if isinstance(c, dict) else c)]


def _validation_reason(exc: msgspec.ValidationError, raw: dict[str, Any]) -> str:
    """msgspec's message, or a plain one when ``properties`` nests past the contract's depth."""
    reason = str(exc)
    if "`$.properties" in reason and nesting_depth(raw.get("properties")) > MAX_PROPERTIES_DEPTH:
        return f"properties nest deeper than {MAX_PROPERTIES_DEPTH} levels - at `$.properties`"
    return _short(reason)


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
