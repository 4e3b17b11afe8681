"""The pure parts of ``benchmarks/freshness.py``: percentiles, backlog slope, sustained rate and
the parsing of what Spark leaves behind. Nothing here runs a job or times anything."""

from __future__ import annotations

import gzip
import json
import math

import msgspec
import pytest

from benchmarks.freshness_load import PlayerCycle, batch_body
from benchmarks.freshness_stats import (
    PROGRESS_MARKER,
    Step,
    Sustained,
    backlog_grows,
    backlog_slope,
    epoch_ms,
    growth_slope,
    linear_fit,
    parse_offsets,
    parse_progress,
    per_second,
    quantiles,
    rate_target_verdict,
    settled_batch_ms,
    shares,
    sparkline,
    sustained_rate,
    troughs,
    verdict,
)
from features.contract import Event, now_ms


def test_quantiles_are_nearest_rank_values_that_occurred() -> None:
    q = quantiles(range(1, 101))
    assert (q.n, q.p50, q.p95, q.p99, q.max) == (100, 50.0, 95.0, 99.0, 100.0)
    assert q.mean == pytest.approx(50.5)
    few = quantiles([30.0, 10.0, 20.0])
    assert (few.p50, few.p95, few.p99) == (20.0, 30.0, 30.0)


def test_quantiles_of_nothing_are_nan_not_zero() -> None:
    q = quantiles([])
    assert q.n == 0 and all(math.isnan(v) for v in (q.p50, q.p95, q.p99, q.mean, q.max))


def test_the_slope_of_a_steadily_growing_backlog_is_its_growth_per_second() -> None:
    samples = [(t / 4, 1000.0 + 250.0 * t / 4) for t in range(40)]
    assert backlog_slope(samples) == pytest.approx(250.0)
    assert linear_fit(samples) == pytest.approx((1000.0, 250.0))


def test_a_sawtooth_backlog_of_a_job_that_keeps_up_has_no_slope_worth_the_name() -> None:
    # fills for a second at 5,000 events/s, drops to zero at each commit, for 15 s
    samples = [(t / 4, 5000.0 * ((t % 4) / 4)) for t in range(60)]
    slope = backlog_slope(samples)
    assert abs(slope) < 0.05 * 5000
    assert not backlog_grows(slope, 5000)


def test_a_least_squares_line_through_a_few_teeth_would_read_growth_but_the_troughs_do_not() -> None:
    # a job keeping up at 2,500 events/s with 4.5 s micro-batches: the backlog fills to ~11k
    # and drops to what arrived meanwhile at each commit; three whole teeth of a step
    rate, period = 2500.0, 4.5
    samples = [(t / 4, rate * ((t / 4) % period)) for t in range(55)]
    commits = [period * k for k in range(1, 4)]
    assert backlog_slope(samples) > 0.05 * rate  # the sawtooth's own bias, about rate / n²
    assert abs(growth_slope(samples, commits)) < 0.05 * rate
    assert [t for t, _ in troughs(samples, commits)] == [4.5, 9.0, 13.5]


