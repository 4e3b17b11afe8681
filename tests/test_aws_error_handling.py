"""How the AWS backends handle failures a local server cannot be made to produce on demand
(throttled shards, partial batch failures, lost connections). Here, and only here, the boto
client is stubbed: the replies are scripted with botocore's Stubber, which also checks that
each request carries exactly the expected parameters."""

from __future__ import annotations

from collections.abc import Iterator
from unittest import mock

import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from features.config import DynamoDBOnlineStoreConfig, KinesisStreamConfig
from features.errors import OnlineStoreError, StreamUnavailable
from features.online.base import Profile
from features.online.dynamodb import DynamoDBOnlineStore
from features.streams import kinesis as kinesis_module
from features.streams.base import StreamRecord
from features.streams.kinesis import MAX_BYTES_PER_PUT, MAX_RECORDS_PER_PUT, KinesisStream

OK = {"SequenceNumber": "1", "ShardId": "shardId-000000000000"}
THROTTLED = {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard"}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials (no request leaves the process) and no backoff waits."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setattr(kinesis_module, "_sleep", lambda seconds: None)


@pytest.fixture
def stream() -> Iterator[KinesisStream]:
    with KinesisStream(KinesisStreamConfig(stream_name="s", max_put_attempts=3)) as s:
        yield s  # type: ignore[misc]


def _entries(*records: StreamRecord) -> list[dict[str, object]]:
    return [{"Data": r.data, "PartitionKey": r.partition_key} for r in records]


def _reply(*results: dict[str, str]) -> dict[str, object]:
    """A PutRecords reply; the Stubber checks replies against the API model, whose FailedRecordCount
    has a minimum of 1, so a reply with no failure leaves it out (the code reads it with a default)."""
    failed = sum(1 for r in results if "ErrorCode" in r)
    return {"Records": list(results), **({"FailedRecordCount": failed} if failed else {})}


a, b, c = StreamRecord("p-a", b"a"), StreamRecord("p-b", b"b"), StreamRecord("p-c", b"c")


def test_kinesis_put_retries_only_the_records_that_failed(stream: KinesisStream) -> None:
    with Stubber(stream._client) as stub:
        stub.add_response("put_records", _reply(OK, THROTTLED, OK), {"StreamName": "s", "Records": _entries(a, b, c)})
        stub.add_response("put_records", _reply(OK), {"StreamName": "s", "Records": _entries(b)})

        stream.put([a, b, c])

        stub.assert_no_pending_responses()


def test_kinesis_put_raises_stream_unavailable_with_the_count_of_records_still_failing(stream: KinesisStream) -> None:
    with Stubber(stream._client) as stub:
        stub.add_response("put_records", _reply(THROTTLED, OK, THROTTLED))
        stub.add_response("put_records", _reply(THROTTLED, OK))
        stub.add_response("put_records", _reply(THROTTLED))

        with pytest.raises(StreamUnavailable, match=r"1 of 3 records were refused .* after 3 attempts"):
            stream.put([a, b, c])


def test_kinesis_put_of_a_throttled_stream_raises_stream_unavailable_saying_what_to_do(stream: KinesisStream) -> None:
    with Stubber(stream._client) as stub:
        stub.add_client_error("put_records", "ProvisionedThroughputExceededException", "Rate exceeded", 400)

        with pytest.raises(StreamUnavailable, match="add shards"):
            stream.put([a])


def test_kinesis_put_without_a_connection_raises_stream_unavailable(stream: KinesisStream) -> None:
    lost = EndpointConnectionError(endpoint_url="https://kinesis.us-east-1.amazonaws.com")
    with (
        mock.patch.object(stream._client, "put_records", side_effect=lost),
        pytest.raises(StreamUnavailable, match="endpoint is reachable"),
    ):
        stream.put([a])


def test_kinesis_put_refuses_a_record_over_one_mib_before_calling_aws(stream: KinesisStream) -> None:
    with Stubber(stream._client) as stub:  # no reply scripted: any call would fail the test
        with pytest.raises(ValueError, match="at most 1 MiB"):
            stream.put([a, StreamRecord("p-big", b"x" * (1024 * 1024))])
        stub.assert_no_pending_responses()


def test_kinesis_put_calls_stay_within_500_records_and_5_mib() -> None:
    small = [{"Data": b"x", "PartitionKey": "p"}] * (MAX_RECORDS_PER_PUT + 1)
    large = [{"Data": b"x" * (1024 * 1024 - 1), "PartitionKey": "p"}] * 6

    assert [len(c) for c in KinesisStream._chunks(small)] == [MAX_RECORDS_PER_PUT, 1]
    assert [len(c) for c in KinesisStream._chunks(large)] == [5, 1]
    assert all(sum(len(e["Data"]) + 1 for e in c) <= MAX_BYTES_PER_PUT for c in KinesisStream._chunks(large))


@pytest.fixture
def online() -> Iterator[DynamoDBOnlineStore]:
    with DynamoDBOnlineStore(DynamoDBOnlineStoreConfig(table_name="profiles")) as s:
        yield s  # type: ignore[misc]


def _profile(player_id: str = "p-1", version: int = 3) -> Profile:
    return Profile(game_id="demo", player_id=player_id, version=version, as_of=0, features={}, state={})


def test_dynamodb_conditional_check_failure_counts_as_not_written(online: DynamoDBOnlineStore) -> None:
    with Stubber(online._client) as stub:
        stub.add_client_error("put_item", "ConditionalCheckFailedException", "The conditional request failed", 400)

        assert online.put([_profile()]) == 0


def test_dynamodb_put_failure_says_how_many_failed_and_that_a_retry_is_safe(online: DynamoDBOnlineStore) -> None:
    with Stubber(online._client) as stub:
        stub.add_client_error("put_item", "ProvisionedThroughputExceededException", "Throughput exceeded", 400)

        with pytest.raises(OnlineStoreError, match=r"1 of 1 profiles were not written .*again is safe"):
            online.put([_profile()])
