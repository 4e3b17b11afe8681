"""A paced load of game-SDK batches on a few keep-alive connections to ``POST /v1/events``.

Open loop: batch ``i`` of a phase is due at ``start + i × interval`` whatever the answers
before it took, and whichever connection is free sends it; a batch that could not leave on time
leaves as soon as a connection is free, and how late it left is recorded. So the rate offered
does not bend to the server (a closed loop would quietly send less when the server slowed
down), and the rate really achieved, acknowledged events over the phase, is reported beside
it.

Each batch is one player's ``batch_events`` events, gzip'd, as a device SDK flushes them; the
players are visited in a shuffled cycle, so no player sends twice before every other player
has sent once (a player's batch is then alone on the stream until the job folds it, which the
freshness poller relies on).

The client speaks HTTP/1.1 over asyncio streams itself rather than through httpx: on two cores
the load generator's CPU is taken from the job being measured, and a hand-built request with
a ``Content-Length`` reply costs a fraction of what a general client spends per request.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

INGEST_KEY = "pp-demo-key-local-only"
GAME = "demo"
_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.I)
_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.I)

EVENT_MIX: tuple[tuple[str, dict], ...] = (
    ("session_start", {}),
    ("match_end", {"won": True, "score": 1250.0}),
    ("match_end", {"won": False, "score": 800.0}),
    ("store_view", {"placement": "main_menu"}),
    ("currency_earn", {"amount": 50.0}),
    ("level_up", {"level": 12}),
    ("offer_shown", {"offer_id": "starter_pack"}),
    ("ad_view", {"placement": "rewarded"}),
    ("currency_spend", {"amount": 20.0}),
    ("session_end", {"duration_s": 612.0}),
)
"""What a session's flush holds; properties as silver's expectations want them."""

AckCallback = Callable[[str, int, float], None]
"""``(player_id, sent_ms, acked_ms)`` of every batch answered 202 (wall-clock epoch ms)."""


class PlayerCycle:
    """Player ids ``fresh-000000`` … in a shuffled order, each once per cycle."""

    def __init__(self, players: int, seed: int = 7):
        self.ids = [player_id(i) for i in range(players)]
        random.Random(seed).shuffle(self.ids)
        self.next_index = 0

    def next(self) -> str:
        pid = self.ids[self.next_index % len(self.ids)]
        self.next_index += 1
        return pid


def player_id(i: int) -> str:
    return f"fresh-{i:06d}"


_RUN_ID = uuid.uuid4().hex
_event_numbers = itertools.count()


def event_id() -> str:
    """A UUID unique to this process and event: a random prefix per run and a counter (a fresh
    ``uuid4`` costs several microseconds, which the job under test would pay for on two cores)."""
    h = _RUN_ID
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{next(_event_numbers):012x}"


def batch_body(player: str, events: int, sent_ms: int) -> bytes:
    """One SDK flush: ``events`` of ``player``'s events from the last seconds, gzip'd JSON."""
    out = []
    for i in range(events):
        event_type, props = EVENT_MIX[i % len(EVENT_MIX)]
        out.append(
            {
                "event_id": event_id(),
                "event_type": event_type,
                "player_id": player,
                "game_id": GAME,
                "event_time": sent_ms - (events - i) * 500,
                "sent_at": sent_ms,
                "platform": "android",
                "app_version": "1.4.2",
                "country": "DE",
                "session_id": f"s-{player}",
                "properties": props,
            }
        )
    return gzip.compress(msgspec.json.encode({"events": out}), compresslevel=5, mtime=0)


def request_bytes(host: str, port: int, body: bytes) -> bytes:
    head = (
        f"POST /v1/events HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Encoding: gzip\r\nAuthorization: Bearer {INGEST_KEY}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class PhaseResult:
    """What one phase of load did, as the client saw it."""

    name: str
    offered_rate: float
    seconds: float
    batch_events: int
    started_ms: float = 0.0
    """Wall-clock epoch ms at which the phase's first batch was due."""
    ended_ms: float = 0.0
    """Wall-clock epoch ms at which its last answer came back."""
    batches: int = 0
    acked_events: int = 0
    rejected_events: int = 0
    failed_requests: int = 0
    """Requests answered with anything but 202, or lost with their connection."""
    statuses: dict[int, int] = field(default_factory=dict)
    send_lag_ms: list[float] = field(default_factory=list)
    """How long after its due time each batch left (0 when on time)."""
    request_ms: list[float] = field(default_factory=list)

    @property
    def achieved_rate(self) -> float:
        """Acknowledged events per second over the phase (its scheduled length, or longer
        when the last answers came back after it)."""
        span_s = max(self.seconds, (self.ended_ms - self.started_ms) / 1000)
        return self.acked_events / span_s if span_s > 0 else 0.0


