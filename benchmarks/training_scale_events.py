"""Silver rows for the training-scale benchmark, drawn in bulk with numpy (no Spark, no simulator loop).

``benchmarks/training_scale.py`` needs millions of silver events whose purchases a model can learn
(so early stopping trains a realistic number of rounds) without spending minutes in the
simulator's per-event Python loop (``playerpulse.simulation.sessions.lay_out_sessions``). So the
who-plays-and-buys part is the simulator's own: latent players (``draw_players``), who is active
each day and who buys from the ``BuyModel`` (``plan_days``), and the per-session draws of matches,
store views, purchases, ads and spends (``_per_session_counts``). What the loop did per event is
done per array here: each session's events get uniform times inside the session, and properties
come from the simulator's value sets (SKUs by the spend trait, wins by skill, offers, placements).

The event count is made exact: the filler events (``match_end``, ``currency_earn``, ``level_up``,
``ad_view``, ``currency_spend``) are thinned or topped up at random to reach ``events``; sessions,
store views, offers and purchases are never touched, so the labels keep the simulator's
behaviour. Rows are returned as one Arrow table per UTC day, in the column order and types silver
writes (``SILVER_COLUMNS``, checked against Spark's schema by the benchmark before writing).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from playerpulse.simulation.players import GAME_ID, Players, draw_players
from playerpulse.simulation.sessions import (
    AD_PLACEMENTS,
    MAX_SESSION_MS,
    OFFERS,
    SKUS,
    STORE_SECTIONS,
    _per_session_counts,
)
from playerpulse.simulation.world import DayPlan, plan_days

DAY_MS = 86_400_000
KINDS = (
    "session_start",
    "session_end",
    "store_view",
    "offer_shown",
    "purchase",
    "match_end",
    "currency_earn",
    "level_up",
    "ad_view",
    "currency_spend",
)
"""Event types by index; the first five are the sessions' structure, the rest filler."""
STRUCTURAL = 5
SESSION_START, SESSION_END, STORE_VIEW, OFFER_SHOWN, PURCHASE = range(STRUCTURAL)
MATCH_END, CURRENCY_EARN, LEVEL_UP, AD_VIEW, CURRENCY_SPEND = range(STRUCTURAL, len(KINDS))
MS_PER_EVENT = 90_000
"""Session length per event it holds (matches take minutes), capped at the simulator's 2.5 h."""

SILVER_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("event_id", pa.string()),
    ("schema_version", pa.int32()),
    ("event_type", pa.string()),
    ("player_id", pa.string()),
    ("game_id", pa.string()),
    ("event_time", pa.timestamp("us", tz="UTC")),
    ("device_event_time", pa.timestamp("us", tz="UTC")),
    ("sent_at", pa.timestamp("us", tz="UTC")),
    ("received_at", pa.timestamp("us", tz="UTC")),
    ("stream_at", pa.timestamp("us", tz="UTC")),
    ("platform", pa.string()),
    ("app_version", pa.string()),
    ("country", pa.string()),
    ("session_id", pa.string()),
    ("properties", pa.string()),
    ("stream_shard", pa.string()),
    ("stream_position", pa.string()),
    ("ingested_at", pa.timestamp("us", tz="UTC")),
    ("sku", pa.string()),
    ("price_usd", pa.float64()),
    ("level", pa.float64()),
    ("won", pa.float64()),
    ("score", pa.float64()),
    ("duration_s", pa.float64()),
    ("amount", pa.float64()),
    ("offer_id", pa.string()),
    ("placement", pa.string()),
    ("event_date", pa.date32()),
)
"""``silver.player_events`` as ``pipelines.silver`` writes it, as Arrow types."""


@dataclass(frozen=True)
class Shape:
    """What to generate: exactly ``events`` events of ``players`` players over ``days`` UTC days."""

    events: int
    players: int
    days: int
    seed: int = 7


@dataclass(frozen=True)
class SessionEvents:
    """Every event of the period, grouped by session (sessions in day-major order), untimed."""

    session: np.ndarray
    kind: np.ndarray
    session_player: np.ndarray
    session_start_ms: np.ndarray
    """Per session: its start, epoch ms."""
    session_day: np.ndarray


@dataclass(frozen=True)
class World:
    """The players, their day plans and every session's events: all that the days are cut from."""

    shape: Shape
    first_day: date
    players: Players
    plan: DayPlan
    events: SessionEvents


