"""The embedded online store's own schema: profiles keyed by (game_id, player_id)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from features.config import SqliteOnlineStoreConfig
from features.errors import OnlineStoreError
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
