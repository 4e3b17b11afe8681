"""The embedded online store's own schema: profiles keyed by (game_id, player_id)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import pytest

from features.config import SqliteOnlineStoreConfig
from features.contract import now_ms
from features.errors import OnlineStoreError
from features.online.base import FoldedState, Profile, decode_scoring_profile, encode_profile
from features.online.sqlite import SqliteOnlineStore


def test_the_profiles_table_is_keyed_by_game_and_player(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    SqliteOnlineStore(SqliteOnlineStoreConfig(path=str(path))).close()

    with sqlite3.connect(path) as conn:
        key = [row[1] for row in sorted(conn.execute("PRAGMA table_info(profiles)"), key=lambda r: r[5]) if row[5]]

    assert key == ["game_id", "player_id"]


def test_a_file_keyed_by_player_id_alone_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE profiles (player_id TEXT PRIMARY KEY, version INTEGER, body BLOB) WITHOUT ROWID")

    with pytest.raises(OnlineStoreError, match=r"online\.db is keyed by player_id alone.*delete it and replay"):
        SqliteOnlineStore(SqliteOnlineStoreConfig(path=str(path)))


def test_the_sweep_deletes_the_rows_of_players_idle_past_the_expiry_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    now = now_ms()
    with SqliteOnlineStore(SqliteOnlineStoreConfig(path=str(path), idle_expiry_days=1)) as store:
        store.put([_seen("gone", now - 86_400_000 + 1_000), _seen("kept", now)])

        swept = store.sweep_expired(now + 3_000)

    with sqlite3.connect(path) as conn:
        rows = [r[0] for r in conn.execute("SELECT player_id FROM profiles")]
    assert (swept, rows) == (1, ["kept"])


def test_a_file_made_before_profiles_could_expire_gains_the_column_and_keeps_its_profiles(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE profiles (game_id TEXT NOT NULL, player_id TEXT NOT NULL, version INTEGER NOT NULL, "
            "body BLOB NOT NULL, PRIMARY KEY (game_id, player_id)) WITHOUT ROWID"
        )
        conn.execute("INSERT INTO profiles VALUES ('demo', 'old', 1, ?)", (encode_profile(_seen("old", 0)),))

    with SqliteOnlineStore(SqliteOnlineStoreConfig(path=str(path), idle_expiry_days=1)) as store:
        assert store.get("demo", "old") is not None
        assert store.sweep_expired(now_ms()) == 0


def _seen(player_id: str, received_at: int) -> Profile:
    return Profile(
        game_id="demo",
        player_id=player_id,
        version=1,
        as_of=received_at,
        features={},
        state={},
        timestamps={"received_at": received_at},
    )


def test_a_state_the_scoring_types_refuse_is_read_whole_and_left_for_the_prediction() -> None:
    """``decode_scoring_profile`` falls back to ``decode_profile`` (same errors); a state of
    another shape reaches the predictor as stored, which answers ``model_error`` on it."""
    base = {"game_id": "demo", "player_id": "p", "version": 1, "as_of": 1, "features": {}}
    odd = msgspec.json.encode({**base, "state": {"days": None, "last": {"event": 3}}, "timestamps": {"a": 1}})
    got = decode_scoring_profile(odd)
    assert got.state == FoldedState(None, {"event": 3}) and got.timestamps == {"a": 1}  # type: ignore[arg-type]
    with pytest.raises(msgspec.ValidationError):
        decode_scoring_profile(msgspec.json.encode({**base, "state": [], "timestamps": {}}))
