"""Embedded online store: one SQLite row per player, upserted only by a newer version.

A player is the pair ``(game_id, player_id)``, so that is the table's primary key: the same
player id in two games is two rows, and a newer version in one game never blocks a write in
the other.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from features.config import SqliteOnlineStoreConfig
from features.contract import now_ms
from features.errors import OnlineStoreError
from features.online.base import OnlineStore, Profile, decode_profile, encode_profile
from features.sqlite_files import ThreadLocalSqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS profiles (
    game_id TEXT NOT NULL,
    player_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (game_id, player_id)
) WITHOUT ROWID;
"""


class SqliteOnlineStore(OnlineStore):
    def __init__(self, config: SqliteOnlineStoreConfig):
        self.config = config
        self._db = ThreadLocalSqlite(config.path, "NORMAL", timeout_s=10, schema=_SCHEMA)
        self._refuse_player_only_file()

    def _refuse_player_only_file(self) -> None:
        """A file made before profiles were per game has a table keyed by ``player_id`` alone,
        which ``CREATE TABLE IF NOT EXISTS`` leaves as it is: say so now rather than fail on
        the first write."""
        columns = {row[1] for row in self._db.conn.execute("PRAGMA table_info(profiles)")}
        if "game_id" not in columns:
            self._db.close()
            raise OnlineStoreError(
                f"the online store {self.config.path} is keyed by player_id alone (made before profiles "
                "were per (game_id, player_id)): delete it and replay the stream into a new one "
                "(`playerpulse stream profiles --available-now` rebuilds every profile)"
            )

    def put(self, profiles: Sequence[Profile]) -> int:
        if not profiles:
            return 0
        written_at = now_ms()
        rows = []
        for p in profiles:
            p.timestamps["profile_written_at"] = written_at
            rows.append((p.game_id, p.player_id, p.version, encode_profile(p)))
        conn = self._db.conn
        try:
            before = conn.total_changes
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO profiles (game_id, player_id, version, body) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (game_id, player_id) DO UPDATE SET version = excluded.version, body = excluded.body "
                "WHERE excluded.version > profiles.version",
                rows,
            )
            conn.execute("COMMIT")
            return conn.total_changes - before
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise OnlineStoreError(f"could not write profiles to {self.config.path}: {exc}") from exc

    def get(self, game_id: str, player_id: str) -> Profile | None:
        row = self._db.conn.execute(
            "SELECT body FROM profiles WHERE game_id = ? AND player_id = ?", (game_id, player_id)
        ).fetchone()
        return decode_profile(row[0]) if row else None

    def delete(self, game_id: str, player_id: str) -> bool:
        cur = self._db.conn.execute("DELETE FROM profiles WHERE game_id = ? AND player_id = ?", (game_id, player_id))
        return cur.rowcount > 0

    def count(self) -> int:
        return int(self._db.conn.execute("SELECT COUNT(*) FROM profiles").fetchone()[0])

    def close(self) -> None:
        self._db.close()
