"""What the AWS backends promise beyond the shared contracts, over HTTP on the local server:
AWS's own limits, the data layout other tools rely on, and errors that say what to do."""

from __future__ import annotations

import gzip
import json
import re
import uuid
from collections.abc import Iterator

import boto3
import pytest

from features.config import DynamoDBOnlineStoreConfig, KinesisStreamConfig, S3DeadLetterConfig
from features.contract import now_ms
from features.deadletter.base import DeadLetter
from features.deadletter.s3 import S3DeadLetterStore
from features.errors import OnlineStoreError, StreamUnavailable
from features.online.base import Profile, decode_profile
from features.online.dynamodb import DynamoDBOnlineStore
from features.streams.base import StreamRecord
from features.streams.kinesis import KinesisStream


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def kinesis_config(aws_endpoint: str) -> KinesisStreamConfig:
    return KinesisStreamConfig(stream_name=_name("aws"), endpoint_url=aws_endpoint, create_if_missing=True)


@pytest.fixture
def kinesis(kinesis_config: KinesisStreamConfig) -> Iterator[KinesisStream]:
    with KinesisStream(kinesis_config) as s:
        yield s  # type: ignore[misc]


# --- Kinesis ------------------------------------------------------------------------------------


def test_a_put_over_the_500_records_limit_of_one_call_is_split_and_arrives_whole(kinesis: KinesisStream) -> None:
    kinesis.put([StreamRecord("p-1", str(n).encode()) for n in range(501)])

    (shard,) = kinesis.shards()
    latest = kinesis.latest_positions()[shard]
    assert [int(r.data) for r in kinesis.read(shard, None, latest)] == list(range(501))  # type: ignore[arg-type]


def test_opening_an_existing_stream_with_create_if_missing_keeps_its_records(
    kinesis: KinesisStream, kinesis_config: KinesisStreamConfig
) -> None:
    kinesis.put([StreamRecord("p-1", b"kept")])

    with KinesisStream(kinesis_config) as again:
        (shard,) = again.shards()
        assert [r.data for r in again.read(shard, None, again.latest_positions()[shard])] == [b"kept"]  # type: ignore[arg-type]


def test_latest_positions_of_a_quiet_stream_cost_one_get_records_per_shard(kinesis: KinesisStream) -> None:
    kinesis.put([StreamRecord(f"p-{n}", b"x") for n in range(20)])
    kinesis.latest_positions()
    calls: list[str] = []

    with KinesisStream(kinesis.config) as fresh:
        fresh._client.meta.events.register("before-call.kinesis.*", lambda model, **_: calls.append(model.name))
        fresh.latest_positions()

    assert calls.count("GetRecords") == 1
    assert "GetShardIterator" not in calls


def test_a_missing_stream_is_reported_with_what_to_do(aws_endpoint: str) -> None:
    config = KinesisStreamConfig(stream_name=_name("missing"), endpoint_url=aws_endpoint)

    with KinesisStream(config) as s, pytest.raises(StreamUnavailable, match="create_if_missing"):
        s.put([StreamRecord("p-1", b"x")])


# --- DynamoDB -----------------------------------------------------------------------------------


@pytest.fixture
def dynamodb(aws_endpoint: str) -> Iterator[DynamoDBOnlineStore]:
    config = DynamoDBOnlineStoreConfig(table_name=_name("aws"), endpoint_url=aws_endpoint, create_if_missing=True)
    with DynamoDBOnlineStore(config) as s:
        yield s  # type: ignore[misc]


def _profile(player_id: str, version: int = 1, game_id: str = "demo") -> Profile:
    return Profile(game_id=game_id, player_id=player_id, version=version, as_of=0, features={"f": 1.0}, state={})


def test_a_profile_item_is_keyed_by_game_and_player_and_holds_version_and_the_encoded_profile(
    dynamodb: DynamoDBOnlineStore, aws_endpoint: str
) -> None:
    dynamodb.put([_profile("p-1", version=7, game_id="alpha")])
    raw = boto3.client("dynamodb", endpoint_url=aws_endpoint)

    item = raw.get_item(TableName=dynamodb.table, Key={"pk": {"S": "alpha#p-1"}})["Item"]

    assert set(item) == {"pk", "game_id", "player_id", "version", "body"}
    assert (item["game_id"], item["player_id"], item["version"]) == ({"S": "alpha"}, {"S": "p-1"}, {"N": "7"})
    assert decode_profile(item["body"]["B"]).version == 7


def test_the_created_table_has_one_string_partition_key_pk(dynamodb: DynamoDBOnlineStore, aws_endpoint: str) -> None:
    table = boto3.client("dynamodb", endpoint_url=aws_endpoint).describe_table(TableName=dynamodb.table)["Table"]

    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]


