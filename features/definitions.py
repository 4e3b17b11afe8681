"""Feature definitions: written once, compiled to batch Spark, streaming state and serving.

A ``FeatureSet`` is a versioned list of aggregations over player events, in the spirit of
Chronon's ``GroupBy``: each ``Aggregation`` names the event types it reads, an optional typed
property, an operation (count, sum, avg, min, max, first, last, distinct) and windows from
minutes to lifetime. Output names are predictable: ``{input}_{op}_{window}``
(``purchase_price_usd_sum_30d``, ``store_view_count_15m``, ``purchase_count_lifetime``) and
``days_since_last_{input}`` / ``minutes_since_last_{input}``.

What a window covers as of a time T is defined once, in ``features.windows``: 5-minute tiles
for minute and hour windows, UTC days for day windows, one cell for lifetime, and only events at
or before T. The batch job (``gold.player_daily``), the streaming job (tiles in the online
profile) and serving (which reads those tiles as of the request time) use exactly these
semantics, which is what lets a test prove them equal. Changing a definition means adding a new
version, never editing a published one.

Each set says whether it is served online (``online``) and names its gold table (``table``), so
every consumer starts from the set: the gold job writes ``fs.table``, training reads it, the
streaming job folds the inputs of every online set into each profile (``FeatureUnion``) and
serving computes any online set's features from that profile. ``registry`` checks, at import,
that the sets agree on every input they share: one profile and one ``gold.player_daily`` hold
each input once, so two definitions of one name could not both be right.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from features.contract import EVENT_TYPES
from features.properties import PROPERTY_TYPES
from features.windows import Resolution, Window

Op = Literal["count", "sum", "avg", "min", "max", "first", "last", "distinct"]
OPS: tuple[str, ...] = ("count", "sum", "avg", "min", "max", "first", "last", "distinct")
NUMERIC_OPS = frozenset({"sum", "avg", "min", "max"})
"""Operations that need a numeric (or boolean, read as 1.0/0.0) property."""
EXTENDED_OPS = frozenset({"min", "first", "last", "distinct"})
"""Operations whose partial aggregate is beyond ``[n, sum, max]``: a bucket any of them reads
keeps the extended cell (``features.profile_state.CELL``)."""
Buckets = dict[str, tuple[tuple[str, ...], str | None]]
"""Partial aggregates per tile: input → (event types, value property or ``None`` for a count)."""
GOLD_TABLE = re.compile(r"^gold\.[a-z][a-z0-9_]{0,127}$")
WindowSpec = int | str | Window
"""How a window is written: ``7`` (days), ``"15m"``, ``"1h"``, ``"7d"``, ``"lifetime"``."""


@dataclass(frozen=True)
class Aggregation:
    """``op`` over ``value`` (or over events, for count) of ``event_types``, per window.

    ``count`` counts events; ``sum``, ``avg``, ``min``
    and ``max`` read a numeric property; ``first`` and ``last`` give the value of the earliest
    and latest event in the window (on equal times, the smallest and the largest value, so the
    answer never depends on arrival order), and ``distinct`` counts distinct values exactly;
    these three read any property, strings included."""

    input: str
    event_types: tuple[str, ...]
    op: Op
    windows: tuple[WindowSpec, ...]
    value: str | None = None

    def __post_init__(self) -> None:
        unknown = set(self.event_types) - set(EVENT_TYPES)
        if unknown:
            raise ValueError(f"aggregation '{self.input}': unknown event types {sorted(unknown)}")
        if self.op not in OPS:
            raise ValueError(f"aggregation '{self.input}': unknown operation '{self.op}' (known: {', '.join(OPS)})")
        if self.op == "count":
            if self.value is not None:
                raise ValueError(f"aggregation '{self.input}': count takes no value")
        elif self.value not in PROPERTY_TYPES:
            raise ValueError(f"aggregation '{self.input}': op {self.op} needs a known property")
        elif self.op in NUMERIC_OPS and PROPERTY_TYPES[self.value] == "string":
            raise ValueError(f"aggregation '{self.input}': op {self.op} needs a numeric property, {self.value} is not")
        if not self.windows:
            raise ValueError(f"aggregation '{self.input}': give at least one window")
        try:
            windows = tuple(Window.parse(w) for w in self.windows)
        except ValueError as exc:
            raise ValueError(f"aggregation '{self.input}': {exc}") from None
        if len({w.label for w in windows}) != len(windows):
            raise ValueError(f"aggregation '{self.input}': a window is listed twice")
        object.__setattr__(self, "windows", windows)

    @property
    def bucket(self) -> str:
        """Name of the partial aggregate this reads (shared by aggregations of one input)."""
        return self.input

    @property
    def parsed_windows(self) -> tuple[Window, ...]:
        return self.windows  # type: ignore[return-value]  # parsed in __post_init__

    def output_name(self, window: WindowSpec) -> str:
        return f"{self.input}_{self.op}_{Window.parse(window).label}"


RecencyUnit = Literal["days", "minutes"]


@dataclass(frozen=True)
class Recency:
    """Days (or minutes) since the latest event of ``event_types`` as of T (``None`` if there
    is none): ``days_since_last_{input}`` / ``minutes_since_last_{input}``."""

    input: str
    event_types: tuple[str, ...]
    unit: RecencyUnit = "days"

    def __post_init__(self) -> None:
        if self.unit not in ("days", "minutes"):
            raise ValueError(f"recency '{self.input}': unit must be days or minutes, not {self.unit!r}")

    @property
    def output_name(self) -> str:
        return f"{self.unit}_since_last_{self.input}"


@dataclass(frozen=True)
class Ratio:
    """A trend or rate from two features of the same set: ``(numerator + prior_numerator) /
    (denominator + prior_denominator) * scale`` (``None`` when a part is missing or the
    denominator plus its prior is 0), e.g. 1-day sessions against the 7-day daily average.
    Computed after the aggregations, alike in batch, streaming and serving.

    The priors make a *shrunk* rate, the posterior mean of a Beta-Poisson style estimate: a
    player with no purchases in 2 sessions and one with none in 60 both have a raw rate of 0,
    but the second is far surer to be a non-buyer; with a prior of 0.3 purchases in 20 sessions
    the first scores 0.014 and the second 0.004, and a thin history stays near the population's
    rate instead of at an extreme."""

    name: str
    numerator: str
    denominator: str
    scale: float = 1.0
    prior_numerator: float = 0.0
    prior_denominator: float = 0.0

    def __post_init__(self) -> None:
        if self.prior_numerator < 0 or self.prior_denominator < 0:
            raise ValueError(f"ratio {self.name}: priors are pseudo-counts, never negative")

    @property
    def output_name(self) -> str:
        return self.name

    def value(self, numerator: float | int | None, denominator: float | int | None) -> float | None:
        if numerator is None or denominator is None:
            return None
        den = denominator + self.prior_denominator
        if not den:
            return None
        return (numerator + self.prior_numerator) / den * self.scale


@dataclass(frozen=True)
class BucketPlan:
    """How one input is folded: its source, the resolutions its windows read, and whether its
    cells carry the extended parts (min, first, last, distinct)."""

    name: str
    event_types: frozenset[str]
    value: str | None
    resolutions: frozenset[Resolution]
    extended: bool


def _bucket_plans(aggregations: Iterable[Aggregation]) -> tuple[BucketPlan, ...]:
    sources: dict[str, tuple[tuple[str, ...], str | None]] = {}
    resolutions: dict[str, set[Resolution]] = {}
    extended: dict[str, bool] = {}
    for agg in aggregations:
        sources.setdefault(agg.bucket, (agg.event_types, agg.value))
        resolutions.setdefault(agg.bucket, set()).update(w.resolution for w in agg.parsed_windows)
        extended[agg.bucket] = extended.get(agg.bucket, False) or agg.op in EXTENDED_OPS
    return tuple(
        BucketPlan(name, frozenset(types), value, frozenset(resolutions[name]), extended[name])
        for name, (types, value) in sources.items()
    )


def _longest_tile_minutes(aggregations: Iterable[Aggregation]) -> int:
    return max((w.minutes for a in aggregations for w in a.parsed_windows if w.resolution == "tile"), default=0)


@dataclass(frozen=True)
class FeatureSet:
    """A versioned list of aggregations and recencies, served online or not, with its gold table."""

    name: str
    version: int
    aggregations: tuple[Aggregation, ...]
    recencies: tuple[Recency, ...] = field(default_factory=tuple)
    ratios: tuple[Ratio, ...] = field(default_factory=tuple)
    """Features derived from two of the set's aggregations (trends, rates), listed last."""
    online: bool = True
    """Whether serving computes this set from online profiles: the streaming job folds the
    inputs of every online set, and a model on a set that is not online is refused, since its
    buckets would never be filled. An offline set still gets its gold table for analysts."""
    gold_table: str | None = None
    """The gold table of the set's day-end snapshots when it is not ``gold.{full_name}``: only
    for a set whose table was named before the rule (existing lakes keep their table)."""

    def __post_init__(self) -> None:
        buckets: Buckets = {}
        for agg in self.aggregations:
            seen = buckets.setdefault(agg.bucket, (agg.event_types, agg.value))
            if seen != (agg.event_types, agg.value):
                raise ValueError(f"input '{agg.bucket}' is defined twice with different sources")
        names = self.feature_names
        if len(names) != len(set(names)):
            raise ValueError(f"feature set {self.full_name} has duplicate feature names")
        numeric = {
            a.output_name(w)
            for a in self.aggregations
            if not (a.op in ("first", "last") and a.value is not None and PROPERTY_TYPES[a.value] == "string")
            for w in a.windows
        }
        for ratio in self.ratios:
            for part in (ratio.numerator, ratio.denominator):
                if part not in numeric:
                    raise ValueError(
                        f"feature set {self.full_name}: ratio {ratio.name} reads {part}, "
                        "not a numeric aggregation of the set"
                    )
        if self.gold_table is not None and not GOLD_TABLE.match(self.gold_table):
            raise ValueError(
                f"feature set {self.full_name}: gold_table '{self.gold_table}' must be gold.<lower-case name>"
            )

    @property
    def full_name(self) -> str:
        return f"{self.name}_v{self.version}"

    @property
    def table(self) -> str:
        """The gold table holding the set at every day end (``gold.{full_name}`` unless
        ``gold_table`` says otherwise); a new version is a new table, so a model trained on
        the old one keeps reading what it was trained on."""
        return self.gold_table or f"gold.{self.full_name}"

    @property
    def feature_names(self) -> list[str]:
        out = [a.output_name(w) for a in self.aggregations for w in a.windows]
        return out + [r.output_name for r in self.recencies] + [r.output_name for r in self.ratios]

    def longest_window(self) -> tuple[int, str]:
        """``(days, feature name)`` of the set's longest day window: how many days of day
        tiles online state must keep (``(0, "")`` when it has none; minute tiles are kept for
        the longest minute window, lifetime cells for ever)."""
        return max(
            ((w.span_days, a.output_name(w)) for a in self.aggregations for w in a.parsed_windows if w.span_days),
            default=(0, ""),
        )

    @property
    def max_window_days(self) -> int:
        return self.longest_window()[0]

    def buckets(self) -> Buckets:
        """Partial aggregates needed: input → (event types, value property)."""
        return {a.bucket: (a.event_types, a.value) for a in self.aggregations}

    @cached_property
    def fold_plan(self) -> tuple[BucketPlan, ...]:
        """Each input once, as ``ProfileState.apply`` folds it."""
        return _bucket_plans(self.aggregations)

    @cached_property
    def tile_minutes(self) -> int:
        """The longest minute or hour window: how long online state keeps 5-minute tiles."""
        return _longest_tile_minutes(self.aggregations)


