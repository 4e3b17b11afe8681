"""Reported percentiles are latencies some event really had (nearest rank)."""

from features.latency import nearest_rank


def test_nearest_rank_picks_an_observed_value():
    values = [10.0, 20.0, 30.0, 40.0]
    assert nearest_rank(values, 50) == 20.0
    assert nearest_rank(values, 95) == 40.0
    assert nearest_rank(values, 1) == 10.0


def test_nearest_rank_of_nothing_is_none():
    assert nearest_rank([], 50) is None
