"""A player's online profile as state: tiles folded event by event, read as of any time.

The streaming job folds each micro-batch's events into this state with the union of every online
``FeatureSet``'s inputs (``features.definitions.online_union``) and writes it to the online store;
serving reads it back and computes any online set's features as of the request time. Both use
the window semantics of ``features.windows`` (5-minute tiles, UTC day tiles, a lifetime cell),
as the batch job does.

Every tile holds, per input, one partial aggregate (a *cell*): ``[n, sum, max]``, extended to
``[n, sum, max, min, first_t, first_v, last_t, last_v, distinct]`` for an input that a ``min``,
``first``, ``last`` or ``distinct`` reads (``CELL``). Cells of any tiles merge into a window's
value, and no cell depends on the order events arrived in: first and last break equal times by
value, and the distinct values are kept exactly, so a window's distinct count is exact (a set's
values must stay few: item ids, modes, levels; not free text).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from features.definitions import FeatureSet, FeatureUnion
from features.expectations import DEFAULT_LATE_AFTER_DAYS, quarantine_reason
from features.properties import property_value
from features.windows import DAY_MS, MINUTE_MS, TILE_MINUTES, tile_index

CELL = ("n", "sum", "max", "min", "first_t", "first_v", "last_t", "last_v", "distinct")
"""The parts of a cell, by index; a cell of an input no extended operation reads stops at max."""
N, SUM, MAX, MIN, FIRST_T, FIRST_V, LAST_T, LAST_V, DISTINCT = range(len(CELL))

__all__ = ["CELL", "DAY_MS", "ProfileState", "utc_date"]


def utc_date(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date()


def _new_cell(extended: bool) -> list[Any]:
    return [0, 0.0, None, None, None, None, None, None, []] if extended else [0, 0.0, None]


def _add(cell: list[Any], v: float | str | None, t: int, extended: bool) -> None:
    """Fold one event (value ``v``, or ``None`` for a count input) at time ``t`` into ``cell``."""
    cell[N] += 1
    if v is None:
        return
    numeric = not isinstance(v, str)
    if numeric:
        cell[SUM] += v
        cell[MAX] = v if cell[MAX] is None else max(cell[MAX], v)
    if not extended:
        return
    if len(cell) < len(CELL):  # a cell written before an extended op read this input
        cell.extend([None, None, None, None, None, []][len(cell) - len(CELL) :])
    if numeric:
        cell[MIN] = v if cell[MIN] is None else min(cell[MIN], v)
    if cell[FIRST_T] is None or (t, v) < (cell[FIRST_T], cell[FIRST_V]):
        cell[FIRST_T], cell[FIRST_V] = t, v
    if cell[LAST_T] is None or (t, v) > (cell[LAST_T], cell[LAST_V]):
        cell[LAST_T], cell[LAST_V] = t, v
    if v not in cell[DISTINCT]:
        cell[DISTINCT].append(v)


def combine(op: str, cells: Iterable[list[Any]]) -> float | int | str | None:
    """The value of ``op`` over the tiles whose ``cells`` a window covers (``None`` when no
    event had a value, except counts and sums, which are 0)."""
    if op == "count":
        return sum(c[N] for c in cells)
    if op == "sum":
        total = 0.0
        for c in cells:
            total += c[SUM]
        return total
    if op == "avg":
        n, total = 0, 0.0
        for c in cells:
            n += c[N]
            total += c[SUM]
        return total / n if n else None
    if op == "max":
        return max((c[MAX] for c in cells if c[MAX] is not None), default=None)
    if op == "distinct":
        values: set[Any] = set()
        for c in cells:
            if len(c) > DISTINCT:
                values.update(c[DISTINCT])
        return len(values)
    extended = [c for c in cells if len(c) > MIN]
    if op == "min":
        return min((c[MIN] for c in extended if c[MIN] is not None), default=None)
    if op == "first":
        firsts = [(c[FIRST_T], c[FIRST_V]) for c in extended if c[FIRST_T] is not None]
        return min(firsts)[1] if firsts else None
    if op == "last":
        lasts = [(c[LAST_T], c[LAST_V]) for c in extended if c[LAST_T] is not None]
        return max(lasts)[1] if lasts else None
    raise ValueError(f"unknown operation {op!r}")


@dataclass
class ProfileState:
    """Day tiles, 5-minute tiles, lifetime cells, latest times and recently seen event ids."""

    days: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    """``YYYY-MM-DD`` → input → cell, for inputs a day window reads."""
    last: dict[str, int] = field(default_factory=dict)
    """Recency input → latest event time (epoch ms)."""
    seen: list[str] = field(default_factory=list)
    """Most recent event ids applied, oldest first (duplicate filter)."""
    tiles: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    """5-minute tile index (``features.windows.tile_index``, as text) → input → cell, for
    inputs a minute or hour window reads."""
    life: dict[str, list[Any]] = field(default_factory=dict)
    """Input → cell of every event folded, for inputs a lifetime window reads."""
    _seen_ids: set[str] | None = field(default=None, repr=False, compare=False)
    """``seen`` as a set, built at the first lookup: ``seen`` holds up to
    ``streaming.dedup_ids`` (2,000) ids, and a list scan per event was a third of a fold."""

    def has_seen(self, event_id: str) -> bool:
        """Whether ``event_id`` is among the recently applied ids (a client's re-send)."""
        if self._seen_ids is None:
            self._seen_ids = set(self.seen)
        return event_id in self._seen_ids

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"days": self.days, "last": self.last, "seen": self.seen}
        if self.tiles:
            out["tiles"] = self.tiles
        if self.life:
            out["life"] = self.life
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ProfileState:
        if not data:
            return cls()
        return cls(
            days=dict(data.get("days", {})),
            last=dict(data.get("last", {})),
            seen=list(data.get("seen", [])),
            tiles=dict(data.get("tiles") or {}),
            life=dict(data.get("life") or {}),
        )

    def apply(
        self,
        fs: FeatureSet | FeatureUnion,
        event: dict[str, Any],
        time_ms: int,
        max_seen: int,
        late_after_days: float | None = None,
    ) -> bool:
        """Fold one event in (its time already skew-corrected); False if skipped as duplicate
        or as a row silver would quarantine.

        ``fs`` is one set or the union of several (the streaming job folds every online set's
        inputs, so that any of them can be computed from the state).

        ``late_after_days`` is silver's lateness horizon (``settings.silver.late_after_days``):
        given, and with ``received_at`` in ``event``, an event received later than that after
        ``time_ms`` is skipped as silver quarantines it; ``None`` folds late events in.
        """
        if self.has_seen(event["event_id"]):
            return False
        props = event.get("properties") or {}
        received = event.get("received_at")
        late_by = received - time_ms if late_after_days is not None and received is not None else None
        horizon = late_after_days if late_after_days is not None else DEFAULT_LATE_AFTER_DAYS
        if quarantine_reason(event["event_type"], props, late_by_ms=late_by, late_after_days=horizon) is not None:
            return False
        day: str | None = None
        tile: str | None = None
        etype = event["event_type"]
        for plan in fs.fold_plan:
            if etype not in plan.event_types:
                continue
            if plan.value is None:
                v = None
            else:
                v = property_value(props, plan.value)
                if v is None:
                    continue
            for resolution in plan.resolutions:
                if resolution == "day":
                    if day is None:
                        day = utc_date(time_ms).isoformat()
                    cells = self.days.setdefault(day, {})
                elif resolution == "tile":
                    if tile is None:
                        tile = str(tile_index(time_ms))
                    cells = self.tiles.setdefault(tile, {})
                else:
                    cells = self.life
                cell = cells.get(plan.name)
                if cell is None:
                    cell = cells[plan.name] = _new_cell(plan.extended)
                _add(cell, v, time_ms, plan.extended)
        for rec in fs.recencies:
            if etype in rec.event_types and time_ms > self.last.get(rec.input, -1):
                self.last[rec.input] = time_ms
        if max_seen > 0:
            self.seen.append(event["event_id"])
            if self._seen_ids is not None:
                self._seen_ids.add(event["event_id"])
            if len(self.seen) > max_seen:
                dropped = self.seen[: len(self.seen) - max_seen]
                del self.seen[: len(dropped)]
                if self._seen_ids is not None:
                    self._seen_ids.difference_update(dropped)
        return True

    def expire(self, as_of_ms: int, keep_days: int, keep_minutes: int = 0) -> None:
        """Drop day tiles older than ``keep_days`` and 5-minute tiles older than
        ``keep_minutes`` as of ``as_of_ms``: no window as of then or later reaches them."""
        oldest = (utc_date(as_of_ms) - timedelta(days=keep_days - 1)).isoformat()
        for day in [d for d in self.days if d < oldest]:
            del self.days[day]
        oldest_tile = tile_index(as_of_ms) - keep_minutes // TILE_MINUTES + 1
        for tile in [t for t in self.tiles if int(t) < oldest_tile]:
            del self.tiles[tile]

    def features_of(self, sets: Sequence[FeatureSet], as_of_ms: int) -> dict[str, float | int | str | None]:
        """Every feature of ``sets`` as of ``as_of_ms`` (a name two sets share has one value:
        they define it alike), the tiles filed by age once for all of them."""
        ages = self._ages(as_of_ms)
        return {name: v for fs in sets for name, v in self.features(fs, as_of_ms, ages).items()}

    def _ages(self, as_of_ms: int) -> dict[str, dict[str, list[tuple[int, list[Any]]]]]:
        return {
            "day": _by_age(self.days, _day_ordinal, utc_date(as_of_ms).toordinal()),
            "tile": _by_age(self.tiles, int, tile_index(as_of_ms)) if self.tiles else {},
        }

    def features(
        self, fs: FeatureSet, as_of_ms: int, ages: dict[str, dict[str, list[tuple[int, list[Any]]]]] | None = None
    ) -> dict[str, float | int | str | None]:
        """Feature values as of ``as_of_ms``, assuming no event after it has been folded in.

        Serving calls this on every prediction: one pass over each resolution's tiles files
        each input's cells under their age, and each window then reads only its input's
        cells younger than its length."""
        aggregations, recencies = _plan(fs)
        if ages is None:
            ages = self._ages(as_of_ms)
        out: dict[str, float | int | str | None] = {}
        for bucket, op, windows in aggregations:
            for resolution, length, name in windows:
                if resolution == "lifetime":
                    cell = self.life.get(bucket)
                    out[name] = combine(op, [cell] if cell is not None else [])
                    continue
                cells = ages[resolution].get(bucket, ())
                if op == "count":
                    n = 0
                    for age, cell in cells:
                        if age < length:
                            n += cell[N]
                    out[name] = n
                elif op == "sum":
                    total = 0.0
                    for age, cell in cells:
                        if age < length:
                            total += cell[SUM]
                    out[name] = total
                else:
                    out[name] = combine(op, [cell for age, cell in cells if age < length])
        for key, name, unit_ms in recencies:
            t = self.last.get(key)
            out[name] = (as_of_ms - t) / unit_ms if t is not None and t <= as_of_ms else None
        for ratio in fs.ratios:
            out[ratio.name] = ratio.value(out[ratio.numerator], out[ratio.denominator])  # type: ignore[arg-type]
        return out