@dataclass(frozen=True)
class FeatureUnion:
    """The inputs of several feature sets, each once: what one profile folds so that every
    one of ``sets`` can be computed from it (``ProfileState.apply`` takes it like a set).

    Sets may share an input only with the same source (event types and value); a recency input
    likewise. Otherwise the union is refused naming both sets and the input."""

    sets: tuple[FeatureSet, ...]
    _buckets: Buckets = field(init=False, repr=False, compare=False)
    _recencies: tuple[Recency, ...] = field(init=False, repr=False, compare=False)
    fold_plan: tuple[BucketPlan, ...] = field(init=False, repr=False, compare=False)
    """Every set's inputs, each once, with the resolutions any set reads them at."""
    tile_minutes: int = field(init=False, repr=False, compare=False)
    """The longest minute or hour window of any set."""

    def __post_init__(self) -> None:
        if not self.sets:
            raise ValueError("a feature union needs at least one feature set")
        buckets: dict[str, tuple[FeatureSet, tuple[tuple[str, ...], str | None]]] = {}
        recencies: dict[str, tuple[FeatureSet, Recency]] = {}
        for fs in self.sets:
            for name, source in fs.buckets().items():
                first, seen = buckets.setdefault(name, (fs, source))
                if seen != source:
                    raise ValueError(_conflict("input", name, first, fs))
            for rec in fs.recencies:
                first, seen_rec = recencies.setdefault(rec.input, (fs, rec))
                if seen_rec.event_types != rec.event_types:
                    raise ValueError(_conflict("recency input", rec.input, first, fs))
        # computed once: the streaming fold asks for them on every event
        object.__setattr__(self, "_buckets", {name: source for name, (_, source) in buckets.items()})
        object.__setattr__(self, "_recencies", tuple(rec for _, rec in recencies.values()))
        aggregations = [a for fs in self.sets for a in fs.aggregations]
        object.__setattr__(self, "fold_plan", _bucket_plans(aggregations))
        object.__setattr__(self, "tile_minutes", _longest_tile_minutes(aggregations))

    def buckets(self) -> Buckets:
        """Every set's partial aggregates, each input once."""
        return self._buckets

    @property
    def recencies(self) -> tuple[Recency, ...]:
        """Every set's recencies, each input once."""
        return self._recencies

    @property
    def full_names(self) -> tuple[str, ...]:
        return tuple(fs.full_name for fs in self.sets)


