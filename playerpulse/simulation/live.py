"""Fresh events happening now, for the demo to show a profile change within a second.

The events come from the same device as the player's simulated history (``device_of`` depends
on the player id only), so the live session looks like the next session of that player.
"""

from __future__ import annotations

import numpy as np

from playerpulse.simulation.delivery import Delivery
from playerpulse.simulation.ids import rfc3339_strings, uuid4_strings
from playerpulse.simulation.players import GAME_ID, device_of
from playerpulse.simulation.sessions import OFFERS, SKUS, STORE_SECTIONS

# Seconds before ``now`` at which the live session's events happened, in order.
_SCRIPT: tuple[tuple[str, float], ...] = (
    ("session_start", 45.0),
    ("store_view", 30.0),
    ("offer_shown", 25.0),
    ("purchase", 5.0),
)


def live_events(player_ids: list[str], now_ms: int, seed: int) -> list[Delivery]:
    """One delivery per player: a session that just started, a store visit and a purchase."""
    rng = np.random.default_rng([seed & 0xFFFF_FFFF_FFFF_FFFF, now_ms & 0xFFFF_FFFF_FFFF_FFFF])
    deliveries = []
    for pid in player_ids:
        device = device_of(pid)
        event_ids = uuid4_strings(rng, len(_SCRIPT))
        (session_id,) = uuid4_strings(rng, 1)
        true_ms = np.array([now_ms - int(back * 1000) for _, back in _SCRIPT], dtype=np.int64)
        device_times = rfc3339_strings(true_ms + device.skew_ms)
        sku, price = SKUS[int(rng.integers(len(SKUS) - 2))]
        offer_id, offer_price = OFFERS[int(rng.integers(len(OFFERS)))]
        properties = {
            "session_start": {},
            "store_view": {"section": STORE_SECTIONS[int(rng.integers(len(STORE_SECTIONS)))]},
            "offer_shown": {"offer_id": offer_id, "price_usd": offer_price},
            "purchase": {"sku": sku, "price_usd": price, "currency": "USD"},
        }
        events = [
            {
                "event_id": eid,
                "event_type": kind,
                "player_id": pid,
                "game_id": GAME_ID,
                "event_time": at,
                "platform": device.platform,
                "app_version": device.app_version,
                "country": device.country,
                "session_id": session_id,
                "properties": properties[kind],
            }
            for eid, (kind, _), at in zip(event_ids, _SCRIPT, device_times, strict=True)
        ]
        deliveries.append(Delivery(pid, device.skew_ms, events, now_ms))
    return deliveries
