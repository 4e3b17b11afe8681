"""One SQLite file opened per thread, in WAL mode: what every embedded backend shares.

A ``sqlite3.Connection`` must not be used by two threads at once; the collector's writer
thread, serving threads and Spark's Python workers each get their own connection to the
same file, and WAL lets readers proceed while one writer commits.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Literal


class ThreadLocalSqlite:
    def __init__(
        self,
        path: str,
        synchronous: Literal["FULL", "NORMAL"],
        timeout_s: float,
        schema: str | None = None,
        mmap_bytes: int = 0,
    ):
        self.path = path
        self.synchronous = synchronous
        self.timeout_s = timeout_s
        self.mmap_bytes = mmap_bytes
        """``PRAGMA mmap_size`` of each connection: reads up to that far into the file map it
        instead of copying its pages through ``read`` calls into the connection's own cache."""
        self._local = threading.local()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if schema:
            self.conn.executescript(schema)

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (autocommit mode: transactions are explicit)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            if self.mmap_bytes:
                conn.execute(f"PRAGMA mmap_size={int(self.mmap_bytes)}")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection (others close with their threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
