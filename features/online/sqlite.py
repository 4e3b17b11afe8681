"""Embedded online store: one SQLite row per player, upserted only by a newer version.

A player is the pair ``(game_id, player_id)``, so that is the table's primary key: the same
player id in two games is two rows, and a newer version in one game never blocks a write in
the other.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from features.config import SqliteOnlineStoreConfig
from features.contract import now_ms
from features.errors import OnlineStoreError, OnlineStoreTimeout
from features.online.base import (
    EncodedProfileStore,
    Profile,
    encode_profile,
    expires_at_s,
)
from features.sqlite_files import ThreadLocalSqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS profiles (
    game_id TEXT NOT NULL,
    player_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    body BLOB NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (game_id, player_id)
) WITHOUT ROWID;
"""
_EXPIRY_INDEX = "CREATE INDEX IF NOT EXISTS profiles_expires_at ON profiles (expires_at) WHERE expires_at IS NOT NULL"
_UNEXPIRED = "(expires_at IS NULL OR expires_at > ?)"
MMAP_BYTES = 1 << 30
"""Each connection maps up to 1 GiB of the file: a profile spans several overflow pages, and
a point read of a mapped file costs about half the CPU of one read through SQLite's page cache
(2 MB per connection, so most of a large store's reads miss it). The map is the OS page cache,
shared by every connection; it costs address space, not memory."""


class SqliteOnlineStore(EncodedProfileStore):
    def __init__(self, config: SqliteOnlineStoreConfig, read_timeout_ms: float | None = None):
        self.config = config
        self._read_timeout_s = read_timeout_ms / 1000 if read_timeout_ms is not None else None
        # a lock wait counts against the read budget too
        timeout_s = min(10.0, self._read_timeout_s) if self._read_timeout_s is not None else 10.0
        self._db = ThreadLocalSqlite(config.path, "NORMAL", timeout_s=timeout_s, schema=_SCHEMA, mmap_bytes=MMAP_BYTES)
        self._refuse_player_only_file()
        self._add_expiry_column()

    def _add_expiry_column(self) -> None:
        """Files made before profiles could expire lack ``expires_at``; their rows never expire
        until rewritten."""
        columns = {row[1] for row in self._db.conn.execute("PRAGMA table_info(profiles)")}
        if "expires_at" not in columns:
            self._db.conn.execute("ALTER TABLE profiles ADD COLUMN expires_at INTEGER")
        self._db.conn.execute(_EXPIRY_INDEX)

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
            expires = expires_at_s(p, self.config.idle_expiry_days, written_at)
            if expires is not None and expires * 1000 <= written_at:
                continue  # expired already (a replay of a long-idle player): nothing to serve
            p.timestamps["profile_written_at"] = written_at
            rows.append((p.game_id, p.player_id, p.version, encode_profile(p), expires))
        if not rows:
            return 0
        conn = self._db.conn
        try:
            before = conn.total_changes
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO profiles (game_id, player_id, version, body, expires_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (game_id, player_id) DO UPDATE SET version = excluded.version, body = excluded.body, "
                "expires_at = excluded.expires_at WHERE excluded.version > profiles.version",
                rows,
            )
            conn.execute("COMMIT")
            return conn.total_changes - before
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise OnlineStoreError(f"could not write profiles to {self.config.path}: {exc}") from exc

    def _body(self, game_id: str, player_id: str) -> bytes | None:
        """With a read budget, a lock wait or a read that passes it is ``OnlineStoreTimeout``
        (the connection's busy timeout is the budget; a progress handler cuts a long read)."""
        budget = self._read_timeout_s
        conn = None
        try:
            conn = self._db.conn
            if budget is not None:
                deadline = time.monotonic() + budget
                conn.set_progress_handler(lambda: time.monotonic() > deadline, 100)
            row = conn.execute(
                f"SELECT body FROM profiles WHERE game_id = ? AND player_id = ? AND {_UNEXPIRED}",
                (game_id, player_id, now_ms() // 1000),
            ).fetchone()
        except sqlite3.OperationalError as exc:
            if budget is not None and ("interrupted" in str(exc) or "locked" in str(exc)):
                raise OnlineStoreTimeout(f"reading a profile from {self.config.path} took over {budget:g} s") from exc
            raise OnlineStoreError(f"could not read a profile from {self.config.path}: {exc}") from exc
        except sqlite3.Error as exc:
            raise OnlineStoreError(f"could not read a profile from {self.config.path}: {exc}") from exc
        finally:
            if budget is not None and conn is not None:
                conn.set_progress_handler(None, 0)
        return row[0] if row else None

    def delete(self, game_id: str, player_id: str) -> bool:
        cur = self._db.conn.execute("DELETE FROM profiles WHERE game_id = ? AND player_id = ?", (game_id, player_id))
        return cur.rowcount > 0

    def count(self) -> int:
        """Stored profiles not yet expired."""
        sql = f"SELECT COUNT(*) FROM profiles WHERE {_UNEXPIRED}"
        return int(self._db.conn.execute(sql, (now_ms() // 1000,)).fetchone()[0])

    def sweep_expired(self, now_ms: int) -> int:
        cur = self._db.conn.execute("DELETE FROM profiles WHERE expires_at <= ?", (now_ms // 1000,))
        return cur.rowcount

    def close(self) -> None:
        self._db.close()