class _Schedule:
    def __init__(self, rate: float, seconds: float, batch_events: int, loop: asyncio.AbstractEventLoop):
        self.interval = batch_events / rate
        self.count = max(1, round(seconds * rate / batch_events))
        self.start = loop.time() + 0.05
        self.issued = 0

    def take(self) -> tuple[int, float] | None:
        """The next batch's index and due time (loop clock), ``None`` once the phase is done."""
        if self.issued >= self.count:
            return None
        i = self.issued
        self.issued += 1
        return i, self.start + i * self.interval


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> tuple[int, bytes, bool]:
    writer.write(data)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    m = _LENGTH.search(head)
    body = await reader.readexactly(int(m.group(1))) if m else b""
    return status, body, bool(_CLOSE.search(head))


async def _connection(
    host: str,
    port: int,
    schedule: _Schedule,
    players: PlayerCycle,
    result: PhaseResult,
    on_ack: AckCallback | None,
) -> None:
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while (job := schedule.take()) is not None:
            _, due = job
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            player = players.next()
            sent_ms = time.time_ns() // 1_000_000
            data = request_bytes(host, port, batch_body(player, result.batch_events, sent_ms))
            result.send_lag_ms.append(max(0.0, (loop.time() - due) * 1000))
            began = loop.time()
            try:
                status, body, close = await _exchange(reader, writer, data)
            except (ConnectionError, asyncio.IncompleteReadError, ValueError):
                result.failed_requests += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            acked_ms = time.time_ns() / 1e6
            result.request_ms.append((loop.time() - began) * 1000)
            result.batches += 1
            result.statuses[status] = result.statuses.get(status, 0) + 1
            result.ended_ms = max(result.ended_ms, acked_ms)
            if status == 202:
                answer = json.loads(body)
                result.acked_events += int(answer.get("accepted", 0))
                result.rejected_events += int(answer.get("rejected", 0))
                if on_ack is not None:
                    on_ack(player, sent_ms, acked_ms)
            else:
                result.failed_requests += 1
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


async def _run(
    name: str,
    host: str,
    port: int,
    rate: float,
    seconds: float,
    batch_events: int,
    connections: int,
    players: PlayerCycle,
    on_ack: AckCallback | None,
) -> PhaseResult:
    loop = asyncio.get_running_loop()
    result = PhaseResult(name, rate, seconds, batch_events)
    schedule = _Schedule(rate, seconds, batch_events, loop)
    result.started_ms = time.time_ns() / 1e6 + (schedule.start - loop.time()) * 1000
    await asyncio.gather(*(_connection(host, port, schedule, players, result, on_ack) for _ in range(connections)))
    return result


def run_phase(
    name: str,
    url: str,
    rate: float,
    seconds: float,
    batch_events: int,
    connections: int,
    players: PlayerCycle,
    on_ack: AckCallback | None = None,
) -> PhaseResult:
    """Offer ``rate`` events/s for ``seconds`` to the collector at ``url`` (``http://host:port``)."""
    m = re.fullmatch(r"http://([^:/]+):(\d+)/?", url)
    if not m:
        raise ValueError(f"not an http://host:port URL: {url}")
    host, port = m.group(1), int(m.group(2))
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        runner = asyncio.run
    return runner(_run(name, host, port, rate, seconds, batch_events, connections, players, on_ack))
