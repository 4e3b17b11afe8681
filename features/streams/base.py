"""The stream interface: durable, sharded, ordered within a shard, read by position ranges."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class StreamRecord:
    """One record to put: a compressed batch of events of one partition key (a player)."""

    partition_key: str
    data: bytes


@dataclass(frozen=True)
class ReadRecord:
    shard: str
    position: str
    """Position within the shard; positions of one shard compare as integers."""
    data: bytes
    stream_at: int | None = None
    """Epoch ms at which the stream holds the record durably, by the stream's own stamp (taken
    after the write: SQLite's commit, Kinesis' ``ApproximateArrivalTimestamp``); ``None`` when
    the backend has none, and readers then use the collector's stamp inside the record."""


class Stream(ABC):
    """A partitioned log. ``put`` returns only once every record is durable (or raises
    ``StreamUnavailable`` having written none that the caller must not retry); readers ask for
    the latest positions and then read any ``(after, upto]`` range of a shard, any number of
    times, getting the same records each time."""

    @abstractmethod
    def put(self, records: Sequence[StreamRecord]) -> None: ...

    @abstractmethod
    def shards(self) -> list[str]: ...

    def shard_families(self) -> list[list[str]]:
        """Shards grouped so that one partition key's records never span two groups, each
        group oldest shard first: a reader that reads a group in one task owns every player
        of it. Without resharding each shard is its own group; after a split or merge a
        player's records sit in the parent and then in a child (``KinesisStream``)."""
        return [[shard] for shard in self.shards()]

    @abstractmethod
    def latest_positions(self) -> dict[str, str | None]:
        """Shard → position of its newest record (``None`` for an empty shard)."""

    @abstractmethod
    def read(self, shard: str, after: str | None, upto: str, limit: int | None = None) -> list[ReadRecord]:
        """Records of ``shard`` with ``after < position <= upto`` (``after=None``: from the start)."""

    def read_all(self) -> Iterator[ReadRecord]:
        """Every record on the stream now, shard by shard, oldest first: a replay from the start
        (for checks, tests and backfills; jobs read ranges through the Spark source)."""
        for shard, upto in self.latest_positions().items():
            if upto is not None:
                yield from self.read(shard, None, upto)

    def position_after(self, shard: str, after: str | None, count: int) -> str | None:
        """Position of the ``count``-th record after ``after`` (or the newest, if fewer exist):
        how a reader bounds a micro-batch without fetching its data."""
        latest = self.latest_positions().get(shard)
        if latest is None or after == latest:
            return after
        records = self.read(shard, after, latest, limit=count)
        return records[-1].position if records else after

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
