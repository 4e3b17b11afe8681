"""What ``benchmarks/freshness.py`` watches while the load runs: profiles, and the job's backlog.

- ``poll_profiles`` runs in a process of its own (its reads take no GIL from the load
  generator, and the HTTP profile API is left out so that serving's cost does not distort the
  figure): it is told every acknowledged batch, ``(player, sent_ms, acked_ms)``, and reads the
  player's row of the online store's SQLite file (``read_shown``) until the profile's
  ``timestamps.received_at`` reaches the batch's send time. The collector stamps
  ``received_at`` after the send, and a player's next batch is sent a whole player cycle
  later, so that moment is the first read that shows the batch. Rather than spin, it re-reads
  pending players when SQLite's ``PRAGMA data_version`` says another connection committed
  (the job writes a few times per micro-batch), and checks each batch once as it arrives.
- ``BacklogSampler`` (a thread) counts, four times a second, the stream records past the
  offsets of the job's newest committed micro-batch (its checkpoint's ``commits/`` and
  ``offsets/``), and notes when each batch was planned and committed (the files' mtimes).
"""

from __future__ import annotations

import contextlib
import os
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from benchmarks.freshness_stats import parse_offsets

GAME = "demo"


@dataclass(frozen=True)
class Seen:
    """One acknowledged batch and the first profile read that showed it."""

    player: str
    sent_ms: int
    acked_ms: float
    seen_ms: float
    """When the read that showed it returned."""
    noticed_ms: float
    """When the poller noticed the commit that showed it (SQLite's ``data_version`` moved), or
    learnt of the batch if that was later: ``seen_ms`` minus the poller's own sweep."""
    timestamps: dict[str, int]
    """The profile's hop stamps at that read (those of this batch's events)."""
    batch: int | None
    """The micro-batch that folded it (``state.applied.batch``)."""


def newest_planned_ms(offsets: Path) -> float:
    """Epoch ms at which the job's newest micro-batch was planned (its ``offsets/N`` written),
    0 before the first."""
    try:
        ids = [int(name) for name in os.listdir(offsets) if name.isdigit()]
        return (offsets / str(max(ids))).stat().st_mtime_ns / 1e6 if ids else 0.0
    except (FileNotFoundError, ValueError):
        return 0.0


class _Applied(msgspec.Struct):
    batch: int | None = None


class _State(msgspec.Struct):
    applied: _Applied | None = None


class _Shown(msgspec.Struct):
    """What the poller decodes of a stored profile: its hop stamps and the micro-batch that
    wrote it (``state.applied.batch``); msgspec skips the rest of the body unbuilt."""

    timestamps: dict[str, int] = {}
    state: _State = msgspec.field(default_factory=_State)


_shown = msgspec.json.Decoder(_Shown)
_READ = "SELECT player_id, body FROM profiles WHERE game_id = ? AND player_id IN ({})"
IDLE_S = 0.005
"""The poller's pause when nothing happened: a few milliseconds against freshness of hundreds,
and each wake-up costs tens of microseconds of CPU on this VM."""
READ_CHUNK = 500
"""Players per query (SQLite allows 32,766 parameters; a few hundred keep each query short)."""


def read_shown(conn: sqlite3.Connection, players: list[str]) -> dict[str, _Shown]:
    """The stored profiles of ``players`` (game ``demo``), as ``_Shown``; absent players left out.

    The online store's own row, read as ``SqliteOnlineStore.get`` reads it (same table and key,
    same file), but for many players in one query and decoding only what the poller needs: read
    one at a time and decoded whole, the reads cost a quarter of a core at 5,000 events/s, taken
    from the job under test."""
    out: dict[str, _Shown] = {}
    for first in range(0, len(players), READ_CHUNK):
        chunk = players[first : first + READ_CHUNK]
        for player, body in conn.execute(_READ.format(",".join("?" * len(chunk))), (GAME, *chunk)):
            out[player] = _shown.decode(body)
    return out


