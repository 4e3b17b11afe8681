"""The executor-side profile fold, without Spark: idempotency, versions, hop timestamps."""

from __future__ import annotations

import json
import uuid
from typing import Any

from features.config import Settings
from features.definitions import PLAYER_ACTIVITY_V1, FeatureUnion
from features.online import open_online_store
from features.profile_state import ProfileState
from pipelines.profile_updates import UpdateContext, UpdateStats, fold_player, thin, update_players

NOW = 1_790_000_000_000
FS = PLAYER_ACTIVITY_V1
ONLINE = FeatureUnion((FS,))
P1 = ("demo", "p1")


def ctx(settings: Settings, batch_id: int = 0, dedup_ids: int = 2000) -> UpdateContext:
    return UpdateContext(settings.online_store.model_dump_json(), (FS,), 30, dedup_ids, "cp", batch_id)


def row(
    event_type: str = "session_start",
    t: int = NOW - 60_000,
    position: int = 1,
    shard: str = "0",
    props: dict[str, Any] | None = None,
    event_id: str | None = None,
    received_at: int = NOW - 1000,
    sent_at: int | None = None,
) -> dict[str, Any]:
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": event_type,
        "event_time": t,
        "sent_at": sent_at,
        "received_at": received_at,
        "stream_at": received_at + 5,
        "properties": json.dumps(props or {}),
        "stream_shard": shard,
        "stream_position": str(position),
    }


def test_rows_at_or_below_the_players_stream_watermark_are_not_folded_again(settings: Settings) -> None:
    first, _ = fold_player(P1, None, [row(position=3), row(position=5)], ONLINE, ctx(settings), NOW)
    again, stats = fold_player(P1, first, [row(position=5), row(position=4)], ONLINE, ctx(settings, dedup_ids=0), NOW)
    assert again is None
    assert stats.replayed == 2


def test_a_new_record_past_the_watermark_is_folded(settings: Settings) -> None:
    first, _ = fold_player(P1, None, [row(position=3)], ONLINE, ctx(settings), NOW)
    second, stats = fold_player(P1, first, [row(position=3), row(position=9)], ONLINE, ctx(settings), NOW + 1)
    assert second is not None
    assert (stats.replayed, stats.events_applied) == (1, 1)
    assert second.features["session_count_1d"] == 2
    assert second.state["applied"]["positions"] == {"0": "9"}


def test_watermarks_are_kept_per_shard(settings: Settings) -> None:
    first, _ = fold_player(P1, None, [row(position=100, shard="0")], ONLINE, ctx(settings), NOW)
    second, stats = fold_player(P1, first, [row(position=7, shard="1")], ONLINE, ctx(settings), NOW)
    assert second is not None and stats.events_applied == 1
    assert second.state["applied"]["positions"] == {"0": "100", "1": "7"}


def test_version_always_exceeds_the_stored_one_even_if_the_clock_lags(settings: Settings) -> None:
    first, _ = fold_player(P1, None, [row(position=1)], ONLINE, ctx(settings), NOW)
    second, _ = fold_player(P1, first, [row(position=2)], ONLINE, ctx(settings), NOW - 10_000)
    assert first is not None and second is not None
    assert first.version == NOW
    assert second.version == NOW + 1


def test_timestamps_are_those_of_the_most_recently_received_event(settings: Settings) -> None:
    late = row(t=NOW - 5000, received_at=NOW - 100, position=2, sent_at=NOW - 4000)
    early = row(t=NOW - 3000, received_at=NOW - 2000, position=1)
    profile, _ = fold_player(P1, None, [late, early], ONLINE, ctx(settings), NOW)
    assert profile is not None
    assert profile.timestamps == {
        "event_time": NOW - 5000 + 3900,
        "sent_at": NOW - 4000,
        "received_at": NOW - 100,
        "stream_at": NOW - 95,
        "processed_at": NOW,
    }


def test_duplicates_and_quarantined_events_are_counted_apart(settings: Settings) -> None:
    dup_id = str(uuid.uuid4())
    rows = [
        row(event_id=dup_id, position=1),
        row(event_id=dup_id, position=2),
        row("purchase", props={"sku": "gems", "price_usd": -1.0}, position=3),
    ]
    profile, stats = fold_player(P1, None, rows, ONLINE, ctx(settings), NOW)
    assert (stats.events_applied, stats.duplicates, stats.quarantined) == (1, 1, 1)
    assert profile is not None and profile.features["purchase_count_7d"] == 0


def test_features_are_those_of_profile_state_folded_directly(settings: Settings) -> None:
    rows = [
        row("match_end", props={"won": True}, position=1),
        row("match_end", props={"won": False}, position=2),
        row("level_up", props={"level": 4}, t=NOW - 3 * 86_400_000, position=3),
    ]
    profile, _ = fold_player(P1, None, rows, ONLINE, ctx(settings), NOW)
    direct = ProfileState()
    for r in sorted(rows, key=lambda r: r["event_time"]):
        direct.apply(FS, {**r, "properties": json.loads(r["properties"])}, r["event_time"], 2000)
    assert profile is not None
    assert profile.features == direct.features(FS, profile.as_of)


def test_update_players_writes_in_one_put_and_reports_latency(settings: Settings) -> None:
    store = open_online_store(settings.online_store)
    players = [(P1, [row(position=1)]), (("demo", "p2"), [row(position=2, shard="1")])]
    stats = update_players(store, players, ctx(settings), clock=lambda: NOW)
    assert stats.players == 2 and store.count() == 2
    assert len(stats.latency_ms) == 2 and all(ms >= 0 for ms in stats.latency_ms)


