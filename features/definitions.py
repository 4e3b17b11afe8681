"""Feature definitions: written once, compiled to batch Spark, streaming state and serving.

A ``FeatureSet`` is a versioned list of aggregations over player events, in the spirit of
Chronon's ``GroupBy``: each ``Aggregation`` names the event types it reads, an optional typed
property, an operation and windows in days. Output names are predictable:
``{input}_{op}_{window}d`` (``purchase_price_usd_sum_30d``) and ``days_since_last_{input}``.

Windows are *day-tiled*: a window of N days as of time T covers the UTC event dates
``date(T)-N+1 … date(T)`` and only events at or before T. Both the batch job (from
``gold.player_daily``) and the streaming job (from per-day buckets in the online profile) use
exactly these semantics, which is what lets a test prove them equal. Changing a definition means
adding a new version, never editing a published one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from features.contract import EVENT_TYPES
from features.properties import PROPERTY_TYPES

Op = Literal["count", "sum", "avg", "max"]


@dataclass(frozen=True)
class Aggregation:
    """``op`` over ``value`` (or over events, for count) of ``event_types``, per window."""

    input: str
    event_types: tuple[str, ...]
    op: Op
    windows: tuple[int, ...]
    value: str | None = None

    def __post_init__(self) -> None:
        unknown = set(self.event_types) - set(EVENT_TYPES)
        if unknown:
            raise ValueError(f"aggregation '{self.input}': unknown event types {sorted(unknown)}")
        if self.op == "count" and self.value is not None:
            raise ValueError(f"aggregation '{self.input}': count takes no value")
        if self.op != "count" and self.value not in PROPERTY_TYPES:
            raise ValueError(f"aggregation '{self.input}': op {self.op} needs a known numeric property")
        if self.value is not None and PROPERTY_TYPES[self.value] == "string":
            raise ValueError(f"aggregation '{self.input}': property {self.value} is not numeric")
        if not self.windows or any(w < 1 for w in self.windows):
            raise ValueError(f"aggregation '{self.input}': windows must be whole days >= 1")

    @property
    def bucket(self) -> str:
        """Name of the per-day partial aggregate this reads (shared by aggregations of one input)."""
        return self.input

    def output_name(self, window: int) -> str:
        return f"{self.input}_{self.op}_{window}d"


@dataclass(frozen=True)
class Recency:
    """Days since the latest event of ``event_types`` as of T (``None`` if there is none)."""

    input: str
    event_types: tuple[str, ...]

    @property
    def output_name(self) -> str:
        return f"days_since_last_{self.input}"


@dataclass(frozen=True)
class FeatureSet:
    name: str
    version: int
    aggregations: tuple[Aggregation, ...]
    recencies: tuple[Recency, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        buckets: dict[str, tuple[tuple[str, ...], str | None]] = {}
        for agg in self.aggregations:
            seen = buckets.setdefault(agg.bucket, (agg.event_types, agg.value))
            if seen != (agg.event_types, agg.value):
                raise ValueError(f"input '{agg.bucket}' is defined twice with different sources")
        names = self.feature_names
        if len(names) != len(set(names)):
            raise ValueError(f"feature set {self.full_name} has duplicate feature names")

    @property
    def full_name(self) -> str:
        return f"{self.name}_v{self.version}"

    @property
    def feature_names(self) -> list[str]:
        out = [a.output_name(w) for a in self.aggregations for w in a.windows]
        return out + [r.output_name for r in self.recencies]

    @property
    def max_window_days(self) -> int:
        return max(w for a in self.aggregations for w in a.windows)

    def buckets(self) -> dict[str, tuple[tuple[str, ...], str | None]]:
        """Per-day partial aggregates needed: input → (event types, value property)."""
        return {a.bucket: (a.event_types, a.value) for a in self.aggregations}


PLAYER_ACTIVITY_V1 = FeatureSet(
    name="player_activity",
    version=1,
    aggregations=(
        Aggregation("session", ("session_start",), "count", (1, 7, 30)),
        Aggregation("session_duration_s", ("session_end",), "sum", (7,), value="duration_s"),
        Aggregation("match", ("match_end",), "count", (1, 7)),
        Aggregation("match_won", ("match_end",), "avg", (7,), value="won"),
        Aggregation("level_up", ("level_up",), "count", (7,)),
        Aggregation("level", ("level_up",), "max", (30,), value="level"),
        Aggregation("store_view", ("store_view",), "count", (1, 7)),
        Aggregation("offer_shown", ("offer_shown",), "count", (7,)),
        Aggregation("purchase", ("purchase",), "count", (7, 30)),
        Aggregation("purchase_price_usd", ("purchase",), "sum", (30,), value="price_usd"),
        Aggregation("currency_earn_amount", ("currency_earn",), "sum", (7,), value="amount"),
        Aggregation("currency_spend_amount", ("currency_spend",), "sum", (7,), value="amount"),
        Aggregation("ad_view", ("ad_view",), "count", (7,)),
    ),
    recencies=(
        Recency("event", EVENT_TYPES),
        Recency("purchase", ("purchase",)),
        Recency("store_view", ("store_view",)),
    ),
)

FEATURE_SETS: dict[str, FeatureSet] = {fs.full_name: fs for fs in (PLAYER_ACTIVITY_V1,)}


def feature_set(full_name: str) -> FeatureSet:
    try:
        return FEATURE_SETS[full_name]
    except KeyError:
        raise KeyError(f"unknown feature set '{full_name}' (known: {sorted(FEATURE_SETS)})") from None
