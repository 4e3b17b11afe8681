"""Folding one micro-batch's events into players' online profiles: the executor side, no Spark.

``pipelines.profiles_stream`` hands every Spark partition of a micro-batch to
``update_partition``, which runs in an executor's Python worker: it groups the partition's rows
by player, i.e. by ``(game_id, player_id)`` (the same player id in two games is two players;
the stream source keeps each player's records in one partition), opens its own online
store from configuration, folds each player's new events with the same ``ProfileState`` that
serving reads, and writes the partition's profiles in one batched ``put``. What is folded is the
union of the inputs of every online feature set (``UpdateContext.feature_sets``, by default
``features.definitions.online_feature_sets()``), so serving can compute any of them. Everything here is
plain Python (Arrow only at the edge), so the logic is tested without a Spark session.

Idempotency. A profile remembers, per stream shard, the position of the newest stream record
folded into it (``state["applied"]["positions"]``). Spark replays the last micro-batch after a
crash, and batch ids restart at 0 when a checkpoint is deleted; stream positions do neither,
so an event from a record at or below the player's watermark has been counted already and is
skipped whatever the checkpoint (a micro-batch id would only protect one checkpoint's life).
The ``seen`` event ids of ``ProfileState`` catch the other kind of repeat: a client re-sending
an event in a new record. Both live in the profile, so both are per ``(game_id, player_id)``:
one game's records or event ids never make another game's player skip an event.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import msgspec
import pyarrow as pa

from features.contract import corrected_event_time_ms, now_ms
from features.definitions import FeatureSet, FeatureUnion
from features.latency import hop_latencies
from features.online import OnlineStore, PlayerKey, Profile, open_online_store
from features.profile_state import ProfileState
from pipelines.erasure_list import player_digest

APPLIED_KEY = "applied"
"""Key of the profile state holding the idempotency watermark (``ProfileState`` ignores it)."""

EVENT_FIELDS: tuple[str, ...] = (
    "event_id",
    "event_type",
    "event_time",
    "sent_at",
    "received_at",
    "stream_at",
    "properties",
    "stream_shard",
    "stream_position",
)
"""Columns of a stream row the fold needs (``STREAM_EVENT_DDL`` names)."""

PLAYER_COLUMNS: tuple[str, ...] = ("game_id", "player_id")
"""A player is the pair: the same player id in two games is folded into two profiles."""

STATS_DDL = (
    "players INT, events_applied INT, duplicates INT, quarantined INT, replayed INT, latency_ms ARRAY<DOUBLE>, "
    "hops MAP<STRING, ARRAY<DOUBLE>>"
)
"""Spark schema of what ``update_partition`` returns: one small row per Arrow batch."""

_props = msgspec.json.Decoder(dict[str, Any])


@dataclass(frozen=True)
class UpdateContext:
    """What an executor needs to update profiles, as plain values that pickle cheaply."""

    online_store: str
    """The ``online_store`` configuration as JSON: each partition opens its own connection."""
    feature_sets: tuple[FeatureSet, ...]
    """The online feature sets whose inputs every profile folds (definitions pickle small, and
    the executors then fold exactly what the driver was started with)."""
    state_days: int
    dedup_ids: int
    checkpoint: str
    """Provenance only (which query wrote a profile); idempotency rests on stream positions."""
    batch_id: int
    late_after_days: float | None = None
    """Silver's lateness horizon: an event received later than this after its time is skipped,
    as silver quarantines it, so the online profile counts what the lake counts."""
    erased: frozenset[str] = frozenset()
    """``player_digest`` of every erased player (``pipelines.forget``): their events are never
    folded, so replaying a stream whose records cannot be deleted (Kinesis keeps them for its
    retention period) never re-creates an erased player's profile."""

    def open_store(self) -> OnlineStore:
        from pydantic import TypeAdapter

        from features.config import OnlineStoreConfig

        return open_online_store(TypeAdapter(OnlineStoreConfig).validate_json(self.online_store))


