"""The cost estimator's arithmetic, checked line by line against figures computed by hand.

The measured inputs here are a small, round stand-in for the benchmark's output; the prices are
the committed dated table, so each expectation reads as "volume × list price".
"""

from __future__ import annotations

import pytest

from playerpulse.cost.estimate import Levers, Workload, cumulative, estimate, shard_hours_per_day, volumes
from playerpulse.cost.inputs import Measured, load_prices

PRICES = load_prices()
DAYS = PRICES.hours_per_month / 24  # 730 h → 30.42 days
FLAT = [1 / 24] * 24


def measured(hourly_share: list[float] = FLAT) -> Measured:
    layout = {"partitions": 1, "objects_before_compaction": 1440, "bytes_before_compaction": 100_000}
    return Measured.model_validate(
        {
            "measured_at": "2026-11-30",
            "source": "test",
            "players": 100,
            "stream": {
                "events": 1000,
                "events_per_request": 10,
                "collector_cpu_ms_per_request": 0.5,
                "bytes_per_event": {"raw_json": 400, "zstd_one_event": 300, "zstd_player_record": 50},
                "kinesis": {
                    "put_units_per_million_events": {"one_event_json": 1e6, "player_batches_zstd": 1e5},
                    "on_demand_billed_bytes_per_event": {"one_event_json": 1024, "player_batches_zstd": 102.4},
                    "records_per_million_events": {"one_event_json": 1e6, "player_batches_zstd": 1e5},
                },
            },
            "lake": {
                "unpartitioned": {**layout, "objects_after_compaction": 1, "bytes_after_compaction": 40_000},
                "event_date": {
                    **layout,
                    "partitions": 2,
                    "objects_before_compaction": 2880,
                    "objects_after_compaction": 2,
                    "bytes_after_compaction": 40_000,
                },
            },
            "hourly_share": hourly_share,
        }
    )


WORKLOAD = Workload(events_per_day=1_000_000, players=10_000)
ALL = Levers()


def test_api_gateway_bills_one_request_per_device_batch():
    assert estimate(WORKLOAD, measured(), PRICES, ALL)["API Gateway"] == pytest.approx(1e5 * DAYS / 1e6 * 1.00)


def test_without_batching_every_event_is_a_request():
    bill = estimate(WORKLOAD, measured(), PRICES, Levers(batching=False))
    assert bill["API Gateway"] == pytest.approx(1e6 * DAYS / 1e6 * 1.00)


def test_lambda_bills_requests_and_the_rounded_up_duration_at_its_memory():
    requests = 1e5 * DAYS
    gb_seconds = requests * 0.021 * 0.5  # ceil(0.5 ms collector + 20 ms put wait) at 512 MB
    expected = requests / 1e6 * 0.20 + gb_seconds * 0.0000166667
    assert estimate(WORKLOAD, measured(), PRICES, ALL)["Lambda"] == pytest.approx(expected)


def test_kinesis_is_shard_hours_plus_put_payload_units():
    # 11.6 events/s: one shard all month; 0.1 payload units per event with per-player batches
    expected = 730 * 0.015 + 1e6 * DAYS * 0.1 / 1e6 * 0.014
    assert estimate(WORKLOAD, measured(), PRICES, ALL)["Kinesis"] == pytest.approx(expected)


def test_autoscaled_shards_follow_a_day_of_quiet_mornings_and_busy_evenings():
    # 1e9 events/day, a quarter in the first 12 hours: 1,736 records/s at the peak needs 3 shards
    # (60 % target), the quiet hours 1. Fixed: 3 × 24. The autoscaler steps down over two hours
    # (halving, one-hour cool-down), waits 10 quiet hours at 1, then up over two (doubling):
    # 3 + 2 + 10 × 1 + 2 + 11 × 3 = 50 shard-hours a day.
    shape = [1 / 48] * 12 + [3 / 48] * 12
    w = Workload(events_per_day=1_000_000_000, players=10_000)
    m = measured(shape)
    v = volumes(w, m, PRICES, ALL)
    assert shard_hours_per_day(w, m, v, autoscaling=False) == 72
    assert shard_hours_per_day(w, m, v, autoscaling=True) == 50


def test_compacted_zstd_parquet_is_stored_a_year_in_standard_without_lifecycle():
    bill = estimate(WORKLOAD, measured(), PRICES, Levers(lifecycle=False))
    assert bill["S3 Standard"] == pytest.approx(365 * 40e6 / 1e9 * 0.023)  # 40 bytes/event × 1e6/day
    assert bill["S3 IA"] == bill["S3 Glacier IR"] == 0


def test_lifecycle_moves_the_year_through_three_storage_classes():
    bill = estimate(WORKLOAD, measured(), PRICES, ALL)
    assert bill["S3 Standard"] == pytest.approx(30 * 0.04 * 0.023)
    assert bill["S3 IA"] == pytest.approx(60 * 0.04 * 0.0125)
    assert bill["S3 Glacier IR"] == pytest.approx(275 * 0.04 * 0.004)


def test_uncompacted_small_files_are_billed_at_128_kb_in_standard_ia():
    bill = estimate(WORKLOAD, measured(), PRICES, Levers(compaction=False))
    # 1,440 micro-batch objects a day of 69 KB each (100 MB/day), 60 days in Standard-IA
    assert bill["S3 IA"] == pytest.approx(1440 * 60 * 128 * 1024 / 1e9 * 0.0125)


def s3_total(bill: dict[str, float]) -> float:
    return sum(v for k, v in bill.items() if k.startswith("S3"))


def test_lifecycle_on_uncompacted_small_files_costs_more_than_it_saves():
    # 43,800 objects a month pay two transitions each, and are billed at 128 KB once they move
    kept = estimate(WORKLOAD, measured(), PRICES, Levers(compaction=False, lifecycle=False))
    moved = estimate(WORKLOAD, measured(), PRICES, Levers(compaction=False))
    assert s3_total(moved) > s3_total(kept)
    assert s3_total(estimate(WORKLOAD, measured(), PRICES, ALL)) < s3_total(
        estimate(WORKLOAD, measured(), PRICES, Levers(lifecycle=False))
    )


def test_the_columns_add_one_lever_at_a_time_ending_with_all_of_them():
    columns = cumulative(WORKLOAD, measured(), PRICES)
    assert [name for name, _, _ in columns][:2] == ["no levers", "+batching"]
    assert columns[0][1] == Levers.none() and columns[-1][1] == ALL
    assert columns[-1][2] == estimate(WORKLOAD, measured(), PRICES, ALL)
