"""Batch = streaming: gold's features at each day end equal what the online profile fold gives.

A fortnight of random events for a few players (every event type, properties in odd but valid
forms, skewed device clocks, late arrivals, exact and re-sent duplicates, rows that break quality
rules) goes through bronze → silver → gold in several runs. The same stream records, decoded as
the streaming job decodes them, are folded per player into ``ProfileState`` with only the events
up to each day end; ``ProfileState.features`` must then equal gold's row for that player and day.
A player is the pair ``(game_id, player_id)``: the same ids play in two games, kept apart.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import pytest
from event_factory import event, ms, put_events

from features.contract import EVENT_TYPES, corrected_event_time_ms
from features.definitions import PLAYER_ACTIVITY_V1
from features.profile_state import DAY_MS, ProfileState, utc_date
from features.streams import decode_batch, open_stream
from pipelines import bronze, gold, silver
from pipelines.session import table_path

pytestmark = pytest.mark.spark

FS = PLAYER_ACTIVITY_V1
FIRST_DAY = date(2026, 11, 1)
DAYS = 14
PLAYERS = (("alpha", "p1"), ("alpha", "p2"), ("beta", "p1"), ("beta", "p2"))
HOUR = 3_600_000


def _properties(rng: random.Random, event_type: str) -> dict[str, Any]:
    """Valid properties in the forms games really send (numbers as strings, booleans as text)."""
    pick = rng.choice
    return {
        "session_end": lambda: {"duration_s": pick([30, 95.5, "240", " 61.25 ", None])},
        "level_up": lambda: {"level": pick([2, 17, "33", 40.0])},
        "match_end": lambda: {"won": pick([True, False, "true", "false"]), "score": pick([10, "1.5e3"])},
        "store_view": lambda: {"placement": "home"},
        "offer_shown": lambda: {"offer_id": pick(["o1", "o2"]), "price_usd": pick([0.99, None])},
        "purchase": lambda: {"sku": pick(["gem", "skin"]), "price_usd": pick([0.99, "4.99", 19.99, 0, 1000])},
        "currency_earn": lambda: {"amount": pick([5, 12.5, "100"])},
        "currency_spend": lambda: {"amount": pick([1, "3.75", 0])},
    }.get(event_type, lambda: {})()


def _broken(rng: random.Random) -> tuple[str, dict[str, Any]]:
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


def _fortnight(seed: int = 7) -> list[dict[str, Any]]:
    """Events with their copies, in the order the collector received them."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for game, player in PLAYERS:
        for day in range(DAYS):
            if rng.random() < 0.2:
                continue  # a quiet day: the spine must still carry it
            for _ in range(rng.randint(1, 7)):
                true_ms = ms(f"{FIRST_DAY + timedelta(days=day)}T00:00:00") + rng.randrange(DAY_MS)
                event_type = rng.choice(EVENT_TYPES)
                props = _properties(rng, event_type)
                if rng.random() < 0.1:
                    event_type, props = _broken(rng)
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


def _streamed_events(settings) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Each player's events as the streaming job sees them: decoded records, in shard order."""
    by_player: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    with open_stream(settings.stream) as stream:
        for shard, latest in stream.latest_positions().items():
            if latest is None:
                continue
            for record in stream.read(shard, None, latest):
                for e in decode_batch(record.data)[1]:
                    by_player[(e["game_id"], e["player_id"])].append(e)
    return by_player


def _corrected_ms(e: dict[str, Any]) -> int:
    return corrected_event_time_ms(e["event_time"], e["sent_at"], e["received_at"])


def _applied_days(events: list[dict[str, Any]]) -> list[date]:
    """UTC days of the events the fold applies (clean, first copy), i.e. the days silver holds."""
    state = ProfileState()
    return [utc_date(_corrected_ms(e)) for e in events if state.apply(FS, e, _corrected_ms(e), 10**6)]


def _folded_features(events: list[dict[str, Any]], first_day: date, last_day: date) -> dict[date, dict[str, Any]]:
    """Features at each day end, folding only the events up to that moment into a fresh state."""
    out = {}
    day = first_day
    while day <= last_day:
        as_of = ms(f"{day}T00:00:00") + DAY_MS - 1
        state = ProfileState()
        for e in events:
            if _corrected_ms(e) <= as_of:
                state.apply(FS, e, _corrected_ms(e), 10**6)
        out[day] = state.features(FS, as_of)
        day += timedelta(days=1)
    return out


def test_batch_features_at_each_day_end_equal_the_streaming_fold(spark, settings):
    events = _fortnight()
    waves = [
        events[: len(events) // 3],
        events[len(events) // 3 : 2 * len(events) // 3],
        events[2 * len(events) // 3 :],
    ]
    written = defaultdict(int)
    for wave in waves:  # several runs: duplicates and late data cross micro-batches and runs
        put_events(settings, wave, per_record=5)
        for name, rows in {**bronze.run(spark, settings), **silver.run(spark, settings, validate=False)}.items():
            written[name] += rows
    gold.run(spark, settings)
    assert written["silver.quarantine"] > 0, "the data must include rows silver quarantines"
    assert written["silver.player_events"] + written["silver.quarantine"] < written["bronze.player_events"]

    batch = {
        (r["game_id"], r["player_id"], r["as_of_date"]): r.asDict()
        for r in spark.read.format("delta").load(table_path(settings, FS.table)).collect()
    }
    streamed = _streamed_events(settings)
    days = {player: _applied_days(evs) for player, evs in streamed.items()}
    last_day = max(d for ds in days.values() for d in ds)
    expected = {
        (*player, day): values
        for player, evs in streamed.items()
        if days[player]
        for day, values in _folded_features(evs, min(days[player]), last_day).items()
    }

    assert sorted(batch) == sorted(expected)
    for key, want in expected.items():
        got = {name: batch[key][name] for name in FS.feature_names}
        assert [n for n in FS.feature_names if got[n] is None] == [n for n in FS.feature_names if want[n] is None], key
        numbers = {n: v for n, v in want.items() if v is not None}
        assert {n: got[n] for n in numbers} == pytest.approx(numbers, rel=1e-12, abs=1e-9), key
