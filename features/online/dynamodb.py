"""DynamoDB as the online store (the cloud profile): one item per player.

A player is the pair ``(game_id, player_id)``. Key schema: one string partition key ``pk`` =
``f"{game_id}#{player_id}"``, no sort key. Item: ``pk`` (S), ``game_id`` (S) and ``player_id``
(S) as plain attributes (for exports, scans and erasure by game), ``version`` (N), ``body``
(B, the msgspec JSON of the ``Profile``) and, with ``idle_expiry_days``, ``expires_at`` (N,
epoch seconds: the table's TTL attribute). DynamoDB deletes expired items only eventually
(typically within two days), so reads skip an item whose ``expires_at`` has passed.

Why one composite partition key and not ``game_id`` as partition key with ``player_id`` as
sort key: DynamoDB spreads load by partition key, and one partition key value is served by
one partition (about 3,000 reads and 1,000 writes a second). Keyed by game, every player of a
big game would share one hot partition; keyed by the pair, a game's players spread over the
whole table, and serving only ever reads one player at a time, so nothing needs a range query
within a game. The key is unambiguous because player ids cannot hold ``#``
(``features.contract.PLAYER_ID_PATTERN``): the last ``#`` always ends the game id, whatever
the configured game ids hold.

The version lives outside the body so that a condition expression can refuse an older write on
the server, which keeps concurrent or replayed micro-batches from ever moving a profile
backwards.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from features.config import DynamoDBOnlineStoreConfig
from features.contract import now_ms
from features.errors import OnlineStoreError, OnlineStoreTimeout
from features.online.base import (
    EncodedProfileStore,
    PlayerKey,
    Profile,
    decode_profile,
    encode_profile,
    expires_at_s,
)

_NEWER_ONLY = "attribute_not_exists(pk) OR version < :v"
_BATCH_GET_KEYS = 100
KEY_SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"}]
"""The table's key: one string partition key ``pk`` (see the module docstring)."""


def partition_key(game_id: str, player_id: str) -> str:
    """``f"{game_id}#{player_id}"``; refuses a player id holding ``#``, which could otherwise
    name another game's player (``"a#b" + "#" + "c"`` = ``"a" + "#" + "b#c"``)."""
    if "#" in player_id:
        raise ValueError(f"player id {player_id!r} holds '#', which player ids cannot (PLAYER_ID_PATTERN)")
    return f"{game_id}#{player_id}"


def _expired(item: dict[str, Any], now: int) -> bool:
    """The item's TTL has passed (DynamoDB may not have deleted it yet)."""
    expires = item.get("expires_at")
    return expires is not None and int(expires["N"]) * 1000 <= now


def _storable(player_id: str) -> bool:
    return "#" not in player_id