def _day_ordinal(key: str) -> int:
    return date.fromisoformat(key).toordinal()


def _by_age(tiles: dict[str, dict[str, list[Any]]], index: Any, now: int) -> dict[str, list[tuple[int, list[Any]]]]:
    """Input → ``[(age in tiles, cell)]`` of the tiles at or before ``now``."""
    out: dict[str, list[tuple[int, list[Any]]]] = {}
    for key, cells_of_tile in tiles.items():
        age = now - index(key)
        if age < 0:
            continue
        for bucket, cell in cells_of_tile.items():
            cells = out.get(bucket)
            if cells is None:
                out[bucket] = [(age, cell)]
            else:
                cells.append((age, cell))
    return out


_Windows = tuple[tuple[str, int, str], ...]
_Plan = tuple[tuple[tuple[str, str, _Windows], ...], tuple[tuple[str, str, int], ...]]
_plans: dict[int, tuple[FeatureSet, _Plan]] = {}


def _plan(fs: FeatureSet) -> _Plan:
    """``fs`` as ``features`` reads it: each aggregation's input, operation and (resolution,
    length in tiles, output name) per window, and each recency's input, output name and unit;
    built once per set."""
    entry = _plans.get(id(fs))
    if entry is None or entry[0] is not fs:
        aggregations = tuple(
            (
                a.bucket,
                a.op,
                tuple(
                    (w.resolution, 0 if w.resolution == "lifetime" else w.tiles, a.output_name(w))
                    for w in a.parsed_windows
                ),
            )
            for a in fs.aggregations
        )
        recencies = tuple((r.input, r.output_name, DAY_MS if r.unit == "days" else MINUTE_MS) for r in fs.recencies)
        entry = _plans[id(fs)] = (fs, (aggregations, recencies))
    return entry[1]
