"""Silver's expectations, declared once: the row-level quarantine and the GX suite both come from here.

Each expectation is a small value object. ``pipelines.expressions.quarantine_reason`` compiles
the row expectations to one Spark column (the first one a row breaks, else null), which splits
every micro-batch into the rows silver commits and the rows it quarantines;
``pipelines.quality`` turns the same objects into Great Expectations expectations that validate
what is about to be committed; ``quarantine_reason`` below evaluates them in plain Python for
the streaming fold (``features.profile_state``). A range declared here therefore holds in all
three places, or in none. A row's ``quarantine_reason`` starts with the expectation it broke,
written as GX names it, so a quarantined row and a GX report point at the same line.

Nothing here imports Spark or Great Expectations.

The envelope expectations restate the collector's contract (``features.contract.Event``): every
event on the stream has passed it, so on stream input they never fail, which is why the
streaming fold (which sees only ``event_id``, ``event_type`` and ``properties``) checks lateness
and properties only and still skips exactly the rows silver quarantines. Silver checks them all
because bronze is a table anyone with write access can append to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

from features.contract import EVENT_TYPES, PLATFORMS
from features.properties import PROPERTY_TYPES, property_value

DAY_MS = 86_400_000
DEFAULT_LATE_AFTER_DAYS = 7.0
"""Events received more than this long after their (skew-corrected) time are quarantined."""
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def _number(v: float) -> str:
    return repr(float(v))


@dataclass(frozen=True)
class RowExpectation:
    """A check of one column on every row (``event_type`` None) or on the rows of one event type.

    ``column`` is a silver column: an envelope field or a typed property (``PROPERTY_TYPES``).
    """

    column: str
    event_type: str | None = None

    gx_type: ClassVar[str] = ""
    """The Great Expectations expectation this is, in GX's snake-case naming."""

    def _args(self) -> list[str]:
        return [f"column={self.column}"]

    def _meaning(self) -> str:
        raise NotImplementedError

    @property
    def on_property(self) -> bool:
        return self.column in PROPERTY_TYPES

    @property
    def reason(self) -> str:
        """What a row breaking this is quarantined with: the expectation, then what it means."""
        args = self._args() + ([f"row_condition=event_type == '{self.event_type}'"] if self.event_type else [])
        scope = f"{self.event_type} events" if self.event_type else "every event"
        where = f"properties.{self.column}" if self.on_property else self.column
        return f"{self.gx_type}({', '.join(args)}): {scope}: {where} {self._meaning()}"

    def applies_to(self, event_type: str | None) -> bool:
        return self.event_type is None or event_type == self.event_type

    def broken_by(self, value: Any) -> bool:
        """Whether a row of an event type this applies to, holding ``value`` in ``column``, breaks it."""
        raise NotImplementedError


@dataclass(frozen=True)
class NotNull(RowExpectation):
    """The column is present (for a property: present and of its declared type)."""

    gx_type: ClassVar[str] = "expect_column_values_to_not_be_null"

    def _meaning(self) -> str:
        kind = PROPERTY_TYPES.get(self.column)
        return f"must be a {kind}" if kind else "must be present"

    def broken_by(self, value: Any) -> bool:
        return value is None


@dataclass(frozen=True)
class Between(RowExpectation):
    """Where present, the value lies in ``[low, high]`` (absent values are ``NotNull``'s business, as in GX)."""

    low: float = float("-inf")
    high: float = float("inf")
    gx_type: ClassVar[str] = "expect_column_values_to_be_between"

    def _args(self) -> list[str]:
        return [*super()._args(), f"min_value={_number(self.low)}", f"max_value={_number(self.high)}"]

    def _meaning(self) -> str:
        return f"must lie in [{_number(self.low)}, {_number(self.high)}]"

    def broken_by(self, value: Any) -> bool:
        return value is not None and not self.low <= value <= self.high


@dataclass(frozen=True)
class InSet(RowExpectation):
    """Where present, the value is one of ``values``."""

    values: tuple[str, ...] = ()
    gx_type: ClassVar[str] = "expect_column_values_to_be_in_set"

    def _meaning(self) -> str:
        return f"must be one of {len(self.values)} known values"

    def broken_by(self, value: Any) -> bool:
        return value is not None and value not in self.values


@dataclass(frozen=True)
class MatchesRegex(RowExpectation):
    """Where present, the value matches ``pattern`` (anchor it: Spark's ``rlike`` searches)."""

    pattern: str = ""
    gx_type: ClassVar[str] = "expect_column_values_to_match_regex"

    def _meaning(self) -> str:
        return f"must match {self.pattern}"

    def broken_by(self, value: Any) -> bool:
        return value is not None and re.search(self.pattern, value) is None


