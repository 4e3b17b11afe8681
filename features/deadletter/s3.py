"""S3 as the dead-letter store (the cloud profile): one gzip'd NDJSON object per put.

Keys are ``{prefix}date=YYYY-MM-DD/{ms:013d}-{uuid}.ndjson.gz``: the date folder makes the
objects a Hive-partitioned table that Spark and Athena read as they are, and the zero-padded
epoch milliseconds (strictly increasing per writer) make the key order the write order, so a
reader resumes with one ``ListObjectsV2(StartAfter=key)``. A position is ``key#line``, which
lets a reader stop and resume inside an object.

Caveat shared by every S3 log: with several writers, an object whose put was in flight while
a reader listed can get a key just below one the reader already passed. Dead letters are
diagnostics, read in batch well after the fact, so the store does not guard against it.
"""

from __future__ import annotations

import gzip
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import boto3
import msgspec
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from features.config import S3DeadLetterConfig
from features.contract import now_ms
from features.deadletter.base import DeadLetter, DeadLetterStore, names_player, player_pattern
from features.errors import StreamUnavailable

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(DeadLetter)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


class S3DeadLetterStore(DeadLetterStore):
    def __init__(self, config: S3DeadLetterConfig):
        self.config = config
        self.bucket = config.bucket
        self.prefix = config.prefix
        s3_options: dict[str, Any] = {"addressing_style": "path"} if config.endpoint_url else {}
        self._client = boto3.client(
            "s3",
            region_name=config.region,
            endpoint_url=config.endpoint_url,
            config=Config(retries={"mode": "standard"}, connect_timeout=5, read_timeout=30, s3=s3_options),
        )
        self._last_ms = 0
        self._lock = threading.Lock()
        if config.create_if_missing:
            self._ensure_bucket()

    def _unavailable(self, action: str, exc: Exception) -> StreamUnavailable:
        """Turn a boto error into a message that says what to do, not just what failed."""
        where = f"s3://{self.bucket}/{self.prefix}"
        if self.config.endpoint_url:
            where += f" at {self.config.endpoint_url}"
        if isinstance(exc, ClientError):
            code = _error_code(exc)
            if code in ("NoSuchBucket", "404"):
                hint = "create the bucket (infrastructure as code), or set create_if_missing for a local server"
            elif code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                hint = "check the AWS credentials and their IAM permissions on this bucket and prefix"
            else:
                hint = "retry later; if it persists, check the bucket in the AWS console"
            detail = exc.response.get("Error", {}).get("Message", "")
            return StreamUnavailable(f"could not {action} in {where}: {code}: {detail} — {hint}")
        return StreamUnavailable(f"could not {action} in {where}: {exc} — check that the endpoint is reachable")

    def _ensure_bucket(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if _error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise self._unavailable("check the bucket", exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable("check the bucket", exc) from exc
        args: dict[str, Any] = {"Bucket": self.bucket}
        if self.config.region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": self.config.region}
        try:
            self._client.create_bucket(**args)
        except ClientError as exc:
            if _error_code(exc) != "BucketAlreadyOwnedByYou":
                raise self._unavailable("create the bucket", exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable("create the bucket", exc) from exc

    # --- writing ------------------------------------------------------------------------------

    def _next_key(self) -> str:
        """A key above every key this writer made before, even within one millisecond."""
        with self._lock:
            ms = self._last_ms = max(now_ms(), self._last_ms + 1)
        day = datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")
        return f"{self.prefix}date={day}/{ms:013d}-{uuid.uuid4().hex}.ndjson.gz"

    def put(self, letters: Sequence[DeadLetter]) -> None:
        """One object per call, so a put is atomic: all of its letters are readable or none is."""
        if not letters:
            return
        body = gzip.compress(b"".join(_encoder.encode(x) + b"\n" for x in letters), mtime=0)
        key = self._next_key()
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/x-ndjson")
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable(f"write {len(letters)} dead letters", exc) from exc

    # --- reading ------------------------------------------------------------------------------

    def read(self, after: str | None, limit: int) -> list[tuple[str, DeadLetter]]:
        if limit <= 0:
            return []
        out: list[tuple[str, DeadLetter]] = []
        start_after = ""
        try:
            if after is not None:
                key, sep, line = after.rpartition("#")
                if not sep or not line.isdigit():
                    raise ValueError(f"not a position of the S3 dead-letter store (expected 'key#line'): {after!r}")
                start_after = key
                for i, letter in enumerate(self._letters(key)):
                    if i > int(line):
                        out.append((f"{key}#{i}", letter))
                        if len(out) >= limit:
                            return out
            for key in self._keys(start_after):
                for i, letter in enumerate(self._letters(key)):
                    out.append((f"{key}#{i}", letter))
                    if len(out) >= limit:
                        return out
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable("read dead letters", exc) from exc
        return out

    def _keys(self, start_after: str) -> Iterator[str]:
        """Object keys in key order (= write order), listed lazily page by page."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": f"{self.prefix}date="}
        if start_after:
            args["StartAfter"] = start_after
        for page in self._client.get_paginator("list_objects_v2").paginate(**args):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith(".ndjson.gz"):
                    yield obj["Key"]

    def _letters(self, key: str) -> list[DeadLetter]:
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if _error_code(exc) in ("NoSuchKey", "404"):
                return []  # expired by a lifecycle rule since it was listed
            raise
        return [_decoder.decode(line) for line in gzip.decompress(body).splitlines() if line]

    # --- erasure ------------------------------------------------------------------------------

    def erase(self, game_id: str, player_ids: Sequence[str]) -> int:
        """Rewrite every object holding a matching letter without it, under the same key (so
        key order stays write order), or delete the object when nothing is left. S3 objects are
        immutable: an overwrite is the only way to drop one line. On a versioned bucket the old
        version stays until a lifecycle rule expires noncurrent versions. A reader resuming
        inside a rewritten object (``key#line``) may skip as many letters as were removed
        before that line; dead letters are read in batch, so that is accepted."""
        pattern = re.compile(player_pattern(player_ids))
        removed = 0
        try:
            for key in list(self._keys("")):
                letters = self._letters(key)
                kept = [x for x in letters if not names_player(x, game_id, pattern)]
                if len(kept) == len(letters):
                    continue
                removed += len(letters) - len(kept)
                if kept:
                    body = gzip.compress(b"".join(_encoder.encode(x) + b"\n" for x in kept), mtime=0)
                    self._client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/x-ndjson")
                else:
                    self._client.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable("erase dead letters", exc) from exc
        return removed

    def close(self) -> None:
        self._client.close()
