"""Small builders shared by the tests (events as a game would send them)."""

from __future__ import annotations

import uuid
from typing import Any

from features.contract import now_ms
from features.online import Profile
from features.profile_state import ProfileState

PLATFORM_CONTEXT: dict[str, Any] = {
    "name": "platform",
    "type": "category",
    "values": ["ios", "android", "pc"],
    "default": "ios",
    "training": {"latest_property": {"event_type": "session_start", "property": "platform"}},
}
"""A request-time context field as a model YAML declares it: the platform, trained from the
player's latest session start (the context tests share it)."""


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


async def call_asgi(app: Any, method: str, path: str, headers: dict[str, str], receive: Any) -> list[dict[str, Any]]:
    """One request straight through the ASGI interface (lifespan included), with the caller's
    ``receive``: for specs about *how* a body is read (never, slowly), which a test client hides."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "scheme": "http",
        "root_path": "",
        "app": app,
        "state": {},
    }
    async with app.router.lifespan_context(app):
        await app(scope, receive, send)
    return sent


def sessions_profile(game_id: str, player_id: str, sessions: int) -> Profile:
    """A profile as the streaming job writes it after ``sessions`` session starts in the last
    minutes: the profile API computes ``session_count_1d`` = ``sessions`` from its tiles."""
    from features.definitions import PLAYER_ACTIVITY_V1

    now = now_ms()
    state = ProfileState()
    for i in range(sessions):
        state.apply(PLAYER_ACTIVITY_V1, {"event_id": f"s{i}", "event_type": "session_start"}, now - 1000 * (i + 1), 100)
    return Profile(
        game_id=game_id,
        player_id=player_id,
        version=1,
        as_of=now,
        features=state.features(PLAYER_ACTIVITY_V1, now),
        state=state.to_dict(),
        feature_set=PLAYER_ACTIVITY_V1.full_name,
    )
