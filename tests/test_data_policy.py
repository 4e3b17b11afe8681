"""A game's data policy: what the collector stores of each event's properties and dead letters.

Rules are by name at every depth (so nothing is smuggled inside nested objects), coarsening
fails closed, and dead letters keep only what the policy keeps plus the reason.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from features.config import DEVELOPMENT_KEYS, GameConfig, Settings
from features.data_policy import DataPolicy, DataPolicyConfig
from features.streams import decode_batch
from serving.collector import Collector
from tests_support import make_event

INGEST = {"authorization": f"Bearer {DEVELOPMENT_KEYS['ingest']}"}
POLICY = {
    "default": "drop",
    "properties": {
        "sku": "keep",
        "price_usd": "coarsen:round:0",
        "ip": "coarsen:ip_24",
        "opened_at": "coarsen:hour",
        "email": "drop",
        "cart": "keep",
    },
}


def policy(**over: Any) -> DataPolicy:
    return DataPolicy(DataPolicyConfig.model_validate({**POLICY, **over}))


def with_policy(settings: Settings, data_policy: dict[str, Any] = POLICY, **more: Any) -> Settings:
    game = GameConfig.model_validate(
        {**settings.games["demo"].model_dump(exclude_none=True), "data_policy": data_policy, **more}
    )
    return settings.model_copy(update={"games": {"demo": game}})


def stored_properties(collector: Collector, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    prepared = collector.prepare(INGEST, json.dumps(events).encode())
    assert prepared is not None and prepared.status == 202
    return [e["properties"] for r in prepared.records for e in decode_batch(r.data)[1]]


def test_declared_properties_are_kept_dropped_or_coarsened_and_undeclared_ones_dropped():
    got = policy().apply(
        {
            "sku": "gems_100",
            "price_usd": 4.99,
            "ip": "203.0.113.77",
            "opened_at": 1_700_000_123_456,
            "email": "a@b.c",
            "note": "x",
        }
    )
    assert got == {"sku": "gems_100", "price_usd": 5.0, "ip": "203.0.113.0", "opened_at": 1_699_999_200_000}


def test_with_default_keep_undeclared_properties_pass_but_dropped_ones_do_not():
    assert policy(default="keep").apply({"note": "x", "email": "a@b.c"}) == {"note": "x"}


@pytest.mark.parametrize(
    "smuggled",
    [
        {"cart": {"email": "a@b.c", "sku": "s1"}},
        {"cart": [{"EMAIL": "a@b.c", "sku": "s1"}]},
        {"cart": {"deep": {"deeper": [{"Email": "a@b.c"}]}}},
    ],
)
def test_a_dropped_name_is_dropped_inside_nested_objects_and_arrays_in_any_case(smuggled):
    for default in ("keep", "drop"):
        assert "a@b.c" not in json.dumps(policy(default=default).apply(smuggled))


def test_with_default_drop_a_kept_container_keeps_only_declared_names_inside():
    assert policy().apply({"cart": {"sku": "s1", "address": "1 Main St"}}) == {"cart": {"sku": "s1"}}


@pytest.mark.parametrize(
    "value, coarse",
    [
        ("203.0.113.77", "203.0.113.0"),
        ("2001:db8:abcd:12:34::1", "2001:db8:abcd::"),
        ("::ffff:198.51.100.9", "198.51.100.0"),
    ],
)
def test_ip_24_truncates_ipv4_to_24_and_ipv6_to_48_bits(value, coarse):
    assert policy().apply({"ip": value}) == {"ip": coarse}


@pytest.mark.parametrize(
    "value", ["not an ip", "203.0.113.77; DROP", 3232235777, {"v4": "203.0.113.77"}, ["203.0.113.77"]]
)
def test_a_value_a_coarsening_rule_cannot_read_is_dropped_not_kept(value):
    assert policy().apply({"ip": value}) == {}


def test_hour_truncates_rfc3339_times_and_epoch_ms():
    got = policy().apply({"opened_at": "2026-11-30T17:42:09.123+02:00"})
    assert got == {"opened_at": "2026-11-30T15:00:00Z"}


@pytest.mark.parametrize("value", [True, "4.99", float("nan"), None])
def test_round_drops_what_is_not_a_finite_number(value):
    assert policy().apply({"price_usd": value}) == {}


def test_round_with_negative_digits_rounds_to_hundreds():
    assert policy(properties={"score": "coarsen:round:-2"}).apply({"score": 12_345}) == {"score": 12_300}


@pytest.mark.parametrize(
    "bad, complaint",
    [
        ({"properties": {"ip": "coarsen:ip_16"}}, "unknown rule"),
        ({"properties": {"x": "coarsen:round:9"}}, "unknown rule"),
        ({"properties": {"Email": "drop", "email": "keep"}}, "same name"),
        ({"default": "coarsen:hour"}, "default"),
        ({"properies": {}}, "properies"),
    ],
)
def test_a_policy_that_cannot_be_applied_is_refused_at_start_up(bad, complaint):
    with pytest.raises(ValueError, match=complaint):
        DataPolicyConfig.model_validate(bad)


def test_the_collector_applies_the_policy_before_the_stream(settings):
    collector = Collector.from_settings(with_policy(settings))
    sent = make_event(
        "p1",
        event_type="purchase",
        properties={"sku": "s1", "price_usd": 2.49, "email": "a@b.c", "meta": {"email": "a@b.c"}},
    )
    assert stored_properties(collector, [sent]) == [{"sku": "s1", "price_usd": 2.0}]


def test_a_game_without_a_policy_stores_properties_as_sent(settings):
    props = {"sku": "s1", "email": "a@b.c"}
    assert stored_properties(Collector.from_settings(settings), [make_event("p1", properties=props)]) == [props]


def test_a_rejected_events_dead_letter_keeps_only_what_the_policy_allows_plus_the_reason(settings):
    collector = Collector.from_settings(with_policy(settings))
    bad = make_event("p1", platform="fridge", properties={"sku": "s1", "email": "a@b.c", "cart": {"email": "a@b.c"}})
    bad["password"] = "hunter2"  # outside the contract: dropped whatever it holds
    prepared = collector.prepare(INGEST, json.dumps([bad]).encode())
    assert prepared is not None
    [letter] = prepared.dead_letters
    kept = json.loads(letter.raw)
    assert "platform" in letter.reason and "fridge" in letter.reason
    assert kept["properties"] == {"sku": "s1", "cart": {}}
    assert "a@b.c" not in letter.raw and "hunter2" not in letter.raw
    assert kept["event_id"] == bad["event_id"]


def test_an_item_that_is_not_an_object_keeps_only_its_size_and_digest(settings):
    collector = Collector.from_settings(with_policy(settings))
    prepared = collector.prepare(INGEST, json.dumps(["call me on +44 7700 900123"]).encode())
    assert prepared is not None
    [letter] = prepared.dead_letters
    assert set(json.loads(letter.raw)) == {"bytes", "sha256"} and "7700" not in letter.raw


def test_an_unparseable_body_keeps_only_its_size_and_digest(settings):
    collector = Collector.from_settings(with_policy(settings))
    body = b'[{"email": "a@b.c", '
    prepared = collector.prepare({**INGEST, "content-encoding": "gzip"}, gzip.compress(body)[:-3])
    assert prepared is not None and prepared.status == 400
    [letter] = prepared.dead_letters
    assert set(json.loads(letter.raw)) == {"bytes", "sha256"}
    plain = collector.prepare(INGEST, body)
    assert plain is not None and plain.status == 400 and "a@b.c" not in plain.dead_letters[0].raw


def test_properties_nesting_past_the_contract_are_dropped_whole_from_the_dead_letter(settings):
    collector = Collector.from_settings(with_policy(settings, {"default": "keep"}))
    deep: Any = "a@b.c"
    for _ in range(12):
        deep = {"x": deep}
    prepared = collector.prepare(INGEST, json.dumps([make_event("p1", properties=deep)]).encode())
    assert prepared is not None and prepared.accepted == 0
    assert "properties" not in json.loads(prepared.dead_letters[0].raw)


def test_a_vendor_routes_unparseable_body_keeps_only_its_size_and_digest_under_a_policy(settings):
    """The same promise as the native route: a Segment body that is not JSON is not kept as sent."""
    import base64

    from features.config import DEVELOPMENT_KEYS
    from serving.vendors.ingest import VendorIngest

    settings = with_policy(settings, vendors={"mapping": "default"})
    ingest = VendorIngest(settings, Collector.from_settings(settings))
    secret = b"name=Jane Doe; email=jane@example.com; not json"
    basic = base64.b64encode(f"{DEVELOPMENT_KEYS['ingest']}:".encode()).decode()
    prepared = ingest.segment({"authorization": f"Basic {basic}"}, secret, None)
    assert prepared.status == 400
    (letter,) = prepared.dead_letters
    assert b"jane" not in letter.raw.encode() and json.loads(letter.raw)["bytes"] == len(secret)