def _filler_counts(matches: np.ndarray, ads: np.ndarray, spends: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per session, the filler events the simulator's loop would emit, by kind (columns as KINDS[5:])."""
    level_ups = rng.binomial(matches, 0.12)
    rewarded = rng.binomial(ads, 1 / len(AD_PLACEMENTS))  # a rewarded video pays currency too
    return np.stack([matches, matches + rewarded, level_ups, ads, spends], axis=1)


def _exact_filler(filler: np.ndarray, wanted: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(session, kind)`` of exactly ``wanted`` filler events: a random subset of those drawn, or
    all of them plus extra ones in sessions picked by how much filler they hold."""
    flat = filler.ravel()
    session = np.repeat(np.repeat(np.arange(filler.shape[0]), filler.shape[1]), flat)
    kind = np.repeat(np.tile(np.arange(STRUCTURAL, len(KINDS)), filler.shape[0]), flat)
    if wanted <= session.size:
        keep = np.sort(rng.choice(session.size, size=wanted, replace=False))
        return session[keep], kind[keep]
    extra = wanted - session.size
    weight = filler.sum(axis=1).astype(np.float64) + 1.0
    mix = filler.sum(axis=0).astype(np.float64) + 1.0
    more_session = rng.choice(filler.shape[0], size=extra, p=weight / weight.sum())
    more_kind = STRUCTURAL + rng.choice(filler.shape[1], size=extra, p=mix / mix.sum())
    return np.concatenate([session, more_session]), np.concatenate([kind, more_kind])


def build_world(shape: Shape, first_day: date) -> World:
    """Players, plans and exactly ``shape.events`` events; raises ``ValueError`` when the sessions'
    structure alone (starts, ends, store views, offers, purchases) already exceeds the count."""
    if shape.players < 1 or shape.days < 1 or shape.events < 1:
        raise ValueError(f"events, players and days must be positive: {shape}")
    rng = np.random.default_rng(shape.seed)
    players = draw_players(shape.players, shape.days, rng)
    plan = plan_days(players, shape.days, first_day, rng)
    owner, start_offset, matches, views, buys, ads, spends = _per_session_counts(players, plan, rng)
    offers = rng.binomial(views, 0.6)
    structural = np.stack([np.ones_like(views), np.ones_like(views), views, offers, buys], axis=1)
    wanted = shape.events - int(structural.sum())
    if wanted < 0:
        raise ValueError(
            f"{shape.players:,} players over {shape.days} days open sessions with {int(structural.sum()):,} "
            f"structural events, more than the {shape.events:,} asked for: use fewer players or more events"
        )
    flat = structural.ravel()
    s_session = np.repeat(np.repeat(np.arange(owner.size), STRUCTURAL), flat)
    s_kind = np.repeat(np.tile(np.arange(STRUCTURAL), owner.size), flat)
    f_session, f_kind = _exact_filler(_filler_counts(matches, ads, spends, rng), wanted, rng)
    session = np.concatenate([s_session, f_session])
    kind = np.concatenate([s_kind, f_kind]).astype(np.int8)
    order = np.argsort(session, kind="stable")  # sessions are day-major: each day is one slice
    start_ms = _epoch_ms(first_day) + plan.day[owner] * DAY_MS + start_offset
    events = SessionEvents(session[order], kind[order], plan.player[owner], start_ms, plan.day[owner])
    return World(shape, first_day, players, plan, events)


def _epoch_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def event_times(events: SessionEvents, rng: np.random.Generator) -> np.ndarray:
    """Epoch ms of every event: a session starts at its start, ends ``MS_PER_EVENT`` per event
    later (at most the simulator's 2.5 h, so sessions never overlap or cross midnight), and
    everything else falls uniformly in between."""
    per_session = np.bincount(events.session, minlength=events.session_start_ms.size)
    length = np.minimum(MAX_SESSION_MS - 1_000, 30_000 + per_session * MS_PER_EVENT)
    start = events.session_start_ms[events.session]
    inside = 1 + (rng.random(events.session.size) * (length[events.session] - 2)).astype(np.int64)
    offset = np.where(
        events.kind == SESSION_START, 0, np.where(events.kind == SESSION_END, length[events.session], inside)
    )
    return start + offset


def uuid_strings(rng: np.random.Generator, n: int) -> pa.Array:
    """``n`` random version-4 UUIDs as text, built as bytes in numpy (no Python object per id)."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    hexed = np.empty((n, 32), dtype=np.uint8)
    hexed[:, 0::2], hexed[:, 1::2] = digits[raw >> 4], digits[raw & 0x0F]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    for lo, hi, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        text[:, at : at + hi - lo] = hexed[:, lo:hi]
    return pa.array(text.view("S36").ravel()).cast(pa.string())


def _pick(values: tuple[str, ...], index: np.ndarray, mask: np.ndarray) -> pa.Array:
    """``values[index]`` where ``mask``, else null, as an Arrow string array."""
    return pc.if_else(
        pa.array(mask), pa.array(np.asarray(values, dtype=object)[index]), pa.nulls(len(mask), pa.string())
    )


def _where(mask: np.ndarray, values: np.ndarray) -> pa.Array:
    return pa.array(values.astype(np.float64), mask=~mask)


def _num(values: pa.Array) -> pa.Array:
    return pc.cast(values, pa.string())


def properties_json(kind: np.ndarray, cols: dict[str, pa.Array], section: pa.Array, rewarded: np.ndarray) -> pa.Array:
    """Each event's ``properties`` as the JSON the simulator would have sent, from its typed values."""

    def obj(*parts: pa.Array | str) -> pa.Array:
        return pc.binary_join_element_wise(*parts, "")

    won = pc.if_else(pc.equal(cols["won"], 1.0), "true", "false")
    text = {
        SESSION_START: pa.array(["{}"] * len(kind)),
        SESSION_END: obj('{"duration_s": ', _num(cols["duration_s"]), "}"),
        STORE_VIEW: obj('{"section": "', section, '"}'),
        OFFER_SHOWN: obj('{"offer_id": "', cols["offer_id"], '", "price_usd": ', _num(cols["price_usd"]), "}"),
        PURCHASE: obj('{"sku": "', cols["sku"], '", "price_usd": ', _num(cols["price_usd"]), ', "currency": "USD"}'),
        MATCH_END: obj(
            '{"won": ', won, ', "score": ', _num(cols["score"]), ', "duration_s": ', _num(cols["duration_s"]), "}"
        ),
        CURRENCY_EARN: obj('{"amount": ', _num(cols["amount"]), ', "source": "match"}'),
        LEVEL_UP: obj('{"level": ', _num(pc.cast(cols["level"], pa.int64())), "}"),
        AD_VIEW: obj(
            '{"placement": "', cols["placement"], '", "rewarded": ', pa.array(np.where(rewarded, "true", "false")), "}"
        ),
        CURRENCY_SPEND: obj('{"amount": ', _num(cols["amount"]), ', "item": "booster"}'),
    }
    out = pa.nulls(len(kind), pa.string())
    for k, values in text.items():
        out = pc.if_else(pa.array(kind == k), values, out)
    return out


class _Levels:
    """Each player's level so far, so ``level_up`` events count up across days as in the simulator."""

    def __init__(self, players: Players) -> None:
        self.level = players.start_level.astype(np.int64).copy()

    def after(self, player: np.ndarray, time_ms: np.ndarray) -> np.ndarray:
        """The level each of one day's ``level_up`` events reaches (events of one player in time order)."""
        order = np.lexsort((time_ms, player))
        p = player[order]
        first = np.r_[True, p[1:] != p[:-1]]
        group_start = np.maximum.accumulate(np.where(first, np.arange(p.size), 0))
        rank = np.arange(p.size) - group_start + 1
        out = np.empty(p.size, dtype=np.int64)
        out[order] = self.level[p] + rank
        np.add.at(self.level, p, 1)
        return out


def _typed_values(
    kind: np.ndarray,
    player: np.ndarray,
    time_ms: np.ndarray,
    since_start_ms: np.ndarray,
    world: World,
    levels: _Levels,
    rng: np.random.Generator,
) -> tuple[dict[str, pa.Array], pa.Array, np.ndarray]:
    """Silver's typed property columns (nulls where an event type has no such property), the store
    views' section and the ads' rewarded flag, with the simulator's value sets and dependencies
    (``since_start_ms``: each event's time after its session's start)."""
    n = kind.size
    pl = world.players
    is_match, is_end = kind == MATCH_END, kind == SESSION_END
    won = rng.random(n) < 1.0 / (1.0 + np.exp(-0.9 * pl.skill[player]))
    score = np.maximum(0.0, np.round(rng.normal(1000 + 250 * pl.skill[player], 200) + 150 * won))
    match_s = np.round(rng.uniform(60, 480, n), 1)
    is_offer, is_buy = kind == OFFER_SHOWN, kind == PURCHASE
    offer = rng.integers(0, len(OFFERS), n)
    tier = np.clip(np.round(rng.normal(1.0 + 0.9 * pl.spend[player], 1.0)), 0, len(SKUS) - 1).astype(np.int64)
    price = np.where(is_buy, np.array([p for _, p in SKUS])[tier], np.array([p for _, p in OFFERS])[offer])
    earn, spend = kind == CURRENCY_EARN, kind == CURRENCY_SPEND
    amount = np.where(earn, rng.integers(20, 101, n), rng.choice([50, 100, 150, 250, 500], n))
    is_level, is_ad = kind == LEVEL_UP, kind == AD_VIEW
    level = np.zeros(n, dtype=np.int64)
    level[is_level] = levels.after(player[is_level], time_ms[is_level])
    placement = rng.integers(0, len(AD_PLACEMENTS), n)
    # a session_end's duration is its session's length, the gap to its session_start
    duration = np.where(is_end, since_start_ms / 1000.0, match_s)
    cols = {
        "sku": _pick(tuple(s for s, _ in SKUS), tier, is_buy),
        "price_usd": _where(is_buy | is_offer, price),
        "level": _where(is_level, level),
        "won": _where(is_match, won.astype(np.float64)),
        "score": _where(is_match, score),
        "duration_s": _where(is_match | is_end, duration),
        "amount": _where(earn | spend, amount),
        "offer_id": _pick(tuple(o for o, _ in OFFERS), offer, is_offer),
        "placement": _pick(AD_PLACEMENTS, placement, is_ad),
    }
    section = _pick(STORE_SECTIONS, rng.integers(0, len(STORE_SECTIONS), n), kind == STORE_VIEW)
    return cols, section, placement == AD_PLACEMENTS.index("rewarded_video")


def _timestamps(ms: np.ndarray) -> pa.Array:
    return pa.array(ms * 1000, type=pa.timestamp("us", tz="UTC"))


@dataclass(frozen=True)
class _Devices:
    """Each player's id and device fields as arrays, indexed like ``Players.ids``."""

    ids: np.ndarray
    platform: np.ndarray
    country: np.ndarray
    app_version: np.ndarray
    skew_ms: np.ndarray

    @classmethod
    def of(cls, players: Players) -> _Devices:
        def column(field: str) -> np.ndarray:
            return np.asarray([getattr(d, field) for d in players.devices], dtype=object)

        ids = np.asarray(players.ids, dtype=object)
        return cls(ids, column("platform"), column("country"), column("app_version"), players.skew_ms)


def day_table(
    world: World, lo: int, hi: int, times: np.ndarray, devices: _Devices, levels: _Levels, rng: np.random.Generator
) -> pa.Table:
    """Silver rows of events ``lo:hi`` (one day's slice): corrected ``event_time`` is the true
    time, the device's clock is off by the player's skew, and the event reached the collector
    1-30 s later (``sent_at`` on the device clock, so skew correction gives the true time back)."""
    ev = world.events
    session, kind, t = ev.session[lo:hi], ev.kind[lo:hi], times[lo:hi]
    player = ev.session_player[session]
    n = hi - lo
    since_start = t - ev.session_start_ms[session]
    cols, section, rewarded = _typed_values(kind, player, t, since_start, world, levels, rng)
    skew = devices.skew_ms[player]
    received = t + rng.integers(1_000, 30_000, n)
    values: dict[str, pa.Array] = {
        "event_id": uuid_strings(rng, n),
        "schema_version": pa.array(np.ones(n, dtype=np.int32)),
        "event_type": pa.array(np.asarray(KINDS, dtype=object)[kind]),
        "player_id": pa.array(devices.ids[player]),
        "game_id": pa.array(np.full(n, GAME_ID, dtype=object)),
        "event_time": _timestamps(t),
        "device_event_time": _timestamps(t + skew),
        "sent_at": _timestamps(received + skew),
        "received_at": _timestamps(received),
        "stream_at": _timestamps(received + 5),
        "platform": pa.array(devices.platform[player]),
        "app_version": pa.array(devices.app_version[player]),
        "country": pa.array(devices.country[player]),
        "session_id": pc.binary_join_element_wise("s", _num(pa.array(session)), ""),
        "properties": properties_json(kind, cols, section, rewarded),
        "stream_shard": pa.array(np.full(n, "0", dtype=object)),
        "stream_position": _num(pa.array(np.arange(lo, hi, dtype=np.int64))),
        "ingested_at": _timestamps(np.full(n, int(datetime.now(UTC).timestamp() * 1000))),
        **cols,
        "event_date": pa.array((t // DAY_MS).astype(np.int32), pa.date32()),
    }
    arrays = [values[name].cast(type_) for name, type_ in SILVER_COLUMNS]
    return pa.table(arrays, names=[name for name, _ in SILVER_COLUMNS])


def silver_days(world: World) -> Iterator[pa.Table]:
    """The world's events as silver rows, one Arrow table per UTC day, days in order."""
    rng = np.random.default_rng(world.shape.seed + 1)
    times = event_times(world.events, rng)
    levels = _Levels(world.players)
    devices = _Devices.of(world.players)
    day_of_event = world.events.session_day[world.events.session]
    bounds = np.searchsorted(day_of_event, np.arange(world.shape.days + 1))
    for d in range(world.shape.days):
        lo, hi = int(bounds[d]), int(bounds[d + 1])
        if hi > lo:
            yield day_table(world, lo, hi, times, devices, levels, rng)