def poll_profiles(store_path: str, checkpoint: str, inbox: Any, outbox: Any, pending_count: Any, stop: Any) -> None:
    """The poller process's body: ``inbox`` brings ``(player, sent_ms, acked_ms)``, ``outbox``
    gets ``(list of Seen fields, unresolved, reads, read_seconds)`` once ``stop`` is set.

    After a commit only the batches sent before the newest micro-batch was planned are
    re-read: a batch sent later reached the stream after that batch's range was fixed, so no
    write of it can show it. The sweep, and what the poller adds to the read hop, then stay
    the size of one micro-batch however far behind the job runs."""
    from features.online.sqlite import MMAP_BYTES

    conn = sqlite3.connect(store_path, isolation_level=None)  # reads only
    conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    offsets = Path(checkpoint) / "offsets"
    pending: dict[str, list[tuple[int, float]]] = {}
    seen: list[tuple] = []
    reads, read_s = 0, 0.0

    def check(players: list[str], noticed_ms: float) -> None:
        """Read ``players``' profiles; record the batches each shows."""
        nonlocal reads, read_s
        began = time.perf_counter()
        found = read_shown(conn, players)
        now_ms = time.time_ns() / 1e6
        reads += len(players)
        read_s += time.perf_counter() - began
        for player, profile in found.items():
            got = profile.timestamps.get("received_at") or 0
            waiting = pending.get(player, [])
            shown = [w for w in waiting if got >= w[0]]
            if not shown:
                continue
            applied = profile.state.applied.batch if profile.state.applied is not None else None
            for sent_ms, acked_ms in shown:
                seen.append((player, sent_ms, acked_ms, now_ms, max(noticed_ms, acked_ms), profile.timestamps, applied))
            rest = [w for w in waiting if got < w[0]]
            if rest:
                pending[player] = rest
            else:
                pending.pop(player, None)

    last_version = None
    while True:
        arrived = []
        while True:
            try:
                arrived.append(inbox.get_nowait())
            except queue.Empty:
                break
        for player, sent_ms, acked_ms in arrived:
            pending.setdefault(player, []).append((sent_ms, acked_ms))
        if arrived:
            check(list(dict.fromkeys(player for player, _, _ in arrived)), time.time_ns() / 1e6)
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version != last_version:
            last_version = version
            noticed = time.time_ns() / 1e6
            planned = newest_planned_ms(offsets)
            # oldest first, the likeliest to be in the commit
            due = [player for player, waiting in pending.items() if waiting[0][0] < planned]
            if due:
                check(due, noticed)
        waiting_now = sum(len(v) for v in pending.values())
        if waiting_now != pending_count.value:
            pending_count.value = waiting_now
        if stop.is_set() and not arrived:
            break
        if not arrived:
            time.sleep(IDLE_S)
    outbox.put((seen, pending_count.value, reads, read_s))
    conn.close()


@dataclass
class BacklogSample:
    at_ms: float
    records: int
    """Stream records past the newest committed micro-batch's end offsets."""
    committed: int | None
    """That batch's id (``None`` before the first commit)."""


@dataclass
class BacklogSampler:
    """Samples the job's backlog from the stream file and the job's checkpoint, in a thread."""

    stream_path: str
    shards: int
    checkpoint: Path
    every_s: float = 0.25
    samples: list[BacklogSample] = field(default_factory=list)
    planned_ms: dict[int, float] = field(default_factory=dict)
    """Batch id → mtime of its ``offsets/N`` (written once the batch's range is planned)."""
    committed_ms: dict[int, float] = field(default_factory=dict)
    """Batch id → mtime of its ``commits/N`` (written once the batch is done)."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _offsets: dict[int, dict[str, int | None]] = field(default_factory=dict)
    _conn: sqlite3.Connection | None = None

    def start(self) -> BacklogSampler:
        self._thread = threading.Thread(target=self._run, name="backlog-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def latest(self) -> BacklogSample | None:
        return self.samples[-1] if self.samples else None

    def _run(self) -> None:
        while not self._stop.is_set():
            # a file mid-rename or the stream not created yet: the next tick reads it
            with contextlib.suppress(OSError, sqlite3.Error, ValueError):
                self.sample()
            self._stop.wait(self.every_s)
        if self._conn is not None:
            self._conn.close()

    def _batches(self, log: str, into: dict[int, float]) -> list[int]:
        folder = self.checkpoint / log
        if not folder.is_dir():
            return []
        ids = sorted(int(name) for name in os.listdir(folder) if name.isdigit())
        for batch in ids:
            if batch not in into:
                into[batch] = (folder / str(batch)).stat().st_mtime_ns / 1e6
        return ids

    def sample(self) -> BacklogSample | None:
        if self._conn is None:
            if not Path(self.stream_path).exists():
                return None
            # read-only: the benchmark must not take the collector's write lock
            self._conn = sqlite3.connect(f"file:{self.stream_path}?mode=ro", uri=True, isolation_level=None)
        self._batches("offsets", self.planned_ms)
        committed = self._batches("commits", self.committed_ms)
        newest = committed[-1] if committed else None
        done: dict[str, int | None] = {}
        if newest is not None:
            if newest not in self._offsets:
                self._offsets[newest] = parse_offsets((self.checkpoint / "offsets" / str(newest)).read_text())
            done = self._offsets[newest]
        records = 0
        for shard in range(self.shards):
            after = done.get(str(shard)) or 0
            records += self._conn.execute(
                "SELECT COUNT(*) FROM records WHERE shard = ? AND seq > ?", (shard, after)
            ).fetchone()[0]
        sample = BacklogSample(time.time_ns() / 1e6, records, newest)
        self.samples.append(sample)
        return sample
