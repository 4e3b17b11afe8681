"""What the parity tests share: a feature set with every operation at every window resolution,
messy player events, and a reference implementation of the window semantics.

The reference (``expected_features``) computes each feature straight from the list of events
with ``features.windows.covers``, the one-line definition of what a window holds, and the
plainest reading of each operation; batch (gold), streaming (the profile fold) and serving (the
profile API as of the request time) must all agree with it.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from event_factory import event, ms

from features.contract import EVENT_TYPES, corrected_event_time_ms
from features.definitions import Aggregation, FeatureSet, Ratio, Recency
from features.expectations import quarantine_reason
from features.properties import property_value
from features.windows import DAY_MS, MINUTE_MS, covers

WINDOWS = ("15m", "1h", 1, 7, "lifetime")
"""One window of each resolution, and two of the 5-minute one (minutes and hours)."""

PARITY_SET = FeatureSet(
    name="parity_every_op",
    version=1,
    aggregations=(
        Aggregation("store_view", ("store_view",), "count", WINDOWS),
        *(
            Aggregation("coins", ("currency_earn", "currency_spend"), op, WINDOWS, value="amount")
            for op in ("sum", "avg", "min", "max", "first", "last", "distinct")
        ),
        *(Aggregation("won", ("match_end",), op, WINDOWS, value="won") for op in ("avg", "min", "first", "last")),
        *(Aggregation("sku", ("purchase",), op, WINDOWS, value="sku") for op in ("first", "last", "distinct")),
    ),
    recencies=(
        Recency("event", EVENT_TYPES),
        Recency("event", EVENT_TYPES, unit="minutes"),
        Recency("purchase", ("purchase",), unit="minutes"),
    ),
    ratios=(
        Ratio("store_view_trend_1d_7d", "store_view_count_1d", "store_view_count_7d", scale=7.0),
        Ratio("coins_per_view_shrunk", "coins_sum_lifetime", "store_view_count_lifetime", 1.0, 5.0, 2.0),
    ),
    online=False,
)
"""Every operation × every resolution: count, and sum…distinct over a number, first/last/
distinct over a string, avg/first/last over a boolean; recencies in days and minutes; a ratio,
and a ratio shrunk by priors (defined where the raw one is not: no store view yet)."""

HOUR = 3_600_000


def properties(rng: random.Random, event_type: str) -> dict[str, Any]:
    """Valid properties in the forms games really send (numbers as strings, booleans as text)."""
    pick = rng.choice
    return {
        "session_end": lambda: {"duration_s": pick([30, 95.5, "240", " 61.25 ", None])},
        "level_up": lambda: {"level": pick([2, 17, "33", 40.0])},
        "match_end": lambda: {"won": pick([True, False, "true", "false"]), "score": pick([10, "1.5e3"])},
        "store_view": lambda: {"placement": pick(["home", "shop"])},
        "offer_shown": lambda: {"offer_id": pick(["o1", "o2"]), "price_usd": pick([0.99, None])},
        "purchase": lambda: {"sku": pick(["gem", "skin", "pass"]), "price_usd": pick([0.99, "4.99", 19.99, 0, 1000])},
        "currency_earn": lambda: {"amount": pick([5, 12.5, "100", 3])},
        "currency_spend": lambda: {"amount": pick([1, "3.75", 0, 5])},
    }.get(event_type, lambda: {})()


def broken(rng: random.Random) -> tuple[str, dict[str, Any]]:
    """An event that silver quarantines and the fold skips."""
    return rng.choice(
        [
            ("purchase", {"price_usd": 2.99}),
            ("purchase", {"sku": "gem", "price_usd": -1}),
            ("purchase", {"sku": "gem", "price_usd": "1000.01"}),
            ("level_up", {"level": 0}),
            ("match_end", {"won": "yes"}),
            ("currency_spend", {"amount": -5}),
            ("offer_shown", {}),
        ]
    )


def _true_times(rng: random.Random, day_start: int) -> list[int]:
    """When one day's events really happened: a few scattered, a burst within minutes (at the
    day's end half the time, so windows of minutes have something to count at a day end), and
    sometimes two events at the same millisecond (first and last must break the tie alike)."""
    times = [day_start + rng.randrange(DAY_MS) for _ in range(rng.randint(0, 4))]
    burst_start = day_start + (DAY_MS - rng.randrange(40 * MINUTE_MS) if rng.random() < 0.5 else rng.randrange(DAY_MS))
    times += [
        min(burst_start + rng.randrange(25 * MINUTE_MS), day_start + DAY_MS + HOUR) for _ in range(rng.randint(1, 6))
    ]
    if times and rng.random() < 0.3:
        times.append(rng.choice(times))
    return times


def messy_events(players: Iterable[tuple[str, str]], first_day: date, days: int, seed: int = 7) -> list[dict[str, Any]]:
    """Events with their copies, in the order the collector received them: skewed device
    clocks, late deliveries, exact and re-sent duplicates, rows silver quarantines."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for game, player in players:
        for day in range(days):
            if rng.random() < 0.2:
                continue  # a quiet day: the spine must still carry it
            for true_ms in _true_times(rng, ms(f"{first_day + timedelta(days=day)}T00:00:00")):
                event_type = rng.choice(EVENT_TYPES)
                props = properties(rng, event_type)
                if rng.random() < 0.1:
                    event_type, props = broken(rng)
                if rng.random() < 0.3:  # device clock off by up to 3 h: corrected time may change date
                    skew, transit = rng.randint(-3 * HOUR, 3 * HOUR), rng.randint(50, 900)
                    sent = true_ms + rng.randint(0, 2 * HOUR)
                    e = event(
                        event_type,
                        player,
                        true_ms + skew,
                        properties=props,
                        sent_at=sent + skew,
                        received_at=sent + transit,
                        game_id=game,
                    )
                else:  # no sent_at; sometimes delivered a day or two late
                    late = rng.choice([1000, 1000, 1000, 30 * HOUR, 50 * HOUR])
                    e = event(event_type, player, true_ms, properties=props, received_at=true_ms + late, game_id=game)
                out.append(e)
                if rng.random() < 0.05:
                    out.append(dict(e))  # the same batch delivered twice
                if rng.random() < 0.05:  # re-sent later: new sent_at and received_at, same corrected time
                    delay = rng.randint(1000, 20 * HOUR)
                    out.append(
                        {
                            **e,
                            "received_at": e["received_at"] + delay,
                            "sent_at": e["sent_at"] + delay if e["sent_at"] is not None else None,
                        }
                    )
    return sorted(out, key=lambda e: e["received_at"])


