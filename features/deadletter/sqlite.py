"""Embedded dead-letter store on a SQLite file."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import msgspec

from features.config import SqliteDeadLetterConfig
from features.deadletter.base import DeadLetter, DeadLetterStore
from features.errors import StreamUnavailable

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
        self._local = threading.local()
        Path(config.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn.executescript(_SCHEMA)

    @property
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.config.path, timeout=5, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            self._local.conn = conn
        return conn

    def put(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        conn = self._conn
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
        rows = self._conn.execute(
            "SELECT seq, body FROM dead_letters WHERE seq > ? ORDER BY seq LIMIT ?", (int(after or 0), limit)
        )
        return [(str(seq), _decoder.decode(body)) for seq, body in rows]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
