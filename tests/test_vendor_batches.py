"""Vendor batches through the typed fast path: what each event's answer and dead letter are when
a batch mixes valid events with ones that cannot be mapped, break the contract, or are late."""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from features.config import Settings
from features.streams import decode_batch
from serving.collector import Collector
from serving.vendors.ingest import VendorIngest
from tests.vendor_server import GA_SECRET, GA_SECRET_ENV, INGEST_KEY, with_vendors

CONTEXT = {"os": {"name": "Android"}, "app": {"version": "1.4.2"}}


@pytest.fixture
def ingest(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> VendorIngest:
    monkeypatch.setenv(GA_SECRET_ENV, GA_SECRET)
    vendor_settings = with_vendors(settings)
    return VendorIngest(vendor_settings, Collector.from_settings(vendor_settings))


def message(user: str = "p1", ago: timedelta = timedelta(minutes=1), **over: object) -> dict[str, object]:
    at = (datetime.now(UTC) - ago).isoformat()
    return {
        "type": "track",
        "event": "Level Up",
        "userId": user,
        "messageId": str(uuid.uuid4()),
        "timestamp": at,
        "properties": {"level": 3},
        "context": CONTEXT,
        **over,
    }


def post_segment(ingest: VendorIngest, messages: list[dict[str, object]]):
    headers = {
        "authorization": "Basic " + base64.b64encode(f"{INGEST_KEY}:".encode()).decode(),
        "content-encoding": "gzip",
    }
    return ingest.segment(headers, gzip.compress(json.dumps({"batch": messages}).encode()), None)


def test_unmappable_and_late_events_are_refused_by_their_own_index_and_the_rest_kept(ingest):
    sent = [message(), message(user=""), message(ago=timedelta(days=400)), message()]
    prepared = post_segment(ingest, sent)
    assert prepared.status == 202 and prepared.accepted == 2
    assert [e["index"] for e in prepared.errors] == [1, 2]
    assert "no user id" in prepared.errors[0]["reason"]
    assert "further in the past" in prepared.errors[1]["reason"]
    assert [json.loads(d.raw) for d in prepared.dead_letters] == [sent[1], sent[2]]


def test_one_event_breaking_the_contract_costs_only_that_event(ingest):
    sent = [message(), message(context={**CONTEXT, "app": {"version": "v" * 65}}), message()]
    prepared = post_segment(ingest, sent)
    assert prepared.accepted == 2
    [error] = prepared.errors
    assert error["index"] == 1 and "app_version" in error["reason"]
    [letter] = prepared.dead_letters
    assert json.loads(letter.raw) == sent[1]  # as Segment sent it, not its mapped form


def test_a_bad_user_id_is_named_even_when_the_event_is_also_too_old(ingest):
    alone = post_segment(ingest, [message(user="someone@example.com", ago=timedelta(days=400))])
    in_batch = post_segment(ingest, [message(), message(user="someone@example.com", ago=timedelta(days=400))])
    assert "player_id" in alone.errors[0]["reason"]
    assert in_batch.errors == [{"index": 1, "reason": alone.errors[0]["reason"]}]


def test_an_upper_case_message_id_is_stored_lower_case_and_a_braced_one_as_its_uuid(ingest):
    upper, braced = str(uuid.uuid4()).upper(), "{" + str(uuid.uuid4()) + "}"
    prepared = post_segment(ingest, [message(messageId=upper), message(messageId=braced)])
    assert prepared.accepted == 2
    stored = {e["event_id"] for r in prepared.records for e in decode_batch(r.data)[1]}
    assert stored == {upper.lower(), braced.strip("{}")}