def test_with_an_idle_expiry_the_item_carries_its_ttl_in_epoch_seconds_on_a_table_with_ttl_on(
    aws_endpoint: str,
) -> None:
    config = DynamoDBOnlineStoreConfig(
        table_name=_name("ttl"), endpoint_url=aws_endpoint, create_if_missing=True, idle_expiry_days=2
    )
    received_at = now_ms()
    profile = _profile("p-1")
    profile.timestamps["received_at"] = received_at
    raw = boto3.client("dynamodb", endpoint_url=aws_endpoint)

    with DynamoDBOnlineStore(config) as store:
        store.put([profile])

    item = raw.get_item(TableName=config.table_name, Key={"pk": {"S": "demo#p-1"}})["Item"]
    ttl = raw.describe_time_to_live(TableName=config.table_name)["TimeToLiveDescription"]
    assert int(item["expires_at"]["N"]) == -(-(received_at + 2 * 86_400_000) // 1000)  # seconds, rounded up
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")


def test_get_many_reads_more_players_than_one_batch_get_takes(dynamodb: DynamoDBOnlineStore) -> None:
    keys = [(game, f"p-{n}") for game in ("alpha", "beta") for n in range(65)]
    assert dynamodb.put([_profile(pid, game_id=game) for game, pid in keys]) == 130

    assert sorted(dynamodb.get_many([*keys, ("alpha", "nobody")])) == sorted(keys)


def test_a_missing_table_is_reported_with_what_to_do(aws_endpoint: str) -> None:
    config = DynamoDBOnlineStoreConfig(table_name=_name("missing"), endpoint_url=aws_endpoint)

    with DynamoDBOnlineStore(config) as s, pytest.raises(OnlineStoreError, match="create_if_missing"):
        s.get("demo", "p-1")


def test_a_table_keyed_by_player_id_alone_is_refused_with_what_to_do(aws_endpoint: str) -> None:
    name = _name("legacy")
    boto3.client("dynamodb", endpoint_url=aws_endpoint).create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "player_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "player_id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    config = DynamoDBOnlineStoreConfig(table_name=name, endpoint_url=aws_endpoint, create_if_missing=True)

    with pytest.raises(OnlineStoreError, match=r"keyed by \['player_id'\].*partition key 'pk'.*replay"):
        DynamoDBOnlineStore(config)


# --- S3 dead letters ----------------------------------------------------------------------------


@pytest.fixture
def s3_store(aws_endpoint: str) -> Iterator[S3DeadLetterStore]:
    store = S3DeadLetterStore(
        S3DeadLetterConfig(bucket=_name("aws"), endpoint_url=aws_endpoint, create_if_missing=True)
    )
    yield store
    store.close()


def _letter(n: int) -> DeadLetter:
    return DeadLetter(received_at=n, reason="bad", raw=str(n))


def test_each_put_is_one_gzipped_ndjson_object_under_a_date_partition(
    s3_store: S3DeadLetterStore, aws_endpoint: str
) -> None:
    s3_store.put([_letter(1), _letter(2)])
    raw = boto3.client("s3", endpoint_url=aws_endpoint)

    (obj,) = raw.list_objects_v2(Bucket=s3_store.bucket)["Contents"]
    body = raw.get_object(Bucket=s3_store.bucket, Key=obj["Key"])["Body"].read()

    assert re.fullmatch(r"dead_letter/date=\d{4}-\d\d-\d\d/\d{13}-[0-9a-f]{32}\.ndjson\.gz", obj["Key"])
    assert [json.loads(line)["raw"] for line in gzip.decompress(body).splitlines()] == ["1", "2"]


def test_letters_of_successive_puts_read_back_in_write_order(s3_store: S3DeadLetterStore) -> None:
    for n in range(12):
        s3_store.put([_letter(n)])

    assert [x.raw for _, x in s3_store.read(None, 100)] == [str(n) for n in range(12)]


def test_object_keys_of_one_writer_increase_even_within_one_millisecond(s3_store: S3DeadLetterStore) -> None:
    keys = [s3_store._next_key() for _ in range(2000)]

    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


def test_a_position_that_is_not_the_stores_own_is_refused(s3_store: S3DeadLetterStore) -> None:
    with pytest.raises(ValueError, match="key#line"):
        s3_store.read("42", 10)


def test_a_missing_bucket_is_reported_with_what_to_do(aws_endpoint: str) -> None:
    store = S3DeadLetterStore(S3DeadLetterConfig(bucket=_name("missing"), endpoint_url=aws_endpoint))

    with pytest.raises(StreamUnavailable, match="create_if_missing"):
        store.put([_letter(1)])


def test_a_split_shards_children_are_read_with_their_parent(kinesis: KinesisStream) -> None:
    (parent,) = kinesis.shards()
    kinesis._client.split_shard(
        StreamName=kinesis.config.stream_name, ShardToSplit=parent, NewStartingHashKey=str(2**127)
    )

    families = kinesis.shard_families()

    assert len(families) == 1 and families[0][0] == parent and len(families[0]) == 3