@dataclass
class UpdateStats:
    """Counts of one update, cheap enough to ship back to the driver for every micro-batch."""

    players: int = 0
    """Profiles written."""
    events_applied: int = 0
    duplicates: int = 0
    """Events whose id the profile had seen (re-sent by the client)."""
    quarantined: int = 0
    """Events silver would quarantine (a purchase with a negative price, ...): never counted."""
    replayed: int = 0
    """Events of stream records already folded into the profile (a replayed micro-batch)."""
    latency_ms: list[float] = field(default_factory=list)
    """Per written profile: ``profile_written_at - received_at`` of its newest event."""
    hops: dict[str, list[float]] = field(default_factory=dict)
    """Per written profile, each hop's latency (``features.latency.HOPS``) of its newest event."""

    def add(self, other: UpdateStats) -> None:
        self.players += other.players
        self.events_applied += other.events_applied
        self.duplicates += other.duplicates
        self.quarantined += other.quarantined
        self.replayed += other.replayed
        self.latency_ms.extend(other.latency_ms)
        for hop, values in other.hops.items():
            self.hops.setdefault(hop, []).extend(values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def combine(cls, rows: Iterable[dict[str, Any]]) -> UpdateStats:
        """Sum rows shaped like ``STATS_DDL`` (what the driver collects from the executors)."""
        total = cls()
        for row in rows:
            hops = {hop: list(v or []) for hop, v in dict(row.get("hops") or {}).items()}
            total.add(cls(**{**row, "latency_ms": list(row.get("latency_ms") or []), "hops": hops}))
        return total


def _position(row: dict[str, Any]) -> int:
    return int(row["stream_position"])


def _already_applied(row: dict[str, Any], watermarks: dict[str, str]) -> bool:
    mark = watermarks.get(row["stream_shard"])
    return mark is not None and _position(row) <= int(mark)


def _corrected(row: dict[str, Any]) -> int:
    return corrected_event_time_ms(row["event_time"], row.get("sent_at"), row["received_at"])


def _event(row: dict[str, Any]) -> dict[str, Any]:
    props = row.get("properties")
    if isinstance(props, str | bytes):
        props = _props.decode(props) if props else {}
    return {
        "event_id": row["event_id"],
        "event_type": row["event_type"],
        "properties": props or {},
        "received_at": row.get("received_at"),
    }


def fold_player(
    key: PlayerKey,
    stored: Profile | None,
    rows: Sequence[dict[str, Any]],
    sets: FeatureUnion,
    ctx: UpdateContext,
    now: int,
) -> tuple[Profile | None, UpdateStats]:
    """The next profile of the player ``key`` = ``(game_id, player_id)`` after this batch's
    ``rows`` (that player's only), or ``None`` if none of them is new.

    The state folds every input of ``sets``; the profile's ``features`` are those of each set
    as of ``as_of`` (sets sharing an input define it alike, so a shared name has one value),
    and its ``feature_set`` names the sets, comma-separated.

    ``now`` is when the update is computed: features are read as of it (or as of a later,
    skew-corrected event time), and it seeds the version so that a stale writer, such as a
    task attempt that lost a race, can never replace a newer profile.
    """
    stats = UpdateStats()
    old_state = stored.state if stored is not None else {}
    watermarks: dict[str, str] = dict((old_state.get(APPLIED_KEY) or {}).get("positions") or {})
    fresh = [r for r in rows if not _already_applied(r, watermarks)]
    stats.replayed = len(rows) - len(fresh)
    if not fresh:
        return None, stats

    state = ProfileState.from_dict(old_state)
    timed = sorted(
        ((_corrected(r), r) for r in fresh),
        key=lambda tr: (tr[0], tr[1]["stream_shard"], _position(tr[1]), tr[1]["event_id"]),
    )
    for time_ms, row in timed:
        event = _event(row)
        duplicate = state.has_seen(event["event_id"])
        if state.apply(sets, event, time_ms, ctx.dedup_ids, ctx.late_after_days):
            stats.events_applied += 1
        elif duplicate:
            stats.duplicates += 1
        else:
            stats.quarantined += 1
    for row in fresh:
        mark = watermarks.get(row["stream_shard"])
        if mark is None or _position(row) > int(mark):
            watermarks[row["stream_shard"]] = str(row["stream_position"])

    state.expire(now, ctx.state_days, sets.tile_minutes)
    latest = max(t for t, _ in timed)
    as_of = max(now, latest, *state.last.values(), stored.as_of if stored is not None else 0)
    newest_time, newest = max(
        timed, key=lambda tr: (tr[1]["received_at"], tr[1].get("stream_at") or 0, _position(tr[1]))
    )
    game_id, player_id = key
    profile = Profile(
        game_id=game_id,
        player_id=player_id,
        version=max(now, stored.version + 1) if stored is not None else now,
        as_of=as_of,
        features=state.features_of(sets.sets, as_of),
        state={
            **state.to_dict(),
            APPLIED_KEY: {"positions": watermarks, "checkpoint": ctx.checkpoint, "batch": ctx.batch_id},
        },
        timestamps={
            # the skew-corrected time: on the server clock, like every later hop
            "event_time": newest_time,
            # the device's clock, as sent (when it was): it travels on, but only event_time is corrected
            **({"sent_at": newest["sent_at"]} if newest.get("sent_at") is not None else {}),
            "received_at": newest["received_at"],
            "stream_at": newest.get("stream_at") or newest["received_at"],
            "processed_at": now,
        },
        feature_set=",".join(sets.full_names),
    )
    return profile, stats


def update_players(
    store: OnlineStore,
    players: Sequence[tuple[PlayerKey, Sequence[dict[str, Any]]]],
    ctx: UpdateContext,
    clock: Callable[[], int] = now_ms,
) -> UpdateStats:
    """Fold each ``((game_id, player_id), rows)`` into its stored profile and write them in one ``put``."""
    sets = FeatureUnion(ctx.feature_sets)
    stats = UpdateStats()
    if ctx.erased:
        players = [(key, rows) for key, rows in players if player_digest(*key) not in ctx.erased]
    stored = store.get_many([key for key, _ in players])
    profiles = []
    for key, rows in players:
        profile, one = fold_player(key, stored.get(key), rows, sets, ctx, clock())
        stats.add(one)
        if profile is not None:
            profiles.append(profile)
    stats.players = store.put(profiles)
    for p in profiles:
        written = p.timestamps.get("profile_written_at")
        if written is not None:
            stats.latency_ms.append(float(written - p.timestamps["received_at"]))
        for hop, ms in hop_latencies(p.timestamps).items():
            stats.hops.setdefault(hop, []).append(ms)
    return stats


def update_partition(ctx: UpdateContext, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body over one partition of stream rows (``PLAYER_COLUMNS`` + ``EVENT_FIELDS``),
    which holds every event of its players in this micro-batch (``pipelines.stream_source``
    reads whole shard families, and the stream is keyed by player): the rows are grouped by
    player here, not by a shuffle, and the partition's profiles are read and written in one
    ``get_many`` and one ``put``. Yields one row of ``STATS_DDL``."""
    players: dict[PlayerKey, list[dict[str, Any]]] = {}
    for batch in batches:
        for row in batch.to_pylist():
            players.setdefault((row["game_id"], row["player_id"]), []).append(row)
    if not players:
        return
    store = ctx.open_store()
    try:
        stats = update_players(store, list(players.items()), ctx)
    finally:
        store.close()
    row = {**stats.to_dict(), "hops": list(stats.hops.items())}
    yield pa.RecordBatch.from_pylist([row], schema=_STATS_SCHEMA)


_STATS_SCHEMA = pa.schema(
    [
        ("players", pa.int32()),
        ("events_applied", pa.int32()),
        ("duplicates", pa.int32()),
        ("quarantined", pa.int32()),
        ("replayed", pa.int32()),
        ("latency_ms", pa.list_(pa.float64())),
        ("hops", pa.map_(pa.string(), pa.list_(pa.float64()))),
    ]
)


def thin(samples: Sequence[float], cap: int) -> list[float]:
    """At most ``cap`` evenly spaced order statistics of ``samples``: a big batch keeps its
    percentiles without a report line growing with the number of players."""
    if len(samples) <= cap:
        return list(samples)
    ordered = sorted(samples)
    step = len(ordered) / cap
    return [ordered[int(i * step)] for i in range(cap)]


def stats_line(batch_id: int, stats: UpdateStats, batch_ms: float, at_ms: int, max_samples: int = 2000) -> str:
    """One JSONL record of a micro-batch for ``reports/latency``: its counts, duration, a bounded
    sample of each hop's latencies and its iterator age (the stream hop of its longest-waiting
    profile: how far behind the stream this batch ran, the backlog as Kinesis measures it)."""
    record = {
        **stats.to_dict(),
        "latency_ms": thin(stats.latency_ms, max_samples),
        "hops": {hop: thin(v, max_samples) for hop, v in sorted(stats.hops.items())},
    }
    stream_hop = stats.hops.get("stream")
    age = max(stream_hop) if stream_hop else None
    return json.dumps(
        {"batch": batch_id, "at": at_ms, "batch_ms": round(batch_ms, 1), "iterator_age_ms": age, **record}
    )
