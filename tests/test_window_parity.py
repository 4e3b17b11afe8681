"""Streaming = serving = the definitions, for every operation at every window resolution.

Messy events (skewed clocks, late and re-sent copies, quarantined rows, bursts within minutes,
equal timestamps) are folded as the streaming job folds them, and the features read back at
many request times, including minutes after the last event when short windows have slid, must
equal ``parity_sets.expected_features``, which reads the definitions straight off the events.
The batch side of the same comparison is ``tests/test_feature_parity.py`` (it needs Spark).
"""

from __future__ import annotations

import json
from datetime import date

import pytest
from fastapi.testclient import TestClient
from parity_sets import PARITY_SET, assert_same_features, clean_events, corrected_ms, expected_features, messy_events

from features.config import DEVELOPMENT_KEYS, Settings
from features.contract import now_ms
from features.definitions import online_feature_sets
from features.online import open_online_store
from features.profile_state import ProfileState
from features.windows import DAY_MS, MINUTE_MS, TILE_MS
from pipelines.profile_updates import UpdateContext, update_players
from serving.app import create_app

PLAYERS = (("alpha", "p1"), ("alpha", "p2"), ("beta", "p1"))
SERVE = {"Authorization": f"Bearer {DEVELOPMENT_KEYS['serve']}"}


def _by_player(events):
    out = {}
    for e in events:
        out.setdefault((e["game_id"], e["player_id"]), []).append(e)
    return out