def test_troughs_that_rise_are_growth_and_one_commit_falls_back_to_every_sample() -> None:
    # a job behind: each micro-batch leaves 1,000 events more than the one before
    samples = [(t / 4, 1000.0 * (t / 4) // 3 + 200.0 * ((t / 4) % 3)) for t in range(60)]
    assert growth_slope(samples, [3.0, 6.0, 9.0, 12.0]) == pytest.approx(1000 / 3, rel=0.05)
    rising = [(t / 4, 100.0 * t) for t in range(20)]
    assert growth_slope(rising, [2.0]) == pytest.approx(400.0)


def test_growth_is_judged_against_the_arrival_rate() -> None:
    assert backlog_grows(600.0, 10_000)
    assert not backlog_grows(400.0, 10_000)
    assert not backlog_grows(-3000.0, 10_000)  # draining
    assert not backlog_grows(math.nan, 10_000)  # too few samples to tell
    assert backlog_slope([(0.0, 5.0)]) != backlog_slope([(0.0, 5.0)])  # NaN for one point
    assert math.isnan(linear_fit([(1.0, 2.0), (1.0, 3.0)])[1])


def test_the_sustained_rate_is_the_highest_step_before_the_backlog_first_grows() -> None:
    steps = [Step(2500, 2490, 10.0), Step(5000, 4980, -20.0), Step(7500, 7450, 900.0), Step(10_000, 9000, 10.0)]
    sustained = sustained_rate(steps)
    assert sustained.rate == 4980
    assert sustained.first_growing == 7450  # a later step that happens not to grow does not count


def test_a_ramp_that_never_grows_sustains_at_least_its_last_step_and_says_no_limit_was_found() -> None:
    sustained = sustained_rate([Step(2500, 2500, 0.0), Step(5000, 4990, 1.0)])
    assert sustained.rate == 4990 and sustained.first_growing is None


def test_a_ramp_whose_first_step_grows_sustains_nothing() -> None:
    sustained = sustained_rate([Step(2500, 2500, 2000.0), Step(5000, 5000, 4000.0)])
    assert sustained.rate is None and sustained.first_growing == 2500
    assert sustained_rate([]).rate is None


def test_the_rate_target_is_met_only_by_a_flat_backlog_at_about_the_target_rate() -> None:
    flat_at_5k, growing_at_1k = Step(5000, 4990, 12.0), Step(1000, 1000, 400.0)
    no_ramp = Sustained(None, None)
    assert rate_target_verdict(flat_at_5k, no_ramp, 5000) == "met"
    assert rate_target_verdict(Step(1000, 1000, 0.0), Sustained(7480, 9950), 5000) == "met"  # by the ramp
    assert rate_target_verdict(growing_at_1k, no_ramp, 5000) == "not met"  # behind at a fifth of it
    assert rate_target_verdict(Step(1000, 1000, 0.0), Sustained(2500, 5000), 5000) == "not met"
    assert rate_target_verdict(Step(1000, 1000, 0.0), no_ramp, 5000) == "not tested"  # a quick run
    assert rate_target_verdict(Step(5000, 3000, 0.0), no_ramp, 5000) == "not tested"  # the load fell short
    # flat for the main run's minute, growing in a ramp step at the same rate: a job at its limit
    assert rate_target_verdict(flat_at_5k, Sustained(2500, 5000), 5000) == "mixed"


def test_a_batch_settles_where_the_fixed_cost_is_what_the_per_event_work_leaves_of_a_second() -> None:
    # 600 ms a batch + 150 µs an event at 5,000 events/s: busy 75% of each second
    assert settled_batch_ms(600.0, 0.15, 5000) == pytest.approx(2400.0)
    assert settled_batch_ms(600.0, 0.15, 0) == pytest.approx(600.0)  # idle: the fixed cost alone
    assert math.isinf(settled_batch_ms(600.0, 0.15, 7000))  # 105% busy: it falls behind
    assert math.isnan(settled_batch_ms(math.nan, math.nan, 5000))


def test_per_second_keeps_each_seconds_peak_and_fills_silent_seconds() -> None:
    samples = [(100.1, 5.0), (100.6, 9.0), (101.2, 3.0), (103.5, 7.0), (99.0, 50.0)]
    assert per_second(samples, 100.0) == [9.0, 3.0, 3.0, 7.0]
    assert per_second([], 0.0) == []


def test_sparkline_scales_to_the_peak_and_never_averages_a_spike_away() -> None:
    line = sparkline([0, 0, 0, 100, 0, 0], width=3)
    assert len(line) == 3 and line[1] == "█" and line[0] == "▁"
    assert sparkline([]) == ""
    assert sparkline([0, 0]) == "▁▁"
    assert len(sparkline(list(range(500)), width=60)) == 60


def test_offsets_come_from_the_source_line_of_a_checkpoint_offsets_file() -> None:
    text = 'v1\n{"batchWatermarkMs":0,"batchTimestampMs":1796216560070,"conf":{}}\n{"0": "197", "1": "201", "2": null}'
    assert parse_offsets(text) == {"0": 197, "1": 201, "2": None}
    with pytest.raises(ValueError):
        parse_offsets("v1\n{}")


def test_progress_reports_are_found_between_other_log_lines_and_a_cut_one_is_skipped() -> None:
    report = (
        '{\n  "batchId" : 3,\n  "timestamp" : "2026-12-02T13:02:35.123Z",\n'
        '  "durationMs" : {\n    "addBatch" : 120\n  }\n}'
    )
    log = (
        "26/12/02 13:02:35 WARN Something: else\n"
        f"26/12/02 13:02:36 INFO ProgressReporter: {PROGRESS_MARKER}{report}\n"
        "26/12/02 13:02:37 INFO Other: line\n"
        f"26/12/02 13:02:38 INFO ProgressReporter: {PROGRESS_MARKER}" + '{\n  "batchId" : 4,'
    )
    found = parse_progress(log)
    assert [p["batchId"] for p in found] == [3]
    assert found[0]["durationMs"] == {"addBatch": 120}
    assert epoch_ms(found[0]["timestamp"]) == pytest.approx(1796216555123.0)


def test_shares_ignore_nan_and_negative_parts() -> None:
    assert shares({"a": 30.0, "b": 10.0, "c": math.nan, "d": -5.0}) == {"a": 0.75, "b": 0.25, "c": 0.0, "d": 0.0}
    assert shares({"a": math.nan}) == {}


def test_verdicts_name_a_missing_measurement() -> None:
    assert verdict(250.0, 300.0) == "met"
    assert verdict(301.0, 300.0) == "not met"
    assert verdict(math.nan, 300.0) == "not measured"


def test_the_player_cycle_visits_every_player_once_before_any_twice() -> None:
    cycle = PlayerCycle(50, seed=3)
    first = [cycle.next() for _ in range(50)]
    assert len(set(first)) == 50
    assert [cycle.next() for _ in range(50)] == first


def test_a_batch_body_is_one_players_valid_events_gzipped() -> None:
    body = json.loads(gzip.decompress(batch_body("fresh-000001", 20, now_ms())))
    events = body["events"]
    assert len(events) == 20 and {e["player_id"] for e in events} == {"fresh-000001"}
    assert len({e["event_id"] for e in events}) == 20
    for e in events:
        msgspec.convert(e, Event)  # the contract's own type takes every one


def test_the_poller_reads_the_stores_own_rows_hop_stamps_and_folding_batch(tmp_path) -> None:
    import sqlite3

    from benchmarks.freshness_probe import read_shown
    from features.config import SqliteOnlineStoreConfig
    from features.online import Profile
    from features.online.sqlite import SqliteOnlineStore

    path = str(tmp_path / "profiles.db")
    stamps = {"received_at": 1000, "stream_at": 1005, "processed_at": 1200}
    with SqliteOnlineStore(SqliteOnlineStoreConfig(path=path)) as store:
        store.put(
            [
                Profile(
                    game_id="demo",
                    player_id="fresh-000001",
                    version=1,
                    as_of=1200,
                    features={},
                    state={"seen": ["x"], "applied": {"positions": {"0": "7"}, "checkpoint": "c", "batch": 12}},
                    timestamps=dict(stamps),
                ),
                Profile(game_id="other", player_id="fresh-000002", version=1, as_of=1, features={}, state={}),
            ]
        )
    conn = sqlite3.connect(path)
    found = read_shown(conn, ["fresh-000001", "fresh-000002", "fresh-000003"])
    assert list(found) == ["fresh-000001"]  # another game's player and an unknown one are absent
    assert found["fresh-000001"].state.applied.batch == 12
    shown = found["fresh-000001"].timestamps
    assert {k: shown[k] for k in stamps} == stamps and "profile_written_at" in shown  # the store's stamp
