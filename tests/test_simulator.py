"""The simulator: a deterministic world, an honest ground truth, and the mess of real clients."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import msgspec
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.contract import EventValidator, TimeBounds, corrected_event_time_ms, now_ms
from features.properties import quarantine_reason
from playerpulse.simulation import device_of, live_events, simulate, write_ground_truth
from playerpulse.simulation.mess import ENVELOPE_DEFECTS, PROPERTY_DEFECTS

END = datetime(2026, 11, 20, tzinfo=UTC)
VALIDATOR = EventValidator(TimeBounds.of(60, 60))


@pytest.fixture(scope="module")
def sim():
    """A world big enough for shares and statistics, ending today so the collector's bounds apply."""
    return simulate(players=500, days=14, seed=3)


def _clean_raw(simulation):
    """(delivery, raw event) for each first delivery of every clean event."""
    clean = set(simulation.events["event_id"])
    for d in simulation.deliveries:
        if d.duplicate:
            continue
        for e in d.events:
            if isinstance(e, dict) and e.get("event_id") in clean:
                yield d, e


def _as_collector_sees(raw, skew_ms: int, received_ms: int):
    """Validate as the collector would, with ``sent_at`` stamped by the device just before sending."""
    return VALIDATOR.validate({**raw, "sent_at": received_ms + skew_ms}, received_ms)


def test_the_same_seed_makes_the_same_deliveries_and_truth():
    a, b = simulate(30, 2, seed=9, end=END), simulate(30, 2, seed=9, end=END)
    wire = lambda s: msgspec.json.encode([(d.events, d.skew_ms, d.simulated_send_ms) for d in s.deliveries])  # noqa: E731
    assert wire(a) == wire(b)
    pd.testing.assert_frame_equal(a.ground_truth, b.ground_truth)


def test_another_seed_makes_another_world():
    a, b = simulate(30, 2, seed=9, end=END), simulate(30, 2, seed=10, end=END)
    assert set(a.events["event_id"]).isdisjoint(b.events["event_id"])


def test_event_and_session_ids_are_unique_version_4_uuids(sim):
    ids = sim.events["event_id"]
    assert ids.is_unique
    assert {uuid.UUID(i).version for i in ids} == {4}
    assert {uuid.UUID(i).version for i in sim.events["session_id"].unique()} == {4}


def test_the_simulated_days_are_the_full_utc_days_before_end():
    s = simulate(20, 3, seed=1, end=END)
    assert sorted(s.ground_truth["date"].unique()) == [date(2026, 11, 17), date(2026, 11, 18), date(2026, 11, 19)]
    assert s.events["event_time"].min() >= END - timedelta(days=3)
    assert s.events["event_time"].max() < END


def test_end_must_be_a_utc_midnight():
    with pytest.raises(ValueError, match="midnight"):
        simulate(5, 1, end=datetime(2026, 11, 20, 12, tzinfo=UTC))


def test_ground_truth_has_one_row_per_player_and_day(sim):
    gt = sim.ground_truth
    assert len(gt) == 500 * 14
    assert not gt.duplicated(["player_id", "date"]).any()
    assert list(gt.columns) == ["player_id", "date", "p_purchase", "purchased", "p_churn_7d"]


def test_players_have_pseudonymous_ids_and_one_device_each(sim):
    assert sim.player_ids[:2] == ["p000000", "p000001"]
    devices: dict[str, set[tuple[str, str, str]]] = {}
    for _, raw in _clean_raw(sim):
        devices.setdefault(raw["player_id"], set()).add((raw["platform"], raw["app_version"], raw["country"]))
    assert {len(d) for d in devices.values()} == {1}


def test_realised_purchase_days_match_the_true_probabilities(sim):
    p = sim.ground_truth["p_purchase"].to_numpy()
    realised = sim.ground_truth["purchased"].sum()
    assert abs(realised - p.sum()) < 4 * np.sqrt((p * (1 - p)).sum())


def test_true_probabilities_rank_buyers_far_above_chance(sim):
    gt = sim.ground_truth
    assert roc_auc_score(gt["purchased"], gt["p_purchase"]) > 0.85


