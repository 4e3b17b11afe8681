"""The streaming profiles job, end to end: stream records in, online profiles out."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from features.config import Settings
from features.contract import corrected_event_time_ms, now_ms
from features.definitions import PLAYER_ACTIVITY_V1, online_union
from features.online import Profile, open_online_store
from features.profile_state import DAY_MS, ProfileState
from features.streams import StreamRecord, encode_batch, open_stream
from pipelines.profiles_stream import (
    read_latency_reports,
    read_latency_samples,
    start_profiles_stream,
    summarise_latency,
)

pytestmark = pytest.mark.spark
FS = PLAYER_ACTIVITY_V1
NOW = now_ms()


def event(
    player: str,
    event_type: str,
    ago_ms: int = 60_000,
    props: dict[str, Any] | None = None,
    event_id: str | None = None,
    skew_ms: int = 0,
    game_id: str = "demo",
) -> dict[str, Any]:
    """A normalised event as the collector puts it; ``skew_ms``: how far the device clock runs ahead."""
    received = now_ms()
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "schema_version": 1,
        "event_type": event_type,
        "player_id": player,
        "game_id": game_id,
        "event_time": received - ago_ms + skew_ms,
        "sent_at": received + skew_ms - 20,
        "received_at": received,
        "platform": "ios",
        "app_version": "1.0",
        "country": "FR",
        "session_id": None,
        "properties": props or {},
    }


def put(settings: Settings, *events: dict[str, Any]) -> None:
    """One stream record per event, as a collector sending one event per request would."""
    with open_stream(settings.stream) as stream:
        stream.put([StreamRecord(e["player_id"], encode_batch([e], now_ms())) for e in events])


def run_available_now(spark, settings: Settings, checkpoint: str | None = None) -> None:
    query = start_profiles_stream(spark, settings, available_now=True, checkpoint=checkpoint)
    try:
        assert query.awaitTermination(120), "the available-now query did not finish"
        assert query.exception() is None, query.exception()
    finally:
        query.stop()


def profile(settings: Settings, player: str, game_id: str = "demo") -> Profile:
    with open_online_store(settings.online_store) as store:
        found = store.get(game_id, player)
    assert found is not None, f"no profile for {player} in game {game_id}"
    return found


def folded_directly(events: list[dict[str, Any]], as_of: int, settings: Settings) -> ProfileState:
    """The events folded with the inputs of every online set, as the job folds them."""
    union = online_union()
    state = ProfileState()
    timed = [(corrected_event_time_ms(e["event_time"], e["sent_at"], e["received_at"]), e) for e in events]
    for t, e in sorted(timed, key=lambda te: te[0]):
        state.apply(union, e, t, settings.streaming.dedup_ids)
    state.expire(as_of, settings.streaming.state_days, union.tile_minutes)
    return state


def with_streaming(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update={"streaming": settings.streaming.model_copy(update=changes)})


def test_each_player_gets_the_features_of_profile_state_folded_over_their_events(spark, settings):
    alice = [
        event("alice", "session_start", ago_ms=2 * DAY_MS),
        event("alice", "match_end", props={"won": True}, skew_ms=3_600_000),
        event("alice", "purchase", props={"sku": "gems", "price_usd": 4.99}),
        event("alice", "level_up", props={"level": 7}, ago_ms=10 * DAY_MS),
    ]
    bob = [event("bob", "session_start"), event("bob", "ad_view"), event("bob", "currency_earn", props={"amount": 50})]
    put(settings, *alice, *bob)

    run_available_now(spark, settings)

    for player, events in (("alice", alice), ("bob", bob)):
        p = profile(settings, player)
        assert p.feature_set == ",".join(online_union().full_names)  # player_activity_v1 and v2, together
        state = folded_directly(events, p.as_of, settings)
        assert p.features == {k: v for fs in online_union().sets for k, v in state.features(fs, p.as_of).items()}
    assert profile(settings, "alice").features["purchase_count_7d"] == 1


def test_the_same_player_id_in_two_games_is_folded_into_two_profiles(spark, settings):
    put(
        settings,
        event("mia", "session_start", game_id="alpha"),
        event("mia", "session_start", game_id="alpha"),
        event("mia", "session_start", game_id="beta"),
        event("mia", "purchase", props={"sku": "gems", "price_usd": 3.0}, game_id="beta"),
    )

    run_available_now(spark, settings)

    alpha, beta = profile(settings, "mia", "alpha"), profile(settings, "mia", "beta")
    assert (alpha.game_id, alpha.features["session_count_1d"], alpha.features["purchase_count_7d"]) == ("alpha", 2, 0)
    assert (beta.game_id, beta.features["session_count_1d"], beta.features["purchase_count_7d"]) == ("beta", 1, 1)


def test_profile_carries_the_hop_timestamps_of_the_newest_event(spark, settings):
    first, newest = event("carol", "session_start"), event("carol", "store_view")
    put(settings, first)
    put(settings, newest)

    run_available_now(spark, settings)

    ts = profile(settings, "carol").timestamps
    assert ts["received_at"] == newest["received_at"]
    assert ts["received_at"] <= ts["stream_at"] <= ts["processed_at"] <= ts["profile_written_at"]


def test_an_event_resent_in_a_later_batch_is_not_counted_again(spark, settings):
    original = event("dave", "purchase", props={"sku": "gems", "price_usd": 1.0})
    put(settings, original)
    run_available_now(spark, settings)

    put(settings, {**original, "received_at": now_ms()})
    run_available_now(spark, settings)

    assert profile(settings, "dave").features["purchase_count_7d"] == 1


def test_replaying_the_whole_stream_under_a_fresh_checkpoint_does_not_double_count(spark, settings, tmp_path):
    # without the per-player id list, only the stream-position watermark stands in the way
    settings = with_streaming(settings, dedup_ids=0)
    put(settings, event("erin", "session_start"), event("erin", "session_start"))
    run_available_now(spark, settings, checkpoint=str(tmp_path / "cp-a"))

    run_available_now(spark, settings, checkpoint=str(tmp_path / "cp-b"))

    assert profile(settings, "erin").features["session_count_1d"] == 2


def test_rerunning_a_micro_batch_whose_commit_was_lost_does_not_double_count(spark, settings, tmp_path):
    settings = with_streaming(settings, dedup_ids=0, max_records_per_batch=4)  # one record per shard per batch
    put(settings, *(event("frank", "match_end", props={"won": i % 2 == 0}) for i in range(3)))
    checkpoint = tmp_path / "cp"
    run_available_now(spark, settings, checkpoint=str(checkpoint))
    commits = sorted((checkpoint / "commits").glob("[0-9]*"), key=lambda p: int(p.name))
    for lost in (commits[-1], commits[-1].with_name(f".{commits[-1].name}.crc")):
        lost.unlink(missing_ok=True)  # as if the driver died after the online write, before the commit

    run_available_now(spark, settings, checkpoint=str(checkpoint))

    assert profile(settings, "frank").features["match_count_1d"] == 3
    assert last_report(settings)["replayed"] > 0, "the lost batch was not run again"


def test_a_purchase_with_a_negative_price_is_not_counted(spark, settings):
    put(
        settings,
        event("gina", "purchase", props={"sku": "gems", "price_usd": -5.0}),
        event("gina", "purchase", props={"sku": "gems", "price_usd": 2.0}),
    )

    run_available_now(spark, settings)

    p = profile(settings, "gina")
    assert p.features["purchase_count_7d"] == 1
    assert p.features["purchase_price_usd_sum_30d"] == 2.0


def test_a_late_out_of_order_event_lands_in_its_own_day_bucket(spark, settings):
    put(settings, event("hank", "session_start", ago_ms=1000))
    run_available_now(spark, settings)
    late = event("hank", "session_start", ago_ms=3 * DAY_MS)
    put(settings, late)

    run_available_now(spark, settings)

    p = profile(settings, "hank")
    assert (p.features["session_count_1d"], p.features["session_count_7d"]) == (1, 2)
    late_day = time.strftime("%Y-%m-%d", time.gmtime(late["event_time"] / 1000))
    assert p.state["days"][late_day]["session"][0] == 1


def test_a_running_query_shows_a_new_event_in_the_profile_within_seconds(spark, settings):
    query = start_profiles_stream(spark, settings, trigger_ms=0)
    try:
        time.sleep(1.0)  # let the query start before the event arrives
        put(settings, event("ivy", "store_view", ago_ms=0))
        deadline = time.monotonic() + 15
        found = None
        while found is None and time.monotonic() < deadline:
            assert query.exception() is None, query.exception()
            with open_online_store(settings.online_store) as store:
                found = store.get("demo", "ivy")
            time.sleep(0.05)
    finally:
        query.stop()
    assert found is not None, "the profile did not appear within 15 s"
    assert found.features["store_view_count_1d"] == 1


def test_every_written_profile_leaves_a_latency_sample(spark, settings):
    put(settings, event("jack", "session_start"), event("kate", "session_start"))

    run_available_now(spark, settings)

    samples = read_latency_samples(settings)
    assert len(samples) == 2 and all(ms >= 0 for ms in samples)
    print("event→profile latency (available-now, includes query start):", summarise_latency(samples))


def last_report(settings: Settings) -> dict[str, Any]:
    return read_latency_reports(settings)[-1]


def test_checkpoint_defaults_under_the_lake_checkpoints(spark, settings):
    put(settings, event("liam", "session_start"))

    run_available_now(spark, settings)

    assert (Path(settings.lake.checkpoints) / "profiles" / "commits").is_dir()


def test_the_erasure_list_is_re_read_as_soon_as_the_log_has_a_new_commit(spark, settings: Settings) -> None:
    from datetime import UTC, datetime

    from pipelines.erasure_list import ERASURE_LOG_DDL, ErasedPlayers, erasure_log_path, player_digest

    path = erasure_log_path(settings)
    erased = ErasedPlayers(settings, path)
    before = erased.current(spark)

    def erase(player: str) -> None:
        row = ("e1", datetime.now(UTC), "demo", player_digest("demo", player), "online_store", 1, "{}")
        spark.createDataFrame([row], ERASURE_LOG_DDL).write.format("delta").mode("append").save(path)

    erase("p1")
    first = erased.current(spark)
    erase("p2")

    assert before == frozenset()
    assert first == {player_digest("demo", "p1")}
    assert erased.current(spark) == {player_digest("demo", "p1"), player_digest("demo", "p2")}