def test_the_same_player_id_in_two_games_gets_two_profiles_with_their_own_counts(settings: Settings) -> None:
    store = open_online_store(settings.online_store)
    players = [
        (("alpha", "p1"), [row(position=1), row(position=2)]),
        (("beta", "p1"), [row(position=3, shard="1")]),
    ]

    stats = update_players(store, players, ctx(settings), clock=lambda: NOW)

    alpha, beta = store.get("alpha", "p1"), store.get("beta", "p1")
    assert stats.players == 2 and alpha is not None and beta is not None
    assert (alpha.game_id, alpha.features["session_count_1d"]) == ("alpha", 2)
    assert (beta.game_id, beta.features["session_count_1d"]) == ("beta", 1)


def test_one_games_stream_watermark_does_not_skip_another_games_player(settings: Settings) -> None:
    store = open_online_store(settings.online_store)
    update_players(store, [(("alpha", "p1"), [row(position=9)])], ctx(settings), clock=lambda: NOW)

    stats = update_players(store, [(("beta", "p1"), [row(position=5)])], ctx(settings), clock=lambda: NOW + 1)

    assert (stats.events_applied, stats.replayed) == (1, 0)
    assert store.get("beta", "p1").features["session_count_1d"] == 1  # type: ignore[union-attr]


def test_one_games_seen_event_id_is_no_duplicate_for_another_games_player(settings: Settings) -> None:
    store = open_online_store(settings.online_store)
    shared_id = str(uuid.uuid4())
    players = [
        (("alpha", "p1"), [row(event_id=shared_id, position=1)]),
        (("beta", "p1"), [row(event_id=shared_id, position=2)]),
    ]

    stats = update_players(store, players, ctx(settings), clock=lambda: NOW)

    assert (stats.events_applied, stats.duplicates) == (2, 0)


def test_update_players_samples_each_hop_of_every_written_profiles_newest_event(settings: Settings) -> None:
    store = open_online_store(settings.online_store)
    players = [(P1, [row(t=NOW - 61_000, sent_at=NOW - 2_000, received_at=NOW - 1000, position=1)])]

    stats = update_players(store, players, ctx(settings), clock=lambda: NOW)

    written = store.get(*P1).timestamps["profile_written_at"]  # type: ignore[union-attr]
    assert stats.hops["device"] == [59_000.0]  # sent_at - event_time on the device's clock
    assert stats.hops["collector"] == [5.0]
    assert stats.hops["stream"] == [995.0]  # processed at NOW, on the stream since NOW - 995
    assert stats.hops["profile_write"] == [float(written - NOW)]
    assert "serve" not in stats.hops


def test_stats_rows_from_the_executors_add_up() -> None:
    rows = [
        {"players": 2, "events_applied": 5, "duplicates": 1, "quarantined": 0, "replayed": 0, "latency_ms": [3.0]},
        {"players": 1, "events_applied": 1, "duplicates": 0, "quarantined": 2, "replayed": 4, "latency_ms": None},
        {
            "players": 0,
            "events_applied": 0,
            "duplicates": 0,
            "quarantined": 0,
            "replayed": 0,
            "hops": {"stream": [7.0]},
        },
    ]
    assert UpdateStats.combine(rows) == UpdateStats(3, 6, 1, 2, 4, [3.0], {"stream": [7.0]})


def test_a_big_batch_keeps_its_latency_percentiles_in_a_bounded_sample() -> None:
    kept = thin([float(ms) for ms in range(10_000, 0, -1)], 100)
    assert len(kept) == 100
    assert (kept[0], kept[49], kept[94]) == (1.0, 4901.0, 9401.0)


def test_an_event_received_past_silvers_lateness_horizon_is_not_counted_online(settings: Settings) -> None:
    """Silver quarantines it as too late; the online profile must not count it either."""
    late = ctx(settings)
    late = UpdateContext(**{**late.__dict__, "late_after_days": 7.0})
    ten_days = 10 * 86_400_000
    _, stats = fold_player(P1, None, [row(t=NOW - ten_days), row(t=NOW - 3 * 86_400_000)], ONLINE, late, NOW)
    assert (stats.events_applied, stats.quarantined) == (1, 1)


def test_a_partition_folds_each_players_events_together_whatever_arrow_batch_they_came_in(settings: Settings) -> None:
    import pyarrow as pa

    from pipelines.profile_updates import update_partition

    def batch(rows: list[dict[str, Any]]) -> pa.RecordBatch:
        return pa.RecordBatch.from_pylist(rows)

    from features.contract import now_ms

    t = now_ms() - 60_000  # the partition reads features as of the real clock
    first = [
        {"game_id": "demo", "player_id": "p1", **row(t=t, position=1, received_at=t)},
        {"game_id": "demo", "player_id": "p2", **row(t=t, received_at=t)},
    ]
    second = [{"game_id": "demo", "player_id": "p1", **row(t=t, position=2, received_at=t)}]

    [stats] = [b.to_pylist()[0] for b in update_partition(ctx(settings), iter([batch(first), batch(second)]))]

    with open_online_store(settings.online_store) as store:
        p1 = store.get("demo", "p1")
    assert stats["players"] == 2 and stats["events_applied"] == 3
    assert p1 is not None and p1.features["session_count_7d"] == 2
