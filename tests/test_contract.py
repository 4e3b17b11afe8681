"""The event contract: what a valid event is, how times are read and bounded."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from features.contract import Event, EventValidator, TimeBounds, normalise
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
