"""The pure parts of ``benchmarks/training_scale.py``: the event generator's shape, the arguments and
the report. Nothing here starts Spark or times anything."""

from __future__ import annotations

import io
import json
import re
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from rich.console import Console

from benchmarks.training_scale import (
    SizeResult,
    Stage,
    build_parser,
    default_players,
    parse_count,
    probe_rounds,
    report,
    scaling_rows,
    shapes,
)
from benchmarks.training_scale_events import SILVER_COLUMNS, Shape, build_world, silver_days
from features.contract import EVENT_TYPES, PLATFORMS
from features.expectations import UUID_PATTERN
from features.properties import PROPERTY_TYPES, property_value, quarantine_reason

FIRST_DAY = date(2026, 11, 1)


@pytest.fixture(scope="module")
def days() -> list[pa.Table]:
    return list(silver_days(build_world(Shape(events=20_000, players=120, days=10, seed=3), FIRST_DAY)))


def test_the_generator_makes_exactly_the_events_asked_for_in_silvers_columns(days: list[pa.Table]) -> None:
    assert sum(t.num_rows for t in days) == 20_000
    expected = pa.schema([pa.field(name, kind) for name, kind in SILVER_COLUMNS])
    assert all(t.schema == expected for t in days)
    # the typed property columns are silver's, by name
    assert set(PROPERTY_TYPES) <= {name for name, _ in SILVER_COLUMNS}


def test_each_table_is_one_day_in_order_and_events_fall_on_their_date(days: list[pa.Table]) -> None:
    dates = [set(t.column("event_date").to_pylist()) for t in days]
    assert all(len(d) == 1 for d in dates)
    assert [next(iter(d)) for d in dates] == sorted(next(iter(d)) for d in dates)
    for t in days:
        on_date = pc.equal(pc.cast(t.column("event_time"), pa.date32()), t.column("event_date"))
        assert pc.all(on_date).as_py()


def test_events_are_shaped_like_the_simulators_and_would_pass_silvers_expectations(days: list[pa.Table]) -> None:
    rows = pa.concat_tables(days).slice(0, 2_000).to_pylist()
    kinds = {r["event_type"] for r in rows}
    assert kinds <= set(EVENT_TYPES) and {"purchase", "store_view", "session_start", "match_end"} <= kinds
    for r in rows:
        assert re.fullmatch(UUID_PATTERN, r["event_id"]) and r["platform"] in PLATFORMS
        props = json.loads(r["properties"])
        assert quarantine_reason(r["event_type"], props) is None, r
        for name in PROPERTY_TYPES:  # the typed columns are what silver would parse from the JSON
            assert r[name] == property_value(props, name), (name, r)
    assert len({r["event_id"] for r in rows}) == len(rows)


def test_purchases_follow_the_spend_trait_so_the_label_is_learnable() -> None:
    world = build_world(Shape(events=60_000, players=400, days=10, seed=5), FIRST_DAY)
    ev = world.events
    buys = np.bincount(ev.session_player[ev.session[ev.kind == 4]], minlength=400)
    spend = world.players.spend
    assert 0 < (buys > 0).mean() < 0.9
    assert spend[buys > 0].mean() > spend[buys == 0].mean() + 0.3


def test_too_few_events_for_the_sessions_is_refused_naming_the_way_out() -> None:
    with pytest.raises(ValueError, match="fewer players or more events"):
        build_world(Shape(events=100, players=50, days=10), FIRST_DAY)


def test_counts_and_default_sizes() -> None:
    assert [parse_count(t) for t in ("100k", "1M", "10M", "2500", "1.5M")] == [
        100_000,
        1_000_000,
        10_000_000,
        2_500,
        1_500_000,
    ]
    assert default_players(10_000_000, 30) == 45_455  # 22 training rows a player → ~1M rows
    args = build_parser().parse_args([])
    assert shapes(args) == [Shape(1_000_000, 4_545, 30, 7), Shape(10_000_000, 45_455, 30, 7)]
    quick = build_parser().parse_args(["--quick", "--players", "3000", "--days", "20"])
    assert [(s.events, s.players, s.days) for s in shapes(quick)] == [(100_000, 300, 20), (1_000_000, 3_000, 20)]
    assert len(shapes(build_parser().parse_args(["--events", "300k", "--no-baseline"]))) == 1


def _result(events: int, scale: float) -> SizeResult:
    names = ["gold.player_daily", "gold.player_activity_v2", "training set (gold.training_store_offer)"]
    stages = [Stage(n, 10.0 * scale, events, "events", 3.5) for n in names]
    stages += [
        Stage("toPandas + sort", 2.0 * scale, events // 10, "rows", 3.5),
        Stage("GX checks (validate_training_rows)", 1.0 * scale, events // 10, "rows", 3.5),
        Stage("numpy + DMatrix (fit, valid, train)", 1.0 * scale, events // 5, "rows", 3.5),
        Stage("fit_and_measure (incl. conversion)", 11.0 * scale, events // 10, "rows", 3.5),
    ]
    return SizeResult(
        Shape(events, events // 220, 30), {"generate world": 1.0}, stages, events // 10, 0.05, 80, 100, 0.8
    )


def test_the_report_renders_every_table_and_the_two_figures_with_the_load() -> None:
    small, big = _result(100_000, 1.0), _result(1_000_000, 8.0)
    out = io.StringIO()
    report([small, big], Console(file=out, width=200), {"before": "3.10 2.00 1.00", "after": "4.00 3.00 2.00"})
    text = out.getvalue()
    assert "training-set build on 1,000,000 events: 240 s; training on 100,000 rows: 88 s" in text
    assert "load average 3.10 2.00 1.00 before" in text and "Growth 100k → 1M" in text
    assert "180 (100 + 80)" in text  # rounds: the early-stopping fit's and the final one's
    growth = {name: (grew, took) for name, grew, took in scaling_rows(small, big)}
    assert growth["build: daily + features + training set"] == pytest.approx((10.0, 8.0))
    assert growth["boosting, per round"] == pytest.approx((10.0, 8.0))


def test_probe_rounds_add_the_patience_unless_every_round_was_trained() -> None:
    from features.config import load_settings
    from features.model_config import load_model_config

    cfg = load_model_config(load_settings("local", None), "store_offer")
    patience, cap = cfg.training.early_stopping_rounds, cfg.training.num_boost_round
    assert probe_rounds(40, cfg) == 40 + patience
    assert probe_rounds(cap, cfg) == cap