def _conflict(kind: str, name: str, first: FeatureSet, second: FeatureSet) -> str:
    return (
        f"{kind} '{name}' is defined differently by feature sets {first.full_name} and {second.full_name}: "
        f"one profile and one gold.player_daily hold each input once; rename it in one of them"
    )


def registry(*sets: FeatureSet) -> dict[str, FeatureSet]:
    """``full_name`` → set, refusing two sets of one name or one table, and sets that define a
    shared input differently (``FeatureUnion``): checked when the module is imported."""
    out: dict[str, FeatureSet] = {}
    tables: dict[str, str] = {}
    for fs in sets:
        if fs.full_name in out:
            raise ValueError(f"feature set {fs.full_name} is defined twice")
        if fs.table in tables:
            raise ValueError(f"feature sets {tables[fs.table]} and {fs.full_name} both write {fs.table}")
        out[fs.full_name] = fs
        tables[fs.table] = fs.full_name
    if sets:
        FeatureUnion(tuple(sets))
    return out


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
    online=True,
    gold_table="gold.player_features_v1",  # named before tables derived from the set: lakes keep it
)

PLAYER_ACTIVITY_V2 = FeatureSet(
    name="player_activity",
    version=2,
    aggregations=(
        # what the player is doing right now: minutes to hours
        Aggregation("session", ("session_start",), "count", ("1h", 1, 7, 30)),
        Aggregation("store_view", ("store_view",), "count", ("15m", "1h", 1, 7)),
        Aggregation("offer_shown", ("offer_shown",), "count", ("1h", 1, 7)),
        Aggregation("match", ("match_end",), "count", ("1h", 1, 7)),
        Aggregation("match_won", ("match_end",), "avg", (1, 7), value="won"),
        Aggregation("match_won", ("match_end",), "last", ("lifetime",), value="won"),
        Aggregation("session_duration_s", ("session_end",), "sum", (1, 7), value="duration_s"),
        Aggregation("session_duration_s", ("session_end",), "avg", (7,), value="duration_s"),
        Aggregation("level", ("level_up",), "last", ("lifetime",), value="level"),
        Aggregation("level_up", ("level_up",), "count", (7,)),
        # spending, recent and over the player's whole life
        Aggregation("purchase", ("purchase",), "count", (7, 30, "lifetime")),
        Aggregation("purchase_price_usd", ("purchase",), "sum", (30, "lifetime"), value="price_usd"),
        Aggregation("purchase_price_usd", ("purchase",), "max", ("lifetime",), value="price_usd"),
        Aggregation("purchase_price_usd", ("purchase",), "last", ("lifetime",), value="price_usd"),
        Aggregation("purchase_sku", ("purchase",), "distinct", (30,), value="sku"),
        Aggregation("currency_earn_amount", ("currency_earn",), "sum", (7,), value="amount"),
        Aggregation("currency_spend_amount", ("currency_spend",), "sum", (1, 7), value="amount"),
        Aggregation("ad_view", ("ad_view",), "count", (1, 7)),
        Aggregation("event", EVENT_TYPES, "count", ("lifetime",)),
    ),
    recencies=(
        Recency("event", EVENT_TYPES),
        Recency("event", EVENT_TYPES, unit="minutes"),
        Recency("purchase", ("purchase",)),
        Recency("store_view", ("store_view",), unit="minutes"),
    ),
    ratios=(
        # today against the last week's daily average: > 1 is a player warming up
        Ratio("session_trend_1d_7d", "session_count_1d", "session_count_7d", scale=7.0),
        Ratio("store_view_trend_1d_7d", "store_view_count_1d", "store_view_count_7d", scale=7.0),
        Ratio("spend_trend_1d_7d", "currency_spend_amount_sum_1d", "currency_spend_amount_sum_7d", scale=7.0),
        Ratio("purchase_per_session_30d", "purchase_count_30d", "session_count_30d"),
    ),
    online=True,
)

