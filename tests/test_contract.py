"""The event contract: what a valid event is, how times are read and bounded."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from features.contract import (
    MAX_PROPERTIES_DEPTH,
    MAX_REASON_CHARS,
    Event,
    EventValidator,
    TimeBounds,
    event_schema_components,
    nesting_depth,
    normalise,
)
from tests_support import make_event

NOW = 1_795_000_000_000
HOUR = 3_600_000
validator = EventValidator(TimeBounds.of(max_past_days=1, max_future_minutes=60))


def typed(**over) -> Event:
    return msgspec.convert(make_event(**over), Event, strict=False)


@pytest.mark.parametrize(
    ("event_time", "sent_at"),
    [
        (NOW - 2 * HOUR, None),
        (NOW + 2 * HOUR, None),
        (NOW - 30 * HOUR, None),
        (NOW + 2 * HOUR, NOW + 2 * HOUR),  # fast device clock, corrected back
        (NOW - 25 * HOUR, NOW - 2 * HOUR),  # slow clock: corrected to 23 h ago
        (datetime.fromtimestamp((NOW + 61 * 60_000) / 1000, UTC), None),
        (datetime.fromtimestamp((NOW - 5_000) / 1000, UTC), datetime.fromtimestamp((NOW - 4_000) / 1000, UTC)),
    ],
)
def test_batch_time_check_agrees_with_the_single_event_check(event_time, sent_at):
    ev = typed(event_time=event_time, sent_at=sent_at)
    assert validator.batch_rejections([ev], NOW).get(0) == validator.check_time(ev, NOW)


def test_rfc3339_and_epoch_ms_times_normalise_to_the_same_milliseconds():
    as_text = typed(event_time="2026-11-20T10:00:00.250Z")
    as_ms = typed(event_time=int(datetime(2026, 11, 20, 10, 0, 0, 250_000, tzinfo=UTC).timestamp() * 1000))
    assert normalise(as_text, NOW)["event_time"] == normalise(as_ms, NOW)["event_time"]


def test_event_id_is_normalised_to_lower_case():
    ev = typed(event_id="3B241101-E2BB-4255-8CAF-4136C566A962")
    assert normalise(ev, NOW)["event_id"] == "3b241101-e2bb-4255-8caf-4136c566a962"


def test_unknown_fields_are_refused_with_their_name():
    event, reason = validator.check({**make_event(event_time=NOW), "surprise": 1}, NOW)
    assert event is None and "surprise" in reason


@pytest.mark.parametrize(
    ("over", "field"),
    [({"player_id": "has space"}, "player_id"), ({"player_id": "x" * 65}, "player_id"), ({"country": "de"}, "country")],
)
def test_identity_rules_refuse_the_same_events_in_a_batch_and_one_by_one(over, field):
    raw = make_event(event_time=NOW, **over)
    single_event, single_reason = validator.check(raw, NOW)
    assert single_event is None and field in single_reason
    if len(raw.get("player_id", "")) <= 64:
        ev = msgspec.convert(raw, Event, strict=False)
        assert validator.batch_rejections([ev], NOW)[0] == single_reason


def test_a_player_id_with_a_trailing_newline_is_refused():
    event, reason = validator.check(make_event(event_time=NOW, player_id="p1\n"), NOW)
    assert event is None and "player_id" in reason


DAY = 24 * HOUR


@pytest.mark.parametrize(
    ("event_time", "sent_at"),
    [
        (NOW - 2 * HOUR + 23 * HOUR, NOW + 23 * HOUR),  # a clock 23 h fast: still corrected
        (NOW + 25 * HOUR, NOW + 25 * HOUR),  # 25 h fast: refused
        (NOW - 25 * HOUR, NOW - 25 * HOUR),  # 25 h slow: refused
        (1_000, 1_000),  # a clock set to 1970
        (32_503_000_000_000, 32_503_000_000_000),  # a clock set to 2999
        (datetime.fromtimestamp((NOW - 30 * DAY) / 1000, UTC), datetime.fromtimestamp((NOW - 30 * DAY) / 1000, UTC)),
    ],
)
def test_batch_and_single_checks_refuse_the_same_device_clocks(event_time, sent_at):
    ev = typed(event_time=event_time, sent_at=sent_at)
    _, single_reason = validator.check(make_event(event_time=event_time, sent_at=sent_at), NOW)
    assert validator.batch_rejections([ev], NOW).get(0) == validator.check_time(ev, NOW) == single_reason


def test_a_device_clock_further_off_than_the_bound_is_refused_naming_sent_at():
    reason = validator.check_time(typed(event_time=NOW + 25 * HOUR, sent_at=NOW + 25 * HOUR), NOW)
    assert reason is not None and "sent_at" in reason and "24 h" in reason


def test_the_clock_skew_bound_is_configurable():
    strict = EventValidator(TimeBounds.of(max_past_days=1, max_future_minutes=60, max_clock_skew_hours=1))
    ev = typed(event_time=NOW + 2 * HOUR, sent_at=NOW + 2 * HOUR)
    assert validator.check_time(ev, NOW) is None
    assert "1 h" in strict.check_time(ev, NOW)
    assert strict.batch_rejections([ev], NOW)[0] == strict.check_time(ev, NOW)


def nested(depth: int) -> dict:
    """Objects and arrays in turn, ``depth`` levels in all (the outermost an object)."""
    value: Any = {} if depth % 2 else []
    for level in range(depth - 1, 0, -1):
        value = {"a": value} if level % 2 else [value]
    return value


def test_properties_may_nest_up_to_the_contracts_depth():
    assert nesting_depth(nested(MAX_PROPERTIES_DEPTH)) == MAX_PROPERTIES_DEPTH
    for properties in (nested(MAX_PROPERTIES_DEPTH), {"list": [[[[[[[1]]]]]]], "n": 1.5, "s": "x", "b": True}):
        raw = make_event(event_time=NOW, properties=properties)
        assert validator.check(raw, NOW)[1] is None
        assert msgspec.json.decode(msgspec.json.encode([raw]), type=list[Event])[0].properties == properties


@pytest.mark.parametrize("value", [nested(MAX_PROPERTIES_DEPTH + 1), {"list": [[[[[[[[1]]]]]]]]}])
def test_properties_nesting_deeper_are_refused_one_by_one_and_in_a_batch(value):
    raw = make_event(event_time=NOW, properties=value)
    event, reason = validator.check(raw, NOW)
    assert event is None and reason == f"properties nest deeper than {MAX_PROPERTIES_DEPTH} levels - at `$.properties`"
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(msgspec.json.encode([raw]), type=list[Event])


def test_the_published_schema_states_the_properties_depth():
    schema = event_schema_components()["Event"]["properties"]["properties"]
    assert schema["type"] == "object" and schema["maxProperties"] == 64
    assert schema["x-max-depth"] == MAX_PROPERTIES_DEPTH
    assert f"at most {MAX_PROPERTIES_DEPTH} levels" in schema["description"]


def test_a_reason_quoting_a_long_field_name_is_cut_to_the_contracts_length():
    event, reason = validator.check({**make_event(event_time=NOW), "y" * 10_000: 1}, NOW)
    assert event is None and "unknown field" in reason and len(reason) <= MAX_REASON_CHARS
