"""The collector on the cloud profile's stream: events posted over HTTP land on Kinesis."""

from __future__ import annotations

import gzip
import json

from fastapi.testclient import TestClient

from features.config import KinesisStreamConfig, Settings
from features.streams import decode_batch, open_stream
from serving.app import create_app
from tests_support import make_event


def test_acknowledged_events_are_on_kinesis_partitioned_by_player(settings: Settings, aws_endpoint: str):
    kinesis = KinesisStreamConfig(
        stream_name="collector-test", endpoint_url=aws_endpoint, create_if_missing=True, shard_count=2
    )
    cloudish = settings.model_copy(update={"stream": kinesis})
    events = [make_event(f"p{i % 3}") for i in range(9)]
    with TestClient(create_app(cloudish)) as client:
        r = client.post(
            "/v1/events",
            content=gzip.compress(json.dumps(events).encode()),
            headers={"Authorization": "Bearer pp-demo-key-local-only", "Content-Encoding": "gzip"},
        )
    assert r.status_code == 202 and r.json()["accepted"] == 9
    with open_stream(kinesis) as stream:
        records = list(stream.read_all())
    assert len(records) == 3  # one compressed record per player
    landed = [e for rec in records for e in decode_batch(rec.data)[1]]
    assert sorted(e["event_id"] for e in landed) == sorted(e["event_id"] for e in events)
    for rec in records:
        assert len({e["player_id"] for e in decode_batch(rec.data)[1]}) == 1