def corrected_ms(e: dict[str, Any]) -> int:
    return corrected_event_time_ms(e["event_time"], e.get("sent_at"), e["received_at"])


def clean_events(events: Iterable[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """``(corrected time, event)`` of the events a window may count: the first copy of each
    event id, and none that breaks a quality rule (what silver keeps)."""
    seen: set[str] = set()
    out = []
    for e in events:
        if e["event_id"] in seen or quarantine_reason(e["event_type"], e.get("properties") or {}) is not None:
            continue
        seen.add(e["event_id"])
        out.append((corrected_ms(e), e))
    return out


def expected_features(fs: FeatureSet, events: list[tuple[int, dict[str, Any]]], as_of: int) -> dict[str, Any]:
    """Every feature of ``fs`` as of ``as_of`` from ``clean_events``, by the definitions alone."""
    out: dict[str, Any] = {}
    for agg in fs.aggregations:
        for window in agg.parsed_windows:
            picked = [
                (t, None if agg.value is None else property_value(e.get("properties") or {}, agg.value))
                for t, e in events
                if e["event_type"] in agg.event_types and covers(window, t, as_of)
            ]
            if agg.value is not None:
                picked = [(t, v) for t, v in picked if v is not None]
            out[agg.output_name(window)] = _reference(agg.op, picked)
    for rec in fs.recencies:
        times = [t for t, e in events if e["event_type"] in rec.event_types and t <= as_of]
        unit = DAY_MS if rec.unit == "days" else MINUTE_MS
        out[rec.output_name] = (as_of - max(times)) / unit if times else None
    for ratio in fs.ratios:
        out[ratio.name] = ratio.value(out[ratio.numerator], out[ratio.denominator])
    return out


def _reference(op: str, picked: list[tuple[int, Any]]) -> Any:
    """``op`` over the ``(time, value)`` pairs a window covers, by its plainest reading."""
    values = [v for _, v in picked]
    if op == "count":
        return len(picked)
    if op == "sum":
        return float(sum(values))
    if op == "avg":
        return sum(values) / len(values) if values else None
    if op == "min":
        return min(values, default=None)
    if op == "max":
        return max(values, default=None)
    if op == "first":  # the earliest; on equal times the smallest value
        return min(picked)[1] if picked else None
    if op == "last":
        return max(picked)[1] if picked else None
    assert op == "distinct"
    return len(set(values))


def assert_same_features(fs: FeatureSet, got: dict[str, Any], want: dict[str, Any], where: Any) -> None:
    """Equal feature by feature: the same missing values, numbers to 1e-12 (sums may add in
    another order), strings exactly."""
    import pytest

    names = fs.feature_names
    assert [n for n in names if got[n] is None] == [n for n in names if want[n] is None], where
    numbers = {n: want[n] for n in names if isinstance(want[n], int | float)}
    assert {n: got[n] for n in numbers} == pytest.approx(numbers, rel=1e-12, abs=1e-9), where
    strings = {n: want[n] for n in names if isinstance(want[n], str)}
    assert {n: got[n] for n in strings} == strings, where
