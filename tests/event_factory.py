"""Test input for the lake jobs: normalised events put on the configured stream, dead letters in the store.

Events have the shape the collector puts on the stream (epoch-ms times, ``received_at`` set),
so the jobs read them exactly as they read production input.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from features.config import Settings
from features.deadletter import DeadLetter, open_dead_letter_store
from features.streams import StreamRecord, encode_batch, open_stream


def ms(text: str) -> int:
    """Epoch ms of an ISO time in UTC, e.g. ``ms("2026-11-02T23:59:59.999")``."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def event(
    event_type: str = "session_start",
    player_id: str = "p1",
    event_time: int | str = "2026-11-02T10:00:00",
    *,
    properties: dict[str, Any] | None = None,
    sent_at: int | None = None,
    received_at: int | None = None,
    event_id: str | None = None,
    game_id: str = "demo",
) -> dict[str, Any]:
    t = ms(event_time) if isinstance(event_time, str) else event_time
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "schema_version": 1,
        "event_type": event_type,
        "player_id": player_id,
        "game_id": game_id,
        "event_time": t,
        "sent_at": sent_at,
        "received_at": received_at if received_at is not None else t + 1000,
        "platform": "ios",
        "app_version": "1.0.0",
        "country": "DE",
        "session_id": None,
        "properties": properties or {},
    }


def put_events(settings: Settings, events: Iterable[dict[str, Any]], per_record: int = 20) -> None:
    """Put ``events`` on the stream in the given order, a record per player run of ``per_record``
    (a player being the pair ``(game_id, player_id)``, as the collector batches them)."""
    records: list[StreamRecord] = []
    batch: list[dict[str, Any]] = []
    for e in events:
        same_player = batch and (batch[-1]["game_id"], batch[-1]["player_id"]) == (e["game_id"], e["player_id"])
        if batch and (not same_player or len(batch) >= per_record):
            records.append(StreamRecord(batch[0]["player_id"], encode_batch(batch, batch[-1]["received_at"] + 5)))
            batch = []
        batch.append(e)
    if batch:
        records.append(StreamRecord(batch[0]["player_id"], encode_batch(batch, batch[-1]["received_at"] + 5)))
    with open_stream(settings.stream) as stream:
        stream.put(records)


def put_dead_letters(settings: Settings, reasons: Sequence[str]) -> None:
    store = open_dead_letter_store(settings.dead_letter)
    try:
        store.put(
            [
                DeadLetter(
                    received_at=ms("2026-11-02T10:00:00") + i,
                    reason=r,
                    raw=f'{{"n": {i}}}',
                    game_id="demo",
                    index=i,
                    request_id=f"req-{i}",
                )
                for i, r in enumerate(reasons)
            ]
        )
    finally:
        store.close()
