"""What happens inside a session: the events a game client records, at their true times.

Counts per session are drawn in bulk with numpy; laying the events out in time is a Python loop
over sessions with a ``random.Random`` seeded from the numpy generator, because that loop makes
one small decision per event and scalar numpy draws would cost ten times more. Sessions of a
player never overlap and end on the day they start, so every event's UTC date is the day the
ground truth attributes it to.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from playerpulse.simulation.players import Players
from playerpulse.simulation.world import DayPlan

DAY_MS = 86_400_000
MAX_SESSION_MS = 9_000_000  # 2.5 h; a day holds at most 6 sessions, so a slot is at least 4 h

SKUS: tuple[tuple[str, float], ...] = (
    ("gems_100", 0.99),
    ("gems_550", 4.99),
    ("gems_1200", 9.99),
    ("bundle_starter", 19.99),
    ("gems_6500", 49.99),
    ("gems_14000", 99.99),
)
OFFERS: tuple[tuple[str, float], ...] = (
    ("offer_starter_pack", 4.99),
    ("offer_weekend_gems", 9.99),
    ("offer_premium_bundle", 19.99),
    ("offer_season_pass", 14.99),
)
STORE_SECTIONS = ("featured", "gems", "bundles", "cosmetics")
AD_PLACEMENTS = ("rewarded_video", "interstitial", "banner")


@dataclass(frozen=True)
class SessionEvents:
    """Clean events in session order (each player's sessions in time order)."""

    player: np.ndarray
    """Player index of each event."""
    session: np.ndarray
    """Session index of each event (0..sessions-1)."""
    event_type: list[str]
    time_ms: np.ndarray
    """True (server clock) time of each event, epoch ms."""
    properties: list[dict[str, Any]]
    sessions: int


def _per_session_counts(players: Players, plan: DayPlan, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    sessions = plan.sessions
    total = int(sessions.sum())
    first = np.concatenate(([0], np.cumsum(sessions)[:-1])).astype(np.int64)
    owner = np.repeat(np.arange(sessions.size), sessions)  # player-day of each session
    slot = np.arange(total) - first[owner]
    width = DAY_MS // sessions[owner]
    start_offset = slot * width + (rng.random(total) * (width - MAX_SESSION_MS)).astype(np.int64)
    eng = players.engagement[plan.player[owner]]
    matches = np.minimum(1 + rng.poisson(1.0 + 1.4 * eng), 10)
    ads = np.minimum(rng.poisson(0.45, total), 4)
    spends = np.minimum(rng.poisson(0.5, total), 4)
    # Each store view of the day lands in one of that day's sessions; each purchase follows one
    # of that day's store views, so it lands in a session that has one.
    view_owner = np.repeat(np.arange(sessions.size), plan.store_views)
    view_session = first[view_owner] + (rng.random(view_owner.size) * sessions[view_owner]).astype(np.int64)
    views = np.bincount(view_session, minlength=total)
    view_first = np.concatenate(([0], np.cumsum(plan.store_views)[:-1])).astype(np.int64)
    buy_owner = np.repeat(np.arange(sessions.size), plan.purchases)
    buy_view = view_first[buy_owner] + (rng.random(buy_owner.size) * plan.store_views[buy_owner]).astype(np.int64)
    buys = np.bincount(view_session[buy_view], minlength=total)
    return owner, start_offset, matches, views, buys, ads, spends


def lay_out_sessions(players: Players, plan: DayPlan, period_start_ms: int, rng: np.random.Generator) -> SessionEvents:
    """Turn per-day plans into timed events with properties that pass the quality rules."""
    owner, start_offset, matches, views, buys, ads, spends = _per_session_counts(players, plan, rng)
    rnd = random.Random(int(rng.integers(1 << 62)))
    uniform, rand, choice = rnd.uniform, rnd.random, rnd.choice
    p_win = (1.0 / (1.0 + np.exp(-0.9 * players.skill))).tolist()
    skill = players.skill.tolist()
    spend = players.spend.tolist()
    level = players.start_level.astype(np.int64).tolist()
    session_player = plan.player[owner]
    session_start = period_start_ms + plan.day[owner] * DAY_MS + start_offset

    types: list[str] = []
    times: list[int] = []
    props: list[dict[str, Any]] = []
    per_session = np.zeros(owner.size, dtype=np.int64)

    def emit(kind: str, at: float, properties: dict[str, Any]) -> None:
        types.append(kind)
        times.append(int(at))
        props.append(properties)

    for s, (p, t0, n_match, n_view, n_buy, n_ad, n_spend) in enumerate(
        zip(
            session_player.tolist(),
            session_start.tolist(),
            matches.tolist(),
            views.tolist(),
            buys.tolist(),
            ads.tolist(),
            spends.tolist(),
            strict=True,
        )
    ):
        before = len(types)
        units = ["m"] * n_match + ["s"] * n_view + ["a"] * n_ad + ["c"] * n_spend
        rnd.shuffle(units)
        buy_at = [0] * n_view
        for _ in range(n_buy):
            buy_at[rnd.randrange(n_view)] += 1
        view_no = 0
        emit("session_start", t0, {})
        clock = t0 + uniform(2_000, 20_000)
        for unit in units:
            if unit == "m":
                seconds = uniform(60, 480)
                clock += seconds * 1000
                won = rand() < p_win[p]
                score = float(max(0, round(rnd.gauss(1000 + 250 * skill[p], 200) + (150 if won else 0))))
                emit("match_end", clock, {"won": won, "score": score, "duration_s": round(seconds, 1)})
                clock += uniform(500, 3_000)
                emit(
                    "currency_earn",
                    clock,
                    {"amount": float(rnd.randint(20, 60) + (40 if won else 0)), "source": "match"},
                )
                if rand() < 0.12:
                    level[p] += 1
                    clock += uniform(200, 1_500)
                    emit("level_up", clock, {"level": level[p]})
            elif unit == "s":
                clock += uniform(5_000, 30_000)
                emit("store_view", clock, {"section": choice(STORE_SECTIONS)})
                if rand() < 0.6:
                    clock += uniform(1_000, 8_000)
                    offer_id, price = choice(OFFERS)
                    emit("offer_shown", clock, {"offer_id": offer_id, "price_usd": price})
                for _ in range(buy_at[view_no]):
                    clock += uniform(5_000, 40_000)
                    tier = min(len(SKUS) - 1, max(0, round(rnd.gauss(1.0 + 0.9 * spend[p], 1.0))))
                    sku, price = SKUS[tier]
                    emit("purchase", clock, {"sku": sku, "price_usd": price, "currency": "USD"})
                view_no += 1
            elif unit == "a":
                clock += uniform(15_000, 35_000)
                placement = choice(AD_PLACEMENTS)
                rewarded = placement == "rewarded_video"
                emit("ad_view", clock, {"placement": placement, "rewarded": rewarded})
                if rewarded:
                    clock += uniform(500, 2_000)
                    emit("currency_earn", clock, {"amount": 25.0, "source": "ad"})
            else:
                clock += uniform(3_000, 20_000)
                emit(
                    "currency_spend",
                    clock,
                    {
                        "amount": float(rnd.choice((50, 100, 150, 250, 500))),
                        "item": choice(("booster", "skin", "revive", "chest")),
                    },
                )
        clock += uniform(2_000, 30_000)
        emit("session_end", clock, {"duration_s": round((math.floor(clock) - t0) / 1000, 3)})
        per_session[s] = len(types) - before

    session_of_event = np.repeat(np.arange(owner.size), per_session)
    return SessionEvents(
        player=session_player[session_of_event],
        session=session_of_event,
        event_type=types,
        time_ms=np.asarray(times, dtype=np.int64),
        properties=props,
        sessions=int(owner.size),
    )
