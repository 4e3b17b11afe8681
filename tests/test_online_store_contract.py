"""What every ``OnlineStore`` backend promises the streaming job and serving.

Each test runs against the embedded SQLite store and against ``DynamoDBOnlineStore`` over HTTP
on the session's local server, each time with a fresh, empty table.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from features.config import DynamoDBOnlineStoreConfig, SqliteOnlineStoreConfig
from features.contract import now_ms
from features.online import OnlineStore, Profile, open_online_store
from features.online.base import FoldedState, ScoringProfile, scoring_profile

IDLE_DAYS = 30
"""Whole days, so the test's epoch-ms arithmetic stays integral."""
DAY_MS = 86_400_000


def _open(request: pytest.FixtureRequest, tmp_path: Path, idle_expiry_days: float | None) -> OnlineStore:
    config: SqliteOnlineStoreConfig | DynamoDBOnlineStoreConfig
    if request.param == "sqlite":
        config = SqliteOnlineStoreConfig(path=str(tmp_path / "online.db"), idle_expiry_days=idle_expiry_days)
    else:
        config = DynamoDBOnlineStoreConfig(
            table_name=f"profiles-{uuid.uuid4().hex[:12]}",
            endpoint_url=request.getfixturevalue("aws_endpoint"),
            create_if_missing=True,
            idle_expiry_days=idle_expiry_days,
        )
    return open_online_store(config)


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    with _open(request, tmp_path, None) as s:
        yield s


@pytest.fixture(params=["sqlite", "dynamodb"])
def expiring_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    """Profiles expire after ``IDLE_DAYS`` without events."""
    with _open(request, tmp_path, IDLE_DAYS) as s:
        yield s


def last_seen(player_id: str, received_at: int, version: int = 1) -> Profile:
    """A profile whose latest event reached the collector at ``received_at``."""
    p = profile(player_id, version)
    p.timestamps["received_at"] = received_at
    return p


def profile(player_id: str = "p-1", version: int = 1, game_id: str = "demo") -> Profile:
    return Profile(
        game_id=game_id,
        player_id=player_id,
        version=version,
        as_of=1_700_000_000_000 + version,
        features={"sessions_7d": 3, "spend_30d_usd": 4.99, "days_since_purchase": None},
        state={"recent_event_ids": ["e1", "e2"], "levels": {"max": 7}},
        timestamps={"event_time": 1_700_000_000_000, "processed_at": 1_700_000_000_500},
        feature_set="engagement_v1",
    )


def _without_written_at(p: Profile) -> Profile:
    timestamps = {k: v for k, v in p.timestamps.items() if k != "profile_written_at"}
    return Profile(**{**{f: getattr(p, f) for f in p.__struct_fields__}, "timestamps": timestamps})


def test_a_put_profile_reads_back_unchanged(store: OnlineStore) -> None:
    store.put([profile()])

    got = store.get("demo", "p-1")

    assert got is not None
    assert _without_written_at(got) == _without_written_at(profile())


def folded(player_id: str = "p-1", game_id: str = "demo") -> Profile:
    """A profile whose state is ``ProfileState.to_dict``'s, plus a key ``ProfileState`` ignores."""
    p = profile(player_id, game_id=game_id)
    p.state = {
        "days": {"2026-01-02": {"session": [2, 0.0, None], "level": [1, 7.0, 7.0]}},
        "last": {"event": 1_700_000_000_000},
        "seen": ["e1", "e2"],
        "watermark": {"stream_at": 5},
    }
    return p


def test_get_scoring_is_what_a_prediction_reads_of_get(store: OnlineStore) -> None:
    store.put([folded(), profile("p-2")])

    for player in ("p-1", "p-2"):
        got, stored = store.get_scoring("demo", player), store.get("demo", player)
        assert got is not None and stored is not None
        assert got == scoring_profile(stored)
    got = store.get_scoring("demo", "p-1")
    assert got == ScoringProfile(
        FoldedState({"2026-01-02": {"session": [2, 0.0, None], "level": [1, 7.0, 7.0]}}, {"event": 1_700_000_000_000}),
        got.timestamps,
    )
    assert type(got.state.days["2026-01-02"]["session"][0]) is int  # counts stay ints
    assert set(got.timestamps) == {"event_time", "processed_at", "profile_written_at"}