class DynamoDBOnlineStore(EncodedProfileStore):
    """Writes are one conditional PutItem per profile, run on a small thread pool, because
    BatchWriteItem cannot carry a condition; reads are GetItem / BatchGetItem."""

    def __init__(self, config: DynamoDBOnlineStoreConfig, read_timeout_ms: float | None = None):
        self.config = config
        self.table = config.table_name
        # With a read budget (serving), a socket that does not answer in time ends the read
        # after one retry instead of botocore's default 10 s and three attempts.
        budget = read_timeout_ms / 1000 if read_timeout_ms is not None else None
        self._read_budget_s = budget
        self._client = boto3.client(
            "dynamodb",
            region_name=config.region,
            endpoint_url=config.endpoint_url,
            config=Config(
                retries={"mode": "standard", "total_max_attempts": 2} if budget else {"mode": "standard"},
                connect_timeout=budget or 5,
                read_timeout=budget or 10,
                max_pool_connections=max(10, config.write_concurrency),
            ),
        )
        self._pool: ThreadPoolExecutor | None = None
        if config.create_if_missing:
            self._ensure_table()

    def _error(self, action: str, exc: Exception) -> OnlineStoreError:
        """Turn a boto error into a message that says what to do, not just what failed."""
        where = f"DynamoDB table '{self.table}' in {self.config.region}"
        if self.config.endpoint_url:
            where += f" at {self.config.endpoint_url}"
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
            detail = exc.response.get("Error", {}).get("Message", "")
            if code == "ResourceNotFoundException":
                hint = "create the table (infrastructure as code), or set create_if_missing for a local server"
            elif code in ("AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException"):
                hint = "check the AWS credentials and their IAM permissions on this table"
            elif "Throughput" in code or "Throttl" in code or code == "RequestLimitExceeded":
                hint = "the table is throttled: retry later, or raise its capacity (or use on-demand billing)"
            else:
                hint = "retry later; if it persists, check the table in the AWS console"
            return OnlineStoreError(f"could not {action} on {where}: {code}: {detail} — {hint}")
        return OnlineStoreError(f"could not {action} on {where}: {exc} — check that the endpoint is reachable")

    def _ensure_table(self) -> None:
        """Create the table (on-demand billing) and wait until it is ACTIVE."""
        try:
            try:
                table = self._client.describe_table(TableName=self.table)["Table"]
                status = table["TableStatus"]
            except self._client.exceptions.ResourceNotFoundException:
                with contextlib.suppress(self._client.exceptions.ResourceInUseException):  # made meanwhile
                    self._client.create_table(
                        TableName=self.table,
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                        KeySchema=KEY_SCHEMA,
                        BillingMode="PAY_PER_REQUEST",
                    )
                status, key_schema = "CREATING", KEY_SCHEMA
            else:
                key_schema = table["KeySchema"]
            if status != "ACTIVE":
                self._client.get_waiter("table_exists").wait(
                    TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
                )
            if status == "CREATING" and key_schema == KEY_SCHEMA:  # ours: expire idle players as the stack does
                try:
                    self._client.update_time_to_live(
                        TableName=self.table,
                        TimeToLiveSpecification={"AttributeName": "expires_at", "Enabled": True},
                    )
                except ClientError as exc:  # another process made the table and enabled TTL first
                    if exc.response.get("Error", {}).get("Code") != "ValidationException":
                        raise
        except (BotoCoreError, ClientError) as exc:
            raise self._error("create or wait for the table", exc) from exc
        if key_schema != KEY_SCHEMA:
            # a table made before profiles were per game: its writes would all fail
            keys = [k["AttributeName"] for k in key_schema]
            raise OnlineStoreError(
                f"DynamoDB table '{self.table}' is keyed by {keys}, but profiles are keyed by the string "
                "partition key 'pk' = game_id#player_id: point table_name at a new table (or delete this one) "
                "and replay the stream into it (`playerpulse stream profiles --available-now`)"
            )

    # --- writing ------------------------------------------------------------------------------

    def put(self, profiles: Sequence[Profile]) -> int:
        """Each profile is written unless the stored one has an equal or higher version.

        Not all-or-nothing: if some writes fail, the others stay, and the error says how many
        failed. Writing the same profiles again is safe: the version condition makes it
        idempotent.
        """
        if not profiles:
            return 0
        written_at = now_ms()
        items = []
        for p in profiles:
            expires = expires_at_s(p, self.config.idle_expiry_days, written_at)
            if expires is not None and expires * 1000 <= written_at:
                continue  # expired already (a replay of a long-idle player): nothing to serve
            p.timestamps["profile_written_at"] = written_at
            items.append(self._item(p, expires))
        if not items:
            return 0
        # one profile (the common streaming case) needs no thread hop
        outcomes = [self._put_one(items[0])] if len(items) == 1 else list(self._executor().map(self._put_one, items))
        failures = [o for o in outcomes if isinstance(o, Exception)]
        if failures:
            written = sum(1 for o in outcomes if o is True)
            err = self._error("write profiles", failures[0])
            raise OnlineStoreError(
                f"{len(failures)} of {len(items)} profiles were not written ({written} were): {err}. "
                "Writing the same profiles again is safe: older versions never replace newer ones."
            ) from failures[0]
        return sum(1 for o in outcomes if o is True)

    @staticmethod
    def _item(p: Profile, expires_at: int | None) -> dict[str, Any]:
        try:
            pk = partition_key(p.game_id, p.player_id)
        except ValueError as exc:
            raise OnlineStoreError(f"profile not written: {exc}") from None
        item = {
            "pk": {"S": pk},
            "game_id": {"S": p.game_id},
            "player_id": {"S": p.player_id},
            "version": {"N": str(p.version)},
            "body": {"B": encode_profile(p)},
        }
        if expires_at is not None:
            item["expires_at"] = {"N": str(expires_at)}
        return item

    def _put_one(self, item: dict[str, Any]) -> bool | Exception:
        """True if written, False if a newer or equal version was already stored."""
        try:
            self._client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression=_NEWER_ONLY,
                ExpressionAttributeValues={":v": item["version"]},
            )
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            return exc
        except BotoCoreError as exc:
            return exc

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.config.write_concurrency, thread_name_prefix="dynamodb-put")
        return self._pool

    # --- reading ------------------------------------------------------------------------------

    def _body(self, game_id: str, player_id: str) -> bytes | None:
        """``None`` also for a player id no profile can have (one holding ``#``)."""
        if not _storable(player_id):
            return None
        try:
            resp = self._client.get_item(
                TableName=self.table,
                Key={"pk": {"S": partition_key(game_id, player_id)}},
                ProjectionExpression="body, expires_at",
                ConsistentRead=self.config.consistent_reads,
            )
        except (ReadTimeoutError, ConnectTimeoutError) as exc:
            raise OnlineStoreTimeout(
                f"reading a profile from '{self.table}' took over {self._read_budget_s} s"
            ) from exc
        except (BotoCoreError, ClientError) as exc:
            raise self._error("read a profile", exc) from exc
        item = resp.get("Item")
        return item["body"]["B"] if item and not _expired(item, now_ms()) else None

    def get_many(self, keys: Sequence[PlayerKey]) -> dict[PlayerKey, Profile]:
        """BatchGetItem, 100 keys per call, re-asking for keys DynamoDB left unprocessed."""
        out: dict[PlayerKey, Profile] = {}
        unique = [(g, p) for g, p in dict.fromkeys(keys) if _storable(p)]
        for start in range(0, len(unique), _BATCH_GET_KEYS):
            chunk = unique[start : start + _BATCH_GET_KEYS]
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [{"pk": {"S": partition_key(g, p)}} for g, p in chunk],
                    "ProjectionExpression": "body, expires_at",
                    "ConsistentRead": self.config.consistent_reads,
                }
            }
            now = now_ms()
            try:
                for attempt in itertools.count():
                    if attempt:  # keys left unprocessed under throttling: back off before re-asking
                        time.sleep(min(1.0, 0.05 * 2**attempt))
                    resp = self._client.batch_get_item(RequestItems=request)
                    for item in resp.get("Responses", {}).get(self.table, []):
                        if _expired(item, now):
                            continue
                        profile = decode_profile(item["body"]["B"])
                        out[profile.key] = profile
                    request = resp.get("UnprocessedKeys") or {}
                    if not request:
                        break
            except (BotoCoreError, ClientError) as exc:
                raise self._error("read profiles", exc) from exc
        return out

    def delete(self, game_id: str, player_id: str) -> bool:
        if not _storable(player_id):
            return False
        try:
            resp = self._client.delete_item(
                TableName=self.table, Key={"pk": {"S": partition_key(game_id, player_id)}}, ReturnValues="ALL_OLD"
            )
        except (BotoCoreError, ClientError) as exc:
            raise self._error("delete a profile", exc) from exc
        return bool(resp.get("Attributes"))

    def count(self) -> int:
        """Profiles not yet expired, by a full Scan (Select=COUNT): exact but reads the whole
        table; for reports and tests."""
        total = 0
        args: dict[str, Any] = {
            "TableName": self.table,
            "Select": "COUNT",
            "FilterExpression": "attribute_not_exists(expires_at) OR expires_at > :now",
            "ExpressionAttributeValues": {":now": {"N": str(now_ms() // 1000)}},
        }
        try:
            while True:
                resp = self._client.scan(**args)
                total += int(resp["Count"])
                if "LastEvaluatedKey" not in resp:
                    return total
                args["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        except (BotoCoreError, ClientError) as exc:
            raise self._error("count profiles", exc) from exc

    def sweep_expired(self, now_ms: int) -> int:
        """Nothing to do: the table's TTL on ``expires_at`` (set by ``playerpulse infra create``
        and the stack's template) deletes expired items without consuming write capacity."""
        return 0

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._client.close()