@dataclass(frozen=True)
class ArrivedInTime:
    """``received_at - event_time`` (the skew-corrected time) is at most ``late_after_days``.

    An event later than that would rewrite a day whose features were computed, served and
    trained on long ago; it is quarantined instead. Later events within the horizon land in
    their own (corrected) ``event_date``.
    """

    late_after_days: float = DEFAULT_LATE_AFTER_DAYS
    gx_type: ClassVar[str] = "expect_column_values_to_be_null"

    @property
    def late_after_ms(self) -> int:
        return round(self.late_after_days * DAY_MS)

    @property
    def reason(self) -> str:
        days = f"{self.late_after_days:g}"
        return (
            f"{self.gx_type}(column=event_id, row_condition=received_at - event_time > {days} days): "
            f"too late: received more than "
            f"{days} days after its event_time (silver.late_after_days)"
        )

    def broken_by(self, late_by_ms: int) -> bool:
        """Whether an event received ``late_by_ms`` after its corrected time is too late."""
        return late_by_ms > self.late_after_ms


@dataclass(frozen=True)
class UniqueTogether:
    """No two committed rows share these columns' values (silver keeps the copy received first)."""

    columns: tuple[str, ...]
    gx_type: ClassVar[str] = "expect_compound_columns_to_be_unique"

    @property
    def reason(self) -> str:
        return f"{self.gx_type}(column_list={list(self.columns)}): one row per ({', '.join(self.columns)})"


ENVELOPE: tuple[RowExpectation, ...] = (
    *(NotNull(c) for c in ("event_id", "event_type", "player_id", "game_id", "event_time", "received_at")),
    MatchesRegex("event_id", pattern=UUID_PATTERN),
    InSet("event_type", values=tuple(EVENT_TYPES)),
    InSet("platform", values=tuple(PLATFORMS)),
)
"""The contract's envelope rules, restated for what silver commits."""

PROPERTIES: tuple[RowExpectation, ...] = (
    NotNull("sku", "purchase"),
    NotNull("price_usd", "purchase"),
    NotNull("offer_id", "offer_shown"),
    NotNull("level", "level_up"),
    Between("level", "level_up", low=1.0, high=100_000.0),
    NotNull("won", "match_end"),
    NotNull("amount", "currency_earn"),
    Between("amount", "currency_earn", low=0.0, high=1e9),
    NotNull("amount", "currency_spend"),
    Between("amount", "currency_spend", low=0.0, high=1e9),
    # on every event that carries a price, whatever its type (a store_view's included)
    Between("price_usd", low=0.0, high=1000.0),
)
"""What each event type must carry in ``properties``, and the ranges of values wherever they occur."""

TABLE: tuple[UniqueTogether, ...] = (UniqueTogether(("game_id", "event_id")),)
"""Expectations on the rows committed together rather than on each row (silver's dedup keeps them)."""


def row_expectations(late_after_days: float = DEFAULT_LATE_AFTER_DAYS) -> tuple[RowExpectation | ArrivedInTime, ...]:
    """Every row expectation, in the order silver names the first one a row breaks."""
    return (*ENVELOPE, ArrivedInTime(late_after_days), *PROPERTIES)


def quarantine_reason(
    event_type: str,
    properties: dict[str, Any],
    *,
    late_by_ms: int | None = None,
    late_after_days: float = DEFAULT_LATE_AFTER_DAYS,
) -> str | None:
    """Why silver quarantines an event that passed the collector's contract, or ``None``.

    ``late_by_ms`` is ``received_at`` minus the corrected event time; ``None`` skips the
    lateness check (for callers that do not know when the event was received).
    """
    for expectation in _checks_for(event_type, late_after_days):
        if isinstance(expectation, ArrivedInTime):
            if late_by_ms is not None and expectation.broken_by(late_by_ms):
                return expectation.reason
        elif expectation.broken_by(property_value(properties, expectation.column)):
            return expectation.reason
    return None


@lru_cache(maxsize=256)
def _checks_for(event_type: str, late_after_days: float) -> tuple[RowExpectation | ArrivedInTime, ...]:
    """The row expectations ``quarantine_reason`` evaluates on one event type, in silver's order:
    the streaming fold checks every event, so the filter by type and by property runs once."""
    return tuple(
        e
        for e in row_expectations(late_after_days)
        if isinstance(e, ArrivedInTime) or (e.on_property and e.applies_to(event_type))
    )
