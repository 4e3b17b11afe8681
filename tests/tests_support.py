"""Small builders shared by the tests (events as a game would send them)."""

from __future__ import annotations

import uuid
from typing import Any

from features.contract import now_ms


def make_event(player: str = "p1", **over: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "event_type": "session_start",
        "player_id": player,
        "game_id": "demo",
        "event_time": now_ms() - 1000,
        "platform": "ios",
        "app_version": "1.0.0",
    }
    e.update(over)
    return e