PLAYER_ACTIVITY_V3 = FeatureSet(
    name="player_activity",
    version=3,
    aggregations=(
        # v2's features, plus a 3-day and a lifetime session count and lifetime store views
        Aggregation("session", ("session_start",), "count", ("1h", 1, 3, 7, 30, "lifetime")),
        Aggregation("store_view", ("store_view",), "count", ("15m", "1h", 1, 7, "lifetime")),
        *(a for a in PLAYER_ACTIVITY_V2.aggregations if a.input not in ("session", "store_view")),
    ),
    recencies=PLAYER_ACTIVITY_V2.recencies,
    ratios=(
        *PLAYER_ACTIVITY_V2.ratios,
        # A player's spending propensity from a thin history (most players never buy): lifetime
        # rates shrunk towards the population's by pseudo-counts, so 0 purchases in 2 sessions
        # and 0 in 60 are told apart, and so are one $99.99 purchase and ten.
        Ratio(
            "purchase_per_session_lifetime_shrunk",
            "purchase_count_lifetime",
            "session_count_lifetime",
            prior_numerator=0.5,
            prior_denominator=20.0,
        ),
        Ratio(
            "store_view_per_session_lifetime_shrunk",
            "store_view_count_lifetime",
            "session_count_lifetime",
            prior_numerator=3.0,
            prior_denominator=10.0,
        ),
        Ratio(
            "purchase_price_usd_per_purchase_lifetime_shrunk",
            "purchase_price_usd_sum_lifetime",
            "purchase_count_lifetime",
            prior_numerator=10.0,
            prior_denominator=1.0,
        ),
    ),
    online=True,
)
"""v2 plus what estimates a player's spending propensity and recent activity: ``store_offer``'s set."""

