"""Reported percentiles are latencies some event really had (nearest rank)."""

from features.latency import nearest_rank


def test_nearest_rank_picks_an_observed_value():
    values = [10.0, 20.0, 30.0, 40.0]
    assert nearest_rank(values, 50) == 20.0
    assert nearest_rank(values, 95) == 40.0
    assert nearest_rank(values, 1) == 10.0


def test_nearest_rank_of_nothing_is_none():
    assert nearest_rank([], 50) is None


def test_hop_latencies_are_the_differences_of_consecutive_stamps_on_the_server_clock():
    from features.latency import hop_latencies

    stamps = {
        "event_time": 1_000,
        "sent_at": 900_000,  # the device's clock: not compared with the server's
        "received_at": 1_400,
        "stream_at": 1_405,
        "processed_at": 1_700,
        "profile_written_at": 1_710,
        "served_at": 5_000,
    }

    assert hop_latencies(stamps) == {
        "device": 400.0,
        "collector": 5.0,
        "stream": 295.0,
        "profile_write": 10.0,
        "serve": 3290.0,
    }


def test_a_hop_whose_stamps_are_missing_is_left_out():
    from features.latency import hop_latencies

    assert hop_latencies({"received_at": 10, "stream_at": 12, "processed_at": None}) == {"collector": 2.0}