def test_get_scoring_of_an_unknown_or_other_games_player_is_none(store: OnlineStore) -> None:
    store.put([folded(game_id="other")])

    assert store.get_scoring("demo", "p-1") is None
    assert store.get_scoring("demo", "nobody") is None
    assert store.get_scoring("other", "p-1") is not None


def test_put_returns_how_many_profiles_were_written(store: OnlineStore) -> None:
    assert store.put([profile("p-1"), profile("p-2"), profile("p-3")]) == 3


def test_put_stamps_profile_written_at_on_the_stored_profile(store: OnlineStore) -> None:
    before = now_ms()
    store.put([profile()])
    after = now_ms()

    got = store.get("demo", "p-1")

    assert got is not None
    assert before <= got.timestamps["profile_written_at"] <= after


def test_a_newer_version_replaces_the_stored_profile(store: OnlineStore) -> None:
    store.put([profile(version=1)])

    assert store.put([profile(version=2)]) == 1
    assert store.get("demo", "p-1").version == 2  # type: ignore[union-attr]


def test_an_older_version_never_replaces_a_newer_one(store: OnlineStore) -> None:
    store.put([profile(version=5)])

    assert store.put([profile(version=4)]) == 0
    assert store.get("demo", "p-1").version == 5  # type: ignore[union-attr]


def test_an_equal_version_is_not_written_again(store: OnlineStore) -> None:
    store.put([profile(version=5)])
    first = store.get("demo", "p-1")
    changed = profile(version=5)
    changed.features["sessions_7d"] = 99

    assert store.put([changed]) == 0
    assert store.get("demo", "p-1") == first


def test_only_the_profiles_with_a_newer_version_count_as_written(store: OnlineStore) -> None:
    store.put([profile("p-1", 3), profile("p-2", 3)])

    assert store.put([profile("p-1", 2), profile("p-2", 4), profile("p-3", 1)]) == 2
    assert {pid: store.get("demo", pid).version for pid in ("p-1", "p-2", "p-3")} == {  # type: ignore[union-attr]
        "p-1": 3,
        "p-2": 4,
        "p-3": 1,
    }


def test_two_versions_of_one_player_in_one_batch_leave_the_newest(store: OnlineStore) -> None:
    store.put([profile(version=2), profile(version=1)])

    assert store.get("demo", "p-1").version == 2  # type: ignore[union-attr]


def test_put_of_no_profiles_writes_nothing(store: OnlineStore) -> None:
    assert store.put([]) == 0
    assert store.count() == 0


def test_get_of_an_unknown_player_is_none(store: OnlineStore) -> None:
    assert store.get("demo", "nobody") is None


def test_get_many_returns_the_stored_players_only(store: OnlineStore) -> None:
    store.put([profile("p-1"), profile("p-2")])

    got = store.get_many([("demo", "p-1"), ("demo", "nobody"), ("demo", "p-2")])

    assert sorted(got) == [("demo", "p-1"), ("demo", "p-2")]
    assert got[("demo", "p-2")].player_id == "p-2"


def test_delete_erases_the_profile_and_reports_there_was_one(store: OnlineStore) -> None:
    store.put([profile()])

    assert store.delete("demo", "p-1") is True
    assert store.get("demo", "p-1") is None


def test_delete_of_an_absent_profile_reports_false(store: OnlineStore) -> None:
    store.put([profile()])
    store.delete("demo", "p-1")

    assert store.delete("demo", "p-1") is False


