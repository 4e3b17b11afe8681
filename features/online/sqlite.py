"""Embedded online store: one SQLite row per player, upserted only by a newer version."""

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
    player_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    body BLOB NOT NULL
) WITHOUT ROWID;
"""


class SqliteOnlineStore(OnlineStore):
    def __init__(self, config: SqliteOnlineStoreConfig):
        self.config = config
        self._db = ThreadLocalSqlite(config.path, "NORMAL", timeout_s=10, schema=_SCHEMA)

    def put(self, profiles: Sequence[Profile]) -> int:
        if not profiles:
            return 0
        written_at = now_ms()
        rows = []
        for p in profiles:
            p.timestamps["profile_written_at"] = written_at
            rows.append((p.player_id, p.version, encode_profile(p)))
        conn = self._db.conn
        try:
            before = conn.total_changes
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO profiles (player_id, version, body) VALUES (?, ?, ?) "
                "ON CONFLICT (player_id) DO UPDATE SET version = excluded.version, body = excluded.body "
                "WHERE excluded.version > profiles.version",
                rows,
            )
            conn.execute("COMMIT")
            return conn.total_changes - before
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise OnlineStoreError(f"could not write profiles to {self.config.path}: {exc}") from exc

    def get(self, player_id: str) -> Profile | None:
        row = self._db.conn.execute("SELECT body FROM profiles WHERE player_id = ?", (player_id,)).fetchone()
        return decode_profile(row[0]) if row else None

    def delete(self, player_id: str) -> bool:
        cur = self._db.conn.execute("DELETE FROM profiles WHERE player_id = ?", (player_id,))
        return cur.rowcount > 0

    def count(self) -> int:
        return int(self._db.conn.execute("SELECT COUNT(*) FROM profiles").fetchone()[0])

    def close(self) -> None:
        self._db.close()
