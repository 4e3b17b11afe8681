"""Embedded dead-letter store on a SQLite file."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence

import msgspec

from features.config import SqliteDeadLetterConfig
from features.deadletter.base import DeadLetter, DeadLetterStore, names_player, player_pattern
from features.errors import StreamUnavailable
from features.sqlite_files import ThreadLocalSqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    body BLOB NOT NULL
);
"""
_decoder = msgspec.json.Decoder(DeadLetter)


class SqliteDeadLetterStore(DeadLetterStore):
    def __init__(self, config: SqliteDeadLetterConfig):
        self.config = config
        self._db = ThreadLocalSqlite(config.path, "FULL", timeout_s=5, schema=_SCHEMA)

    def put(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        conn = self._db.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO dead_letters (body) VALUES (?)", [(msgspec.json.encode(x),) for x in letters])
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StreamUnavailable(
                f"the dead-letter store at {self.config.path} could not take the batch: {exc}"
            ) from exc

    def read(self, after: str | None, limit: int) -> list[tuple[str, DeadLetter]]:
        rows = self._db.conn.execute(
            "SELECT seq, body FROM dead_letters WHERE seq > ? ORDER BY seq LIMIT ?", (int(after or 0), limit)
        )
        return [(str(seq), _decoder.decode(body)) for seq, body in rows]

    def erase(self, game_id: str, player_ids: Sequence[str]) -> int:
        """Delete the matching rows in one transaction; their ``seq`` is never reused
        (AUTOINCREMENT), so the positions kept still only grow."""
        pattern = re.compile(player_pattern(player_ids))
        conn = self._db.conn
        doomed = [
            (seq,)
            for seq, body in conn.execute("SELECT seq, body FROM dead_letters ORDER BY seq")
            if names_player(_decoder.decode(body), game_id, pattern)
        ]
        if doomed:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("DELETE FROM dead_letters WHERE seq = ?", doomed)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return len(doomed)

    def close(self) -> None:
        self._db.close()