FEATURE_SETS: dict[str, FeatureSet] = registry(PLAYER_ACTIVITY_V1, PLAYER_ACTIVITY_V2, PLAYER_ACTIVITY_V3)
"""Every feature set this code defines, by ``full_name``."""


def feature_set(full_name: str) -> FeatureSet:
    try:
        return FEATURE_SETS[full_name]
    except KeyError:
        raise KeyError(f"unknown feature set '{full_name}' (known: {sorted(FEATURE_SETS)})") from None


def online_feature_sets(sets: Mapping[str, FeatureSet] | Iterable[FeatureSet] | None = None) -> tuple[FeatureSet, ...]:
    """The sets served online, of ``sets`` (default: every set this code defines)."""
    chosen = FEATURE_SETS if sets is None else sets
    values = chosen.values() if isinstance(chosen, Mapping) else chosen
    return tuple(fs for fs in values if fs.online)


def online_union(sets: Mapping[str, FeatureSet] | Iterable[FeatureSet] | None = None) -> FeatureUnion:
    """What the streaming job folds into every profile: the union of the online sets' inputs."""
    return FeatureUnion(online_feature_sets(sets))


def longest_online_window(
    sets: Mapping[str, FeatureSet] | Iterable[FeatureSet] | None = None,
) -> tuple[int, FeatureSet, str] | None:
    """``(days, set, feature)`` of the longest window of any online set; ``None`` without one.

    Online profiles keep ``streaming.state_days`` days of buckets: fewer than this and serving
    would compute that window from a truncated history, silently."""
    longest = None
    for fs in online_feature_sets(sets):
        days, name = fs.longest_window()
        if longest is None or days > longest[0]:
            longest = (days, fs, name)
    return longest


def retention_problem(
    state_days: int, sets: Mapping[str, FeatureSet] | Iterable[FeatureSet] | None = None
) -> str | None:
    """Why online state kept for ``state_days`` days cannot serve the online ``sets`` (default:
    every set this code defines), naming the set and its window; ``None`` when it can."""
    longest = longest_online_window(sets)
    if longest is None or state_days >= longest[0]:
        return None
    days, fs, feature = longest
    return (
        f"is {state_days}, shorter than the {days}-day window of online feature set {fs.full_name} "
        f"({feature}): profiles would drop days that window reads; set streaming.state_days to at least {days}"
    )
