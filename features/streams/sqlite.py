"""Embedded stream on one SQLite file: WAL mode, fsync on commit, one row per record.

Each record's ``stream_at`` is stamped after its commit returned (the record is durable by
then): a second, small transaction without its own fsync sets it on the rows just written. It is
made durable by the next fsynced commit; after a crash in between, the column stays ``NULL``
and readers fall back to the collector's stamp inside the record.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import zlib
from collections.abc import Callable, Sequence

from features.config import SqliteStreamConfig
from features.errors import StreamUnavailable
from features.sqlite_files import ThreadLocalSqlite
from features.streams.base import ReadRecord, Stream, StreamRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    shard INTEGER NOT NULL,
    partition_key TEXT NOT NULL,
    data BLOB NOT NULL,
    stream_at INTEGER
);
CREATE INDEX IF NOT EXISTS records_by_shard ON records (shard, seq);
"""


def shard_of(partition_key: str, shards: int) -> int:
    return zlib.crc32(partition_key.encode()) % shards


class SqliteStream(Stream):
    """All of one partition key's records land in one shard, in put order. ``put`` is one
    transaction: every record is on disk (``synchronous=FULL``) or none is."""

    def __init__(self, config: SqliteStreamConfig):
        self.config = config
        self._db = ThreadLocalSqlite(config.path, "FULL", timeout_s=config.busy_timeout_ms / 1000, schema=_SCHEMA)
        columns = {row[1] for row in self._db.conn.execute("PRAGMA table_info(records)")}
        if "stream_at" not in columns:  # a stream file made before records carried the stamp
            try:
                self._db.conn.execute("ALTER TABLE records ADD COLUMN stream_at INTEGER")
            except sqlite3.OperationalError as exc:  # another process added it a moment ago
                if "duplicate column" not in str(exc):
                    raise

    def put(self, records: Sequence[StreamRecord]) -> None:
        if not records:
            return
        rows = [(shard_of(r.partition_key, self.config.shards), r.partition_key, r.data) for r in records]
        conn = self._db.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                cur = conn.executemany("INSERT INTO records (shard, partition_key, data) VALUES (?, ?, ?)", rows)
                last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StreamUnavailable(f"the SQLite stream at {self.config.path} could not take the batch: {exc}") from exc
        self._stamp(last - cur.rowcount, last)

    def _stamp(self, after: int, upto: int) -> None:
        """Set ``stream_at`` of rows ``(after, upto]`` (one put, contiguous under its write
        lock) to now, after their commit; a failure only costs the stamp, never the records."""
        conn = self._db.conn
        now = int(time.time() * 1000)
        try:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA synchronous=OFF")
                conn.execute("UPDATE records SET stream_at = ? WHERE seq > ? AND seq <= ?", (now, after, upto))
        finally:
            conn.execute(f"PRAGMA synchronous={self._db.synchronous}")

    def shards(self) -> list[str]:
        return [str(i) for i in range(self.config.shards)]

    def latest_positions(self) -> dict[str, str | None]:
        found = dict(self._db.conn.execute("SELECT shard, MAX(seq) FROM records GROUP BY shard").fetchall())
        return {s: (str(found[int(s)]) if int(s) in found else None) for s in self.shards()}

    def position_after(self, shard: str, after: str | None, count: int) -> str | None:
        row = self._db.conn.execute(
            "SELECT MAX(seq) FROM (SELECT seq FROM records WHERE shard = ? AND seq > ? ORDER BY seq LIMIT ?)",
            (int(shard), int(after) if after is not None else 0, count),
        ).fetchone()
        return str(row[0]) if row and row[0] is not None else after

    def read(self, shard: str, after: str | None, upto: str, limit: int | None = None) -> list[ReadRecord]:
        sql = "SELECT seq, data, stream_at FROM records WHERE shard = ? AND seq > ? AND seq <= ? ORDER BY seq"
        args: tuple[object, ...] = (int(shard), int(after) if after is not None else 0, int(upto))
        if limit is not None:
            sql += " LIMIT ?"
            args = (*args, limit)
        return [ReadRecord(shard, str(seq), bytes(data), at) for seq, data, at in self._db.conn.execute(sql, args)]

    def rewrite(self, partition_key: str, transform: Callable[[bytes], bytes | None]) -> tuple[int, int]:
        """Replace each record of ``partition_key`` by ``transform(data)``: new bytes are written
        in place (same ``seq``), ``None`` deletes the record, the same bytes leave it alone.
        Returns ``(rewritten, deleted)``; one transaction, so a reader sees all or none of it.

        Erasure uses it to drop one player's events from the retained log. Positions stay
        monotonic for readers: no record moves or gets a new ``seq``, a deleted ``seq`` is never
        handed out again (AUTOINCREMENT), and a reader's ``(after, upto]`` ranges simply find a
        gap. A reader replaying a range it had read before gets the rewritten records, which is
        the point."""
        conn = self._db.conn
        rewritten = deleted = 0
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                rows = conn.execute(
                    "SELECT seq, data FROM records WHERE shard = ? AND partition_key = ? ORDER BY seq",
                    (shard_of(partition_key, self.config.shards), partition_key),
                ).fetchall()
                for seq, data in rows:
                    new = transform(bytes(data))
                    if new is None:
                        conn.execute("DELETE FROM records WHERE seq = ?", (seq,))
                        deleted += 1
                    elif new != data:
                        conn.execute("UPDATE records SET data = ? WHERE seq = ?", (new, seq))
                        rewritten += 1
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            where = self.config.path
            raise StreamUnavailable(f"could not rewrite records in the SQLite stream at {where}: {exc}") from exc
        return rewritten, deleted

    def close(self) -> None:
        self._db.close()