def test_a_deleted_player_can_be_written_again_from_any_version(store: OnlineStore) -> None:
    store.put([profile(version=9)])
    store.delete("demo", "p-1")

    assert store.put([profile(version=1)]) == 1


def test_count_is_the_number_of_stored_players(store: OnlineStore) -> None:
    store.put([profile("p-1"), profile("p-2"), profile("p-3")])
    store.put([profile("p-1", version=2)])
    store.delete("demo", "p-3")

    assert store.count() == 2


def test_count_of_an_empty_store_is_zero(store: OnlineStore) -> None:
    assert store.count() == 0


# --- a player is the pair (game_id, player_id) ---------------------------------------------------


def test_the_same_player_id_in_two_games_is_two_independent_profiles(store: OnlineStore) -> None:
    store.put([profile("p-1", version=5, game_id="alpha")])

    assert store.put([profile("p-1", version=2, game_id="beta")]) == 1  # alpha's newer version is not beta's
    alpha, beta = store.get("alpha", "p-1"), store.get("beta", "p-1")
    assert (alpha.game_id, alpha.version) == ("alpha", 5)  # type: ignore[union-attr]
    assert (beta.game_id, beta.version) == ("beta", 2)  # type: ignore[union-attr]
    assert store.count() == 2


def test_a_player_id_of_one_game_is_unknown_in_another(store: OnlineStore) -> None:
    store.put([profile("p-1", game_id="alpha")])

    assert store.get("beta", "p-1") is None


def test_get_many_keys_each_profile_by_its_game_and_player(store: OnlineStore) -> None:
    store.put([profile("p-1", version=1, game_id="alpha"), profile("p-1", version=2, game_id="beta")])

    got = store.get_many([("alpha", "p-1"), ("beta", "p-1"), ("gamma", "p-1")])

    assert {key: p.version for key, p in got.items()} == {("alpha", "p-1"): 1, ("beta", "p-1"): 2}


def test_deleting_a_player_in_one_game_leaves_the_same_id_in_another(store: OnlineStore) -> None:
    store.put([profile("p-1", game_id="alpha"), profile("p-1", game_id="beta")])

    assert store.delete("alpha", "p-1") is True
    assert store.get("alpha", "p-1") is None
    assert store.get("beta", "p-1") is not None


def test_a_player_idle_for_less_than_the_expiry_is_served(expiring_store: OnlineStore) -> None:
    expiring_store.put([last_seen("p-1", now_ms() - (IDLE_DAYS - 1) * DAY_MS)])

    assert expiring_store.get("demo", "p-1") is not None


def test_a_profile_whose_player_is_idle_past_the_expiry_is_not_written(expiring_store: OnlineStore) -> None:
    """A replay from the start of the stream does not bring a long-idle player back."""
    written = expiring_store.put([last_seen("p-1", now_ms() - (IDLE_DAYS + 1) * DAY_MS)])

    assert written == 0
    assert expiring_store.get("demo", "p-1") is None


def test_a_stored_profile_stops_being_read_once_its_player_is_idle_past_the_expiry(
    expiring_store: OnlineStore,
) -> None:
    """DynamoDB's TTL deletes late and SQLite's sweep runs daily: reads never serve the stale row."""
    expiring_store.put([last_seen("p-1", now_ms() - IDLE_DAYS * DAY_MS + 500), last_seen("p-2", now_ms())])
    assert expiring_store.get("demo", "p-1") is not None

    time.sleep(1.6)  # TTLs are whole seconds, rounded up

    assert expiring_store.get("demo", "p-1") is None
    assert expiring_store.get_scoring("demo", "p-1") is None
    assert set(expiring_store.get_many([("demo", "p-1"), ("demo", "p-2")])) == {("demo", "p-2")}
    assert expiring_store.count() == 1


def test_without_an_expiry_a_long_idle_player_is_kept(store: OnlineStore) -> None:
    store.put([last_seen("p-1", now_ms() - 3650 * DAY_MS)])

    assert store.get("demo", "p-1") is not None
