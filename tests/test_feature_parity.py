"""Batch = streaming = the definitions: gold's features at each day end equal the profile fold's.

A fortnight of messy events for a few players (every event type, properties in odd but valid
forms, skewed device clocks, late arrivals, exact and re-sent duplicates, rows that break quality
rules, bursts within minutes at day ends, equal timestamps: ``parity_sets.messy_events``) goes
through bronze → silver → gold in several runs. The same stream records, decoded as the
streaming job decodes them, are folded per player into ``ProfileState`` with only the events up
to each day end; ``ProfileState.features`` must then equal gold's row for that player and day,
and both must equal ``parity_sets.expected_features`` read off the events. That holds for every
feature set this code defines and for ``PARITY_SET``, which has every operation at every window
resolution. A player is the pair ``(game_id, player_id)``: the same ids play in two games.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import pytest
from event_factory import ms, put_events
from parity_sets import PARITY_SET, assert_same_features, clean_events, corrected_ms, expected_features, messy_events

from features.definitions import FEATURE_SETS, FeatureSet
from features.profile_state import DAY_MS, ProfileState, utc_date
from features.streams import decode_batch, open_stream
from pipelines import bronze, gold, silver
from pipelines.session import table_path

pytestmark = pytest.mark.spark

FIRST_DAY = date(2026, 11, 1)
DAYS = 14
PLAYERS = (("alpha", "p1"), ("alpha", "p2"), ("beta", "p1"), ("beta", "p2"))
SETS = (*FEATURE_SETS.values(), PARITY_SET)


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


def _applied_days(events: list[dict[str, Any]]) -> list[date]:
    """UTC days of the events the fold applies (clean, first copy), i.e. the days silver holds."""
    return [utc_date(t) for t, _ in clean_events(events)]


def _folded_features(
    fs: FeatureSet, events: list[dict[str, Any]], first_day: date, last_day: date
) -> dict[date, dict[str, Any]]:
    """Features at each day end, folding only the events up to that moment into a fresh state."""
    out = {}
    day = first_day
    while day <= last_day:
        as_of = ms(f"{day}T00:00:00") + DAY_MS - 1
        state = ProfileState()
        for e in events:
            if corrected_ms(e) <= as_of:
                state.apply(fs, e, corrected_ms(e), 10**6)
        got = state.features(fs, as_of)
        assert_same_features(
            fs, got, expected_features(fs, [(t, c) for t, c in clean_events(events) if t <= as_of], as_of), day
        )
        out[day] = got
        day += timedelta(days=1)
    return out


@pytest.fixture(scope="module")
def line(spark, tmp_path_factory) -> dict[str, Any]:
    """The events through bronze → silver → gold once for the module: every set's day-end rows
    (the registered sets from the tables gold wrote, the parity set from the same gold
    functions) and the stream's events per player."""
    from features.config import load_settings

    settings = load_settings("local", tmp_path_factory.mktemp("parity") / "var")
    events = messy_events(PLAYERS, FIRST_DAY, DAYS)
    waves = [
        events[: len(events) // 3],
        events[len(events) // 3 : 2 * len(events) // 3],
        events[2 * len(events) // 3 :],
    ]
    written: dict[str, int] = defaultdict(int)
    for wave in waves:  # several runs: duplicates and late data cross micro-batches and runs
        put_events(settings, wave, per_record=5)
        for name, rows in {**bronze.run(spark, settings), **silver.run(spark, settings, validate=False)}.items():
            written[name] += rows
    gold.run(spark, settings)
    tables = {fs.full_name: table_path(settings, fs.table) for fs in FEATURE_SETS.values()}
    frames = {name: spark.read.format("delta").load(path) for name, path in tables.items()}
    silver_rows = spark.read.format("delta").load(table_path(settings, gold.SOURCE_TABLE))
    daily = gold.player_daily(silver_rows, [PARITY_SET])
    frames[PARITY_SET.full_name] = gold.features_at_day_end(spark, daily, PARITY_SET)
    batch = {
        name: {(r["game_id"], r["player_id"], r["as_of_date"]): r.asDict() for r in frame.collect()}
        for name, frame in frames.items()
    }
    return {"written": dict(written), "batch": batch, "streamed": _streamed_events(settings)}


def test_the_data_holds_what_the_parity_must_survive(line):
    written = line["written"]
    assert written["silver.quarantine"] > 0, "the data must include rows silver quarantines"
    assert written["silver.player_events"] + written["silver.quarantine"] < written["bronze.player_events"]


@pytest.mark.parametrize("fs", SETS, ids=lambda fs: fs.full_name)
def test_batch_features_at_each_day_end_equal_the_streaming_fold(line, fs):
    batch = line["batch"][fs.full_name]
    streamed = line["streamed"]
    days = {player: _applied_days(evs) for player, evs in streamed.items()}
    last_day = max(d for ds in days.values() for d in ds)
    expected = {
        (*player, day): values
        for player, evs in streamed.items()
        if days[player]
        for day, values in _folded_features(fs, evs, min(days[player]), last_day).items()
    }

    assert sorted(batch) == sorted(expected)
    for key, want in expected.items():
        assert_same_features(fs, {name: batch[key][name] for name in fs.feature_names}, want, key)
