"""``simulate``: a seeded world of players, their messy deliveries, and the truth behind them.

The simulation is deterministic for a seed (event ids included), so a replay through the
collector is idempotent and every number in a report can be reproduced. It returns both what a
game would send (``deliveries``) and what really happened (``events`` with true times, and the
per-day purchase ``ground_truth``), so tests and reports can check the platform against reality.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from playerpulse.simulation.delivery import Delivery, InjectedEvent
from playerpulse.simulation.ids import uuid4_strings
from playerpulse.simulation.mess import make_mess, raw_events
from playerpulse.simulation.players import draw_players
from playerpulse.simulation.sessions import lay_out_sessions
from playerpulse.simulation.world import plan_days


@dataclass(frozen=True)
class Simulation:
    """What the devices send, and what really happened."""

    seed: int
    start: datetime
    """UTC midnight of the first simulated day."""
    end: datetime
    """UTC midnight after the last simulated day."""
    player_ids: list[str]
    deliveries: list[Delivery]
    """HTTP batches in the order the devices send them (re-sends and late batches included)."""
    events: pd.DataFrame
    """The clean events, one row each: event_id, event_type, player_id, session_id, time_ms
    (true time, epoch ms), event_time (true time, UTC) and properties."""
    ground_truth: pd.DataFrame
    """One row per (player_id, date): the true p_purchase of that day and whether a purchase happened."""
    injected: list[InjectedEvent]
    """The malformed values added on top of the clean events."""
    stats: dict[str, int]


def _default_end() -> datetime:
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def _check_end(end: datetime) -> datetime:
    if end.tzinfo is None:
        raise ValueError("end must be timezone-aware (a UTC midnight)")
    end = end.astimezone(UTC)
    if (end.hour, end.minute, end.second, end.microsecond) != (0, 0, 0, 0):
        raise ValueError(f"end must be a UTC midnight, got {end.isoformat()}")
    return end


def simulate(players: int, days: int, seed: int = 7, end: datetime | None = None) -> Simulation:
    """Simulate ``players`` players over the ``days`` full UTC days before ``end`` (default: today 00:00 UTC)."""
    if players < 1 or days < 1:
        raise ValueError(f"need at least one player and one day, got players={players}, days={days}")
    end = _check_end(end) if end is not None else _default_end()
    start = end - timedelta(days=days)
    rng = np.random.default_rng(seed)
    roster = draw_players(players, days, rng)
    plan = plan_days(roster, days, start.date(), rng)
    laid = lay_out_sessions(roster, plan, int(start.timestamp() * 1000), rng)
    event_ids = uuid4_strings(rng, len(laid.event_type))
    session_ids = uuid4_strings(rng, laid.sessions)
    raw = raw_events(roster, laid, event_ids, session_ids, rng)
    mess = make_mess(roster, laid, raw, rng)

    events = pd.DataFrame(
        {
            "event_id": event_ids,
            "event_type": laid.event_type,
            "player_id": np.asarray(roster.ids, dtype=object)[laid.player],
            "session_id": np.asarray(session_ids, dtype=object)[laid.session],
            "time_ms": laid.time_ms,
            "event_time": pd.to_datetime(laid.time_ms, unit="ms", utc=True),
            "properties": pd.Series(laid.properties, dtype=object),
        }
    )
    truth = plan.ground_truth
    stats = {
        "players": players,
        "days": days,
        "clean_events": len(raw),
        "sessions": laid.sessions,
        "deliveries": len(mess.deliveries),
        "duplicate_deliveries": mess.duplicate_deliveries,
        "late_events": mess.late_events,
        "malformed_envelope": sum(1 for i in mess.injected if i.kind == "envelope"),
        "malformed_properties": sum(1 for i in mess.injected if i.kind == "properties"),
        "purchases": int((events["event_type"] == "purchase").sum()),
        "active_player_days": int(plan.player.size),
        "purchase_player_days": int(truth["purchased"].sum()),
    }
    return Simulation(seed, start, end, roster.ids, mess.deliveries, events, truth, mess.injected, stats)


def write_ground_truth(sim: Simulation, path: str | Path) -> Path:
    """Parquet of the ground truth, so training can report the AUC ceiling next to its own."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    sim.ground_truth.to_parquet(target, index=False)
    return target
