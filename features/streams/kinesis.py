"""Amazon Kinesis Data Streams as the event stream (the cloud profile).

Positions are Kinesis sequence numbers: decimal strings that grow within a shard, so they
compare as integers exactly like the SQLite stream's row ids and the Spark source needs no
special case. Kinesis has no "newest position" call; ``latest_positions`` reads forward from
where it last stopped, and that bookmark is shared by every ``KinesisStream`` of the process
because the Spark source opens a fresh stream object for each micro-batch.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from features.config import KinesisStreamConfig
from features.errors import StreamUnavailable
from features.streams.base import ReadRecord, Stream, StreamRecord

MAX_RECORDS_PER_PUT = 500
MAX_BYTES_PER_PUT = 5 * 1024 * 1024
MAX_BYTES_PER_RECORD = 1024 * 1024
MAX_PARTITION_KEY_CHARS = 256
_GET_RECORDS_LIMIT = 10_000
_ITERATOR_TTL_S = 240.0
"""Kinesis iterators expire after 5 minutes; a cached one is reused only well inside that."""
_BACKOFF_BASE_S = 0.05
_BACKOFF_CAP_S = 2.0


def _sleep(seconds: float) -> None:
    """Indirection so that error-handling tests can skip the backoff waits."""
    time.sleep(seconds)


@dataclass
class _Tip:
    """Where the last walk to the end of a shard stopped."""

    position: str | None
    iterator: str | None
    fetched_at: float


_tips: dict[tuple[str | None, str, str, str], _Tip] = {}
_tips_lock = threading.Lock()


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


class KinesisStream(Stream):
    """One Kinesis data stream; a record goes to the shard owning the MD5 of its partition key,
    so one player's batches stay in one shard, in put order (except that a record retried
    after a partial failure lands after those accepted on the first attempt)."""

    def __init__(self, config: KinesisStreamConfig):
        self.config = config
        self.name = config.stream_name
        self._client = boto3.client(
            "kinesis",
            region_name=config.region,
            endpoint_url=config.endpoint_url,
            config=Config(retries={"mode": "standard"}, connect_timeout=5, read_timeout=30),
        )
        self._tip_scope = (config.endpoint_url, config.region, config.stream_name)
        if config.create_if_missing:
            self._ensure_stream()

    # --- errors -------------------------------------------------------------------------------

    def _unavailable(self, action: str, exc: Exception) -> StreamUnavailable:
        """Turn a boto error into a message that says what to do, not just what failed."""
        where = f"Kinesis stream '{self.name}' in {self.config.region}"
        if self.config.endpoint_url:
            where += f" at {self.config.endpoint_url}"
        if isinstance(exc, ClientError):
            code = _error_code(exc)
            detail = exc.response.get("Error", {}).get("Message", "")
            if code == "ResourceNotFoundException":
                hint = "create the stream (infrastructure as code), or set create_if_missing for a local server"
            elif code in ("AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException"):
                hint = "check the AWS credentials and their IAM permissions on this stream"
            elif "Throughput" in code or "Throttl" in code or "LimitExceeded" in code:
                hint = "the stream is over its throughput: retry later, or add shards / use on-demand mode"
            else:
                hint = "retry later; if it persists, check the stream in the AWS console"
            return StreamUnavailable(f"could not {action} on {where}: {code}: {detail} — {hint}")
        return StreamUnavailable(
            f"could not {action} on {where}: {exc} — check that the endpoint is reachable, then retry"
        )

    # --- setup --------------------------------------------------------------------------------

    def _ensure_stream(self) -> None:
        """Create the stream (local servers, dev accounts) and wait until it takes records."""
        try:
            try:
                status = self._client.describe_stream_summary(StreamName=self.name)["StreamDescriptionSummary"][
                    "StreamStatus"
                ]
            except self._client.exceptions.ResourceNotFoundException:
                with contextlib.suppress(self._client.exceptions.ResourceInUseException):  # made meanwhile
                    self._client.create_stream(StreamName=self.name, ShardCount=self.config.shard_count)
                status = "CREATING"
            if status != "ACTIVE":
                self._client.get_waiter("stream_exists").wait(
                    StreamName=self.name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
                )
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable("create or wait for the stream", exc) from exc

    # --- writing ------------------------------------------------------------------------------

    def put(self, records: Sequence[StreamRecord]) -> None:
        """Put every record, retrying only the ones Kinesis refused (throttled shards).

        Not all-or-nothing: when some records still fail after ``max_put_attempts``, those
        already accepted stay on the stream and ``StreamUnavailable`` says how many failed.
        The caller retries the whole request; the copies this makes are dropped downstream,
        where events are deduplicated by ``event_id``.

        Raises ``ValueError`` for a record Kinesis can never accept (empty or over-long
        partition key, over 1 MiB): retrying it would fail forever.
        """
        entries = [self._entry(r) for r in records]
        accepted = 0
        for chunk in self._chunks(entries):
            try:
                failed, last_error = self._put_chunk(chunk)
            except (BotoCoreError, ClientError) as exc:
                err = self._unavailable("put records", exc)
                raise StreamUnavailable(
                    f"{err} ({accepted} of {len(entries)} records were accepted before this; "
                    "retrying the request duplicates them, which downstream deduplication by event_id drops)"
                ) from exc
            if failed:
                raise StreamUnavailable(
                    f"{failed} of {len(entries)} records were refused by Kinesis stream '{self.name}' after "
                    f"{self.config.max_put_attempts} attempts (last error: {last_error}); the other records "
                    "are on the stream. Retry the request later (duplicates are dropped downstream by "
                    "event_id), or add shards if this keeps happening."
                )
            accepted += len(chunk)

    @staticmethod
    def _entry(record: StreamRecord) -> dict[str, Any]:
        key = record.partition_key
        if not 1 <= len(key) <= MAX_PARTITION_KEY_CHARS:
            raise ValueError(f"a Kinesis partition key has 1 to 256 characters; got {len(key)}: {key[:40]!r}…")
        size = len(record.data) + len(key.encode())
        if size > MAX_BYTES_PER_RECORD:
            raise ValueError(
                f"a Kinesis record holds at most 1 MiB (data + partition key); got {size} bytes for "
                f"partition key {key!r}: split the batch into smaller records"
            )
        return {"Data": record.data, "PartitionKey": key}

    @staticmethod
    def _chunks(entries: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        """Split into PutRecords calls within both of Kinesis's per-call limits."""
        chunk: list[dict[str, Any]] = []
        size = 0
        for entry in entries:
            entry_size = len(entry["Data"]) + len(entry["PartitionKey"].encode())
            if chunk and (len(chunk) == MAX_RECORDS_PER_PUT or size + entry_size > MAX_BYTES_PER_PUT):
                yield chunk
                chunk, size = [], 0
            chunk.append(entry)
            size += entry_size
        if chunk:
            yield chunk

    def _put_chunk(self, chunk: list[dict[str, Any]]) -> tuple[int, str]:
        """Returns how many records still failed after the last attempt, and why."""
        pending = chunk
        last_error = ""
        for attempt in range(self.config.max_put_attempts):
            if attempt:
                _sleep(min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2 ** (attempt - 1)) * (0.5 + random.random() / 2))
            resp = self._client.put_records(StreamName=self.name, Records=pending)
            if not resp.get("FailedRecordCount"):
                return 0, ""
            retry = []
            for entry, result in zip(pending, resp["Records"], strict=True):
                if result.get("ErrorCode"):
                    retry.append(entry)
                    last_error = f"{result['ErrorCode']}: {result.get('ErrorMessage', '')}"
            pending = retry
            if not pending:
                return 0, ""
        return len(pending), last_error

    # --- reading ------------------------------------------------------------------------------

    def _listed_shards(self) -> list[dict[str, Any]]:
        """Every ``ListShards`` entry of the stream (ids, lineage, sequence number ranges)."""
        try:
            listed: list[dict[str, Any]] = []
            for page in self._client.get_paginator("list_shards").paginate(StreamName=self.name):
                listed.extend(page["Shards"])
            return listed
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable("list shards", exc) from exc

    def shards(self) -> list[str]:
        return [s["ShardId"] for s in self._listed_shards()]

    def shard_families(self) -> list[list[str]]:
        """Shards joined through ``ParentShardId`` / ``AdjacentParentShardId`` (a split's or a
        merge's lineage), each family ordered by its shards' first sequence numbers, so a
        parent's records are read before its children's."""
        return lineage_families(self._listed_shards())

    def _iterator(self, shard: str, after: str | None) -> str:
        args: dict[str, Any] = {"StreamName": self.name, "ShardId": shard}
        if after is None:
            args["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            args.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=after)
        return str(self._client.get_shard_iterator(**args)["ShardIterator"])

    def _scan(self, shard: str, after: str | None, page: int) -> Iterator[tuple[str, bytes, int | None]]:
        """Records after ``after`` to the current end of the shard, fetched ``page`` at a time."""
        iterator: str | None = self._iterator(shard, after)
        last = after
        while iterator is not None:
            try:
                resp = self._client.get_records(ShardIterator=iterator, Limit=page)
            except self._client.exceptions.ExpiredIteratorException:
                iterator = self._iterator(shard, last)
                continue
            for rec in resp["Records"]:
                last = str(rec["SequenceNumber"])
                yield last, bytes(rec["Data"]), _arrival_ms(rec)
            if not resp["Records"] and resp.get("MillisBehindLatest", 0) == 0:
                return
            iterator = resp.get("NextShardIterator")  # None once a closed shard is fully read

    def read(self, shard: str, after: str | None, upto: str, limit: int | None = None) -> list[ReadRecord]:
        stop = int(upto)
        if (after is not None and int(after) >= stop) or limit == 0:
            return []
        page = min(limit or _GET_RECORDS_LIMIT, _GET_RECORDS_LIMIT)
        out: list[ReadRecord] = []
        try:
            for position, data, arrived in self._scan(shard, after, page):
                if int(position) > stop:
                    break
                out.append(ReadRecord(shard, position, data, arrived))
                if int(position) == stop or (limit is not None and len(out) >= limit):
                    break
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable(f"read shard {shard}", exc) from exc
        return out

    def position_after(self, shard: str, after: str | None, count: int) -> str | None:
        """Reads ``count`` records forward directly, without first walking to the shard's end."""
        last = after
        if count <= 0:
            return last
        try:
            for n, (position, _, _) in enumerate(self._scan(shard, after, min(count, _GET_RECORDS_LIMIT)), 1):
                last = position
                if n >= count:
                    break
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable(f"read shard {shard}", exc) from exc
        return last

    def latest_positions(self) -> dict[str, str | None]:
        """Walk each shard from its cached tip to the end; a quiet shard costs one GetRecords."""
        out: dict[str, str | None] = {}
        for shard in self.shards():
            try:
                out[shard] = self._advance(shard)
            except (BotoCoreError, ClientError) as exc:
                raise self._unavailable(f"find the newest record of shard {shard}", exc) from exc
        return out

    def _advance(self, shard: str) -> str | None:
        key = (*self._tip_scope, shard)
        with _tips_lock:
            tip = _tips.get(key)
        position = tip.position if tip else None
        iterator = tip.iterator if tip and time.monotonic() - tip.fetched_at < _ITERATOR_TTL_S else None
        try:
            position, iterator = self._walk_to_end(shard, position, iterator)
        except ClientError as exc:
            if tip is None or _error_code(exc) not in ("InvalidArgumentException", "ResourceNotFoundException"):
                raise
            # the cached bookmark belongs to a deleted and re-created stream: start over
            position, iterator = self._walk_to_end(shard, None, None)
        with _tips_lock:
            _tips[key] = _Tip(position, iterator, time.monotonic())
        return position

    def _walk_to_end(self, shard: str, position: str | None, iterator: str | None) -> tuple[str | None, str | None]:
        if iterator is None:
            iterator = self._iterator(shard, position)
        while True:
            try:
                resp = self._client.get_records(ShardIterator=iterator, Limit=_GET_RECORDS_LIMIT)
            except self._client.exceptions.ExpiredIteratorException:
                iterator = self._iterator(shard, position)
                continue
            if resp["Records"]:
                position = str(resp["Records"][-1]["SequenceNumber"])
            following = resp.get("NextShardIterator")
            if following is None:  # closed shard, read to its end: nothing will follow
                return position, None
            iterator = following
            if not resp["Records"] and resp.get("MillisBehindLatest", 0) == 0:
                return position, iterator

    def close(self) -> None:
        self._client.close()


def _arrival_ms(record: dict[str, Any]) -> int | None:
    """``ApproximateArrivalTimestamp`` (when Kinesis accepted the record) as epoch ms."""
    arrived = record.get("ApproximateArrivalTimestamp")
    return int(arrived.timestamp() * 1000) if arrived is not None else None


def lineage_families(shards: list[dict[str, Any]]) -> list[list[str]]:
    """``ListShards`` entries grouped by lineage (union of each shard with its parents that are
    still listed), each group sorted by starting sequence number (parents open before children)."""
    ids = [s["ShardId"] for s in shards]
    root = {sid: sid for sid in ids}

    def find(sid: str) -> str:
        while root[sid] != sid:
            root[sid] = root[root[sid]]
            sid = root[sid]
        return sid

    for s in shards:
        for parent in (s.get("ParentShardId"), s.get("AdjacentParentShardId")):
            if parent in root:
                root[find(s["ShardId"])] = find(parent)
    start = {s["ShardId"]: int(s.get("SequenceNumberRange", {}).get("StartingSequenceNumber", 0)) for s in shards}
    families: dict[str, list[str]] = {}
    for sid in ids:
        families.setdefault(find(sid), []).append(sid)
    return [sorted(members, key=lambda sid: (start[sid], sid)) for members in families.values()]