def _request_times(times: list[int]) -> list[int]:
    """Around every kind of boundary: each event, a millisecond later, the tile and day
    boundaries after it, and minutes to days after the last one."""
    picked = set()
    for t in times[::3]:
        tile_end = (t // TILE_MS + 1) * TILE_MS
        picked |= {t, t + 1, tile_end - 1, tile_end, tile_end + 10 * MINUTE_MS, (t // DAY_MS + 1) * DAY_MS - 1}
    last = max(times)
    picked |= {last + m * MINUTE_MS for m in (1, 4, 7, 14, 16, 59, 61, 24 * 60 + 3)} | {last + 8 * DAY_MS}
    return sorted(picked)


def test_the_fold_read_at_any_time_equals_the_definitions_for_every_operation_and_resolution():
    events = messy_events(PLAYERS, date(2026, 11, 1), days=9, seed=11)
    checked = 0
    for player, evs in _by_player(events).items():
        clean = clean_events(evs)
        for as_of in _request_times([t for t, _ in clean]):
            state = ProfileState()
            for e in evs:  # in the order received, as the stream delivers them
                if corrected_ms(e) <= as_of:
                    state.apply(PARITY_SET, e, corrected_ms(e), 10**6)
            want = expected_features(PARITY_SET, [(t, e) for t, e in clean if t <= as_of], as_of)
            assert_same_features(PARITY_SET, state.features(PARITY_SET, as_of), want, (player, as_of))
            checked += 1
    assert checked > 200


def test_windows_of_minutes_slide_while_the_player_is_idle():
    t = 1_790_000_000_000 // TILE_MS * TILE_MS  # a tile boundary
    state = ProfileState()
    state.apply(PARITY_SET, {"event_id": "a", "event_type": "store_view", "properties": {}}, t + MINUTE_MS, 10)
    counts = [state.features(PARITY_SET, t + m * MINUTE_MS)["store_view_count_15m"] for m in (1, 14, 15, 16, 59, 60)]
    assert counts == [1, 1, 0, 0, 0, 0], "15 minutes as of 00:15 covers the 00:05, 00:10 and 00:15 tiles only"
    assert state.features(PARITY_SET, t + 59 * MINUTE_MS)["store_view_count_1h"] == 1
    assert state.features(PARITY_SET, t + 60 * MINUTE_MS)["store_view_count_1h"] == 0


def _stream_rows(events):
    return [
        {
            **e,
            "properties": json.dumps(e["properties"]),
            "stream_shard": "0",
            "stream_position": str(i),
            "stream_at": None,
        }
        for i, e in enumerate(events)
    ]


def _shifted_to_now(events, minutes_ago: int):
    """The events moved in time so that the last one happened ``minutes_ago`` minutes ago."""
    shift = now_ms() - minutes_ago * MINUTE_MS - max(corrected_ms(e) for e in events)
    shift -= shift % DAY_MS  # whole days: keep each event's time of day, so bursts stay at day ends
    moved = []
    for e in events:
        sent = e["sent_at"] + shift if e.get("sent_at") is not None else None
        moved.append(
            {**e, "event_time": e["event_time"] + shift, "sent_at": sent, "received_at": e["received_at"] + shift}
        )
    return moved


def _fold_through_the_store(settings: Settings, events, sets, players) -> None:
    """What the streaming job does with one micro-batch holding all of ``events``."""
    ctx = UpdateContext(settings.online_store.model_dump_json(), tuple(sets), 30, 2000, "cp", 0)
    rows = _stream_rows(events)
    batch = [(key, [r for r in rows if (r["game_id"], r["player_id"]) == key]) for key in players]
    with open_online_store(settings.online_store) as store:
        update_players(store, batch, ctx)


SERVED = (("demo", "p1"), ("demo", "p2"), ("other", "p1"))
"""The serve key of game ``demo`` reads its two players; ``other``'s p1 is another player."""


@pytest.mark.parametrize("minutes_ago", [2, 7, 16, 61])
def test_the_profile_api_serves_every_online_set_as_of_the_request_time(settings: Settings, minutes_ago: int):
    """Profiles written by the streaming fold, read minutes later: the 15-minute and 1-hour
    windows have slid since the write, and the API shows them as they are now."""
    events = _shifted_to_now(messy_events(SERVED, date(2026, 11, 1), days=12, seed=5), minutes_ago)
    online = online_feature_sets()
    _fold_through_the_store(settings, events, online, SERVED)
    by_player = _by_player(events)
    with TestClient(create_app(settings)) as client:
        for player in ("p1", "p2"):
            body = client.get(f"/v1/players/{player}/profile", headers=SERVE).json()
            assert body["as_of"] >= body["written_as_of"]
            clean = clean_events(by_player[("demo", player)])
            for fs in online:
                want = expected_features(fs, clean, body["as_of"])
                assert_same_features(fs, body["features"], want, (player, fs.full_name))


def test_a_streamed_profile_read_later_equals_the_definitions_for_every_operation(settings: Settings):
    events = _shifted_to_now(messy_events(SERVED, date(2026, 11, 1), days=12, seed=9), minutes_ago=3)
    _fold_through_the_store(settings, events, (PARITY_SET,), SERVED)
    by_player = _by_player(events)
    with open_online_store(settings.online_store) as store:
        profiles = {key: store.get(*key) for key in SERVED}
    for key, profile in profiles.items():
        state = ProfileState.from_dict(profile.state)
        clean = clean_events(by_player[key])
        for later in (0, 4, 13, 58, 24 * 60 + 1):
            as_of = profile.as_of + later * MINUTE_MS
            want = expected_features(PARITY_SET, clean, as_of)
            assert_same_features(PARITY_SET, state.features(PARITY_SET, as_of), want, (key, later))


def test_an_idle_players_short_windows_are_served_as_of_now_not_as_of_the_last_write(settings: Settings):
    from features.definitions import PLAYER_ACTIVITY_V2
    from features.online import Profile

    two_hours_ago = now_ms() - 120 * MINUTE_MS
    state = ProfileState()
    state.apply(PLAYER_ACTIVITY_V2, {"event_id": "a", "event_type": "store_view"}, two_hours_ago, 10)
    written = state.features(PLAYER_ACTIVITY_V2, two_hours_ago)
    assert (written["store_view_count_15m"], written["store_view_count_1h"]) == (1, 1)
    profile = Profile(
        game_id="demo",
        player_id="idle",
        version=1,
        as_of=two_hours_ago,
        features=written,
        state=state.to_dict(),
        feature_set=PLAYER_ACTIVITY_V2.full_name,
    )
    with open_online_store(settings.online_store) as store:
        store.put([profile])
    with TestClient(create_app(settings)) as client:
        body = client.get("/v1/players/idle/profile", headers=SERVE).json()
    assert body["written_as_of"] == two_hours_ago and body["as_of"] >= two_hours_ago + 120 * MINUTE_MS
    got = body["features"]
    assert (got["store_view_count_15m"], got["store_view_count_1h"], got["store_view_count_7d"]) == (0, 0, 1)
    assert got["minutes_since_last_store_view"] >= 120
