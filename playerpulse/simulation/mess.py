"""The mess real game clients make, applied on top of clean simulated events.

Every fault here is one the platform must survive and that a test can count: clocks that are
off, two time formats, batches re-sent after a lost response, events held back for hours, and a
few values that are not events at all or break a property rule. Faults are injected as *extra*
values (or as re-sends of the same event ids), so the clean history and its ground truth stay
exactly what the world simulated.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from playerpulse.simulation.delivery import Delivery, InjectedEvent, InjectedKind
from playerpulse.simulation.ids import rfc3339_strings, uuid4_strings
from playerpulse.simulation.players import GAME_ID, Players
from playerpulse.simulation.sessions import SessionEvents

EVENT_TIME_STRING_SHARE = 0.70
LATE_EVENT_SHARE = 0.03
LATE_DELAY_MS = (2 * 3_600_000, 10 * 3_600_000)
LATE_GROUP_SPAN_MS = 3_600_000
DUPLICATE_DELIVERY_SHARE = 0.02
MALFORMED_ENVELOPE_SHARE = 0.005
MALFORMED_PROPERTIES_SHARE = 0.003
MAX_EVENTS_PER_DELIVERY = 100

_Batch = tuple[int, int, np.ndarray]  # (simulated send ms, player index, event indices)


def raw_events(
    players: Players, events: SessionEvents, event_ids: list[str], session_ids: list[str], rng: np.random.Generator
) -> list[dict[str, Any]]:
    """Event objects as clients send them: device-clock times, ~70% RFC 3339 text, the rest epoch ms."""
    device_ms = events.time_ms + players.skew_ms[events.player]
    times: list[Any] = device_ms.tolist()
    as_text = np.flatnonzero(rng.random(device_ms.size) < EVENT_TIME_STRING_SHARE)
    for i, text in zip(as_text.tolist(), rfc3339_strings(device_ms[as_text]), strict=True):
        times[i] = text
    pids = players.ids
    devices = players.devices
    return [
        {
            "event_id": eid,
            "event_type": kind,
            "player_id": pids[p],
            "game_id": GAME_ID,
            "event_time": at,
            "platform": devices[p].platform,
            "app_version": devices[p].app_version,
            "country": devices[p].country,
            "session_id": session_ids[s],
            "properties": props,
        }
        for eid, kind, p, s, at, props in zip(
            event_ids,
            events.event_type,
            events.player.tolist(),
            events.session.tolist(),
            times,
            events.properties,
            strict=True,
        )
    ]


@dataclass(frozen=True)
class Mess:
    deliveries: list[Delivery]
    injected: list[InjectedEvent]
    late_events: int
    duplicate_deliveries: int


def _regular_batches(
    players: Players, events: SessionEvents, on_time: np.ndarray, rng: np.random.Generator
) -> list[_Batch]:
    """The SDK sends its queue when ``flush_size`` events wait or the session ends."""
    if on_time.size == 0:
        return []
    session = events.session[on_time]
    position = np.arange(on_time.size)
    new_session = np.r_[True, session[1:] != session[:-1]]
    in_session = position - np.maximum.accumulate(np.where(new_session, position, 0))
    flush = players.flush_size[events.player[on_time]]
    starts = np.flatnonzero(new_session | (in_session % flush == 0))
    ends = np.r_[starts[1:], on_time.size]
    send = events.time_ms[on_time[ends - 1]] + rng.integers(200, 15_000, size=starts.size)
    owners = events.player[on_time[starts]]
    return [
        (int(t), int(p), on_time[a:b])
        for t, p, a, b in zip(send.tolist(), owners.tolist(), starts.tolist(), ends.tolist(), strict=True)
    ]


def _late_batches(events: SessionEvents, late: np.ndarray, rng: np.random.Generator) -> list[_Batch]:
    """Held-back events leave hours later, grouped per player into batches spanning at most an hour."""
    if late.size == 0:
        return []
    due = events.time_ms[late] + rng.integers(*LATE_DELAY_MS, size=late.size)
    owner = events.player[late]
    order = np.lexsort((due, owner))
    batches: list[_Batch] = []
    group: list[int] = []
    for i in order.tolist():
        if group and (
            owner[i] != owner[group[0]]
            or due[i] - due[group[0]] > LATE_GROUP_SPAN_MS
            or len(group) == MAX_EVENTS_PER_DELIVERY
        ):
            batches.append((int(due[group[-1]]), int(owner[group[0]]), late[group]))
            group = []
        group.append(i)
    batches.append((int(due[group[-1]]), int(owner[group[0]]), late[group]))
    return batches


def _drop(ev: dict[str, Any], key: str) -> dict[str, Any]:
    del ev[key]
    return ev


def _with(**changes: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda ev: {**ev, **copy.deepcopy(changes)}


ENVELOPE_DEFECTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "missing_player_id": lambda ev: _drop(ev, "player_id"),
    "unknown_event_type": _with(event_type="level_complete"),
    "event_time_as_word": _with(event_time="yesterday"),
    "array_instead_of_object": lambda ev: list(ev.values()),
    "player_id_200_chars": _with(player_id="p" * 200),
    "event_id_not_uuid": lambda ev: {**ev, "event_id": "evt-" + ev["event_id"][:8]},
    "unknown_platform": _with(platform="smart_fridge"),
    "properties_as_text": _with(properties="won=true;score=12"),
    "event_time_year_2199": _with(event_time="2199-01-01T00:00:00.000Z"),
    "unknown_field": lambda ev: {**ev, "userId": ev["player_id"]},
}
PROPERTY_DEFECTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "purchase_negative_price": _with(event_type="purchase", properties={"sku": "gems_100", "price_usd": -0.99}),
    "purchase_without_sku": _with(event_type="purchase", properties={"price_usd": 4.99}),
    "level_up_without_level": _with(event_type="level_up", properties={}),
}


def _inject(
    deliveries: list[Delivery], templates: list[dict[str, Any]], rng: np.random.Generator, clean_events: int
) -> list[InjectedEvent]:
    """Extra bad values in random deliveries, each made from a real event of that delivery so
    only its one defect is wrong; every defect kind takes its turn."""
    injected: list[InjectedEvent] = []
    plan: list[tuple[InjectedKind, dict[str, Callable[[dict[str, Any]], Any]], int]] = [
        ("envelope", ENVELOPE_DEFECTS, int(rng.binomial(clean_events, MALFORMED_ENVELOPE_SHARE))),
        ("properties", PROPERTY_DEFECTS, int(rng.binomial(clean_events, MALFORMED_PROPERTIES_SHARE))),
    ]
    total = sum(count for _, _, count in plan)
    fresh_ids = iter(uuid4_strings(rng, total))
    has_room = np.flatnonzero([len(d.events) < MAX_EVENTS_PER_DELIVERY for d in deliveries])
    if has_room.size == 0:
        return injected
    for kind, defects, count in plan:
        names = list(defects)
        for k in range(count):
            target = int(has_room[rng.integers(has_room.size)])
            delivery = deliveries[target]
            if len(delivery.events) >= MAX_EVENTS_PER_DELIVERY:
                continue
            name = names[k % len(names)]
            template = copy.deepcopy(templates[target])
            template["event_id"] = next(fresh_ids)
            value = defects[name](template)
            delivery.events.insert(int(rng.integers(len(delivery.events) + 1)), value)
            injected.append(InjectedEvent(kind, name, value, delivery.skew_ms))
    return injected


def make_mess(players: Players, events: SessionEvents, raw: list[dict[str, Any]], rng: np.random.Generator) -> Mess:
    """Batch clean events into deliveries in send order, then add the faults."""
    late_mask = rng.random(len(raw)) < LATE_EVENT_SHARE
    batches = _regular_batches(players, events, np.flatnonzero(~late_mask), rng)
    batches += _late_batches(events, np.flatnonzero(late_mask), rng)
    batches.sort(key=lambda b: b[0])
    skew = players.skew_ms.tolist()
    deliveries = [Delivery(players.ids[p], skew[p], [raw[i] for i in idx.tolist()], t) for t, p, idx in batches]
    templates = [raw[int(idx[0])] for _, _, idx in batches]
    injected = _inject(deliveries, templates, rng, len(raw))

    resend = np.flatnonzero(rng.random(len(deliveries)) < DUPLICATE_DELIVERY_SHARE)
    delays = rng.integers(1_000, 120_000, size=resend.size)
    copies = [
        Delivery(
            deliveries[i].player_id,
            deliveries[i].skew_ms,
            list(deliveries[i].events),
            deliveries[i].simulated_send_ms + int(dt),
            duplicate=True,
        )
        for i, dt in zip(resend.tolist(), delays.tolist(), strict=True)
    ]
    merged = sorted(deliveries + copies, key=lambda d: d.simulated_send_ms)
    return Mess(merged, injected, int(late_mask.sum()), len(copies))