def test_true_churn_probability_matches_and_ranks_players_without_a_session_for_7_days(sim):
    gt = sim.ground_truth
    active = {(pid, d) for pid, d in zip(sim.events["player_id"], sim.events["event_time"].dt.date, strict=True)}
    days = sorted(gt["date"].unique())
    observed = gt[gt["date"] <= days[-7]]  # a full 7-day window inside the simulation
    quiet = np.array(
        [
            all((pid, d + timedelta(days=k)) not in active for k in range(7))
            for pid, d in zip(observed["player_id"], observed["date"], strict=True)
        ]
    )
    p = observed["p_churn_7d"].to_numpy()
    assert abs(quiet.sum() - p.sum()) < 4 * np.sqrt((p * (1 - p)).sum())
    assert roc_auc_score(quiet, p) > 0.85


def test_between_4_and_8_percent_of_active_player_days_have_a_purchase(sim):
    share = sim.stats["purchase_player_days"] / sim.stats["active_player_days"]
    assert 0.04 <= share <= 0.08


def test_most_players_never_buy_and_a_few_bring_most_revenue(sim):
    buys = sim.events[sim.events["event_type"] == "purchase"]
    revenue = buys["properties"].map(lambda p: p["price_usd"]).groupby(buys["player_id"]).sum()
    assert revenue.size < 0.5 * len(sim.player_ids)
    assert revenue.nlargest(len(sim.player_ids) // 20).sum() > 0.4 * revenue.sum()


def test_purchased_days_are_exactly_the_days_with_a_purchase_event(sim):
    buys = sim.events[sim.events["event_type"] == "purchase"]
    with_event = set(zip(buys["player_id"], buys["event_time"].dt.date, strict=True))
    gt = sim.ground_truth
    marked = set(zip(gt.loc[gt["purchased"], "player_id"], gt.loc[gt["purchased"], "date"], strict=True))
    assert with_event == marked


def test_every_purchase_follows_a_store_view_in_its_session(sim):
    ev = sim.events.sort_values("time_ms", kind="stable")
    seen_view: set[str] = set()
    for kind, session in zip(ev["event_type"], ev["session_id"], strict=True):
        if kind == "store_view":
            seen_view.add(session)
        elif kind == "purchase":
            assert session in seen_view


def test_sessions_start_first_and_end_last(sim):
    ev = sim.events.sort_values("time_ms", kind="stable")
    ends = ev.groupby("session_id")["event_type"].agg(["first", "last"])
    assert (ends["first"] == "session_start").all() and (ends["last"] == "session_end").all()


def test_levels_only_go_up(sim):
    ups = sim.events[sim.events["event_type"] == "level_up"].sort_values("time_ms")
    levels = ups.assign(level=ups["properties"].map(lambda p: p["level"]))
    assert levels.groupby("player_id")["level"].apply(lambda s: s.is_monotonic_increasing and s.is_unique).all()


def test_clean_events_pass_the_collector_and_the_quality_rules(sim):
    received = now_ms()
    for d, raw in _clean_raw(sim):
        event, reason = _as_collector_sees(raw, d.skew_ms, received)
        assert reason is None, (raw, reason)
        assert quarantine_reason(event["event_type"], event["properties"]) is None, raw


def test_event_times_come_as_rfc3339_text_or_epoch_ms_about_70_30(sim):
    kinds = Counter(type(raw["event_time"]).__name__ for _, raw in _clean_raw(sim))
    assert set(kinds) == {"str", "int"}
    assert 0.65 < kinds["str"] / kinds.total() < 0.75


def test_skewed_device_times_are_corrected_back_to_the_true_time(sim):
    true_ms = dict(zip(sim.events["event_id"], sim.events["time_ms"], strict=True))
    received = now_ms()
    checked = 0
    for d, raw in _clean_raw(sim):
        if abs(d.skew_ms) < 60_000:
            continue
        event, _ = _as_collector_sees(raw, d.skew_ms, received)
        assert event["event_time"] != true_ms[raw["event_id"]]
        assert corrected_event_time_ms(event["event_time"], event["sent_at"], received) == true_ms[raw["event_id"]]
        checked += 1
    assert checked > 0


def test_about_5_percent_of_devices_are_minutes_to_hours_off():
    skews = np.array([device_of(f"p{i:06d}").skew_ms for i in range(2000)])
    far = np.abs(skews) >= 120_000
    assert 0.03 < far.mean() < 0.07
    assert (np.abs(skews[~far]) <= 5_000).all()
    assert (skews[far] > 0).any() and (skews[far] < 0).any()


def test_every_clean_event_is_delivered_once_apart_from_resends(sim):
    delivered = Counter(raw["event_id"] for _, raw in _clean_raw(sim))
    assert set(delivered.values()) == {1}
    assert len(delivered) == len(sim.events)


def test_a_delivery_holds_between_1_and_100_values(sim):
    assert all(1 <= len(d.events) <= 100 for d in sim.deliveries)


def test_a_delivery_carries_the_events_of_one_player(sim):
    assert all(raw["player_id"] == d.player_id for d, raw in _clean_raw(sim))


def test_deliveries_are_in_send_order(sim):
    sends = [d.simulated_send_ms for d in sim.deliveries]
    assert sends == sorted(sends)


def test_about_2_percent_of_deliveries_are_resent_with_the_same_event_ids(sim):
    resends = [d for d in sim.deliveries if d.duplicate]
    originals = {tuple(map(id, d.events)) for d in sim.deliveries if not d.duplicate}
    assert all(tuple(map(id, d.events)) in originals for d in resends)
    assert len(resends) == sim.stats["duplicate_deliveries"]
    assert 0.01 < len(resends) / (len(sim.deliveries) - len(resends)) < 0.03


def test_about_3_percent_of_events_arrive_hours_late(sim):
    true_ms = dict(zip(sim.events["event_id"], sim.events["time_ms"], strict=True))
    late = sum(1 for d, raw in _clean_raw(sim) if d.simulated_send_ms - true_ms[raw["event_id"]] >= 2 * 3_600_000)
    assert late == sim.stats["late_events"]
    assert 0.025 < late / len(true_ms) < 0.035


def test_malformed_envelopes_are_rejected_by_the_collector(sim):
    received = now_ms()
    envelope = [i for i in sim.injected if i.kind == "envelope"]
    assert {i.defect for i in envelope} == set(ENVELOPE_DEFECTS)
    for injected in envelope:
        raw = injected.raw
        sent = {**raw, "sent_at": received + injected.skew_ms} if isinstance(raw, dict) else raw
        assert VALIDATOR.validate(sent, received)[1] is not None, injected.defect
    assert 0.004 < len(envelope) / sim.stats["clean_events"] < 0.006


def test_malformed_properties_pass_the_collector_but_are_quarantined(sim):
    received = now_ms()
    broken = [i for i in sim.injected if i.kind == "properties"]
    assert {i.defect for i in broken} == set(PROPERTY_DEFECTS)
    for injected in broken:
        event, reason = _as_collector_sees(injected.raw, injected.skew_ms, received)
        assert reason is None
        assert quarantine_reason(event["event_type"], event["properties"]) is not None
    assert 0.002 < len(broken) / sim.stats["clean_events"] < 0.004


def test_stats_count_what_was_made(sim):
    s = sim.stats
    assert s["clean_events"] == len(sim.events)
    assert s["purchases"] == int((sim.events["event_type"] == "purchase").sum())
    assert s["malformed_envelope"] + s["malformed_properties"] == len(sim.injected)


def test_the_ground_truth_is_written_as_parquet(sim, tmp_path):
    path = write_ground_truth(sim, tmp_path / "sub" / "truth.parquet")
    back = pd.read_parquet(path)
    assert len(back) == len(sim.ground_truth)
    assert back["purchased"].sum() == sim.ground_truth["purchased"].sum()


def test_live_events_happen_now_and_pass_the_collector():
    now = now_ms()
    (delivery,) = live_events(["p000042"], now, seed=4)
    assert [e["event_type"] for e in delivery.events] == ["session_start", "store_view", "offer_shown", "purchase"]
    for raw in delivery.events:
        event, reason = _as_collector_sees(raw, delivery.skew_ms, now)
        assert reason is None and quarantine_reason(event["event_type"], event["properties"]) is None
        corrected = corrected_event_time_ms(event["event_time"], event["sent_at"], now)
        assert now - 60_000 <= corrected <= now


def test_live_events_come_from_the_players_simulated_device(sim):
    pid = sim.player_ids[7]
    history = next(raw for _, raw in _clean_raw(sim) if raw["player_id"] == pid)
    (live,) = live_events([pid], now_ms(), seed=99)
    assert {k: live.events[0][k] for k in ("platform", "app_version", "country")} == {
        k: history[k] for k in ("platform", "app_version", "country")
    }
