"""A player's online profile as state: day buckets folded event by event, read as of any time.

The streaming job folds each micro-batch's events into this state with the union of every online
``FeatureSet``'s inputs (``features.definitions.online_union``) and writes it to the online store;
serving reads it back and computes any online set's features as of the request time. Both use
the same day-tiled window semantics as the batch job (``features.definitions``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from features.definitions import FeatureSet, FeatureUnion
from features.expectations import DEFAULT_LATE_AFTER_DAYS, quarantine_reason
from features.properties import property_value

DAY_MS = 86_400_000


def utc_date(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date()


@dataclass
class ProfileState:
    """Per-day partial aggregates, latest times, and recently seen event ids of one player."""

    days: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    """``YYYY-MM-DD`` → bucket → ``[n, sum, max]``."""
    last: dict[str, int] = field(default_factory=dict)
    """Recency input → latest event time (epoch ms)."""
    seen: list[str] = field(default_factory=list)
    """Most recent event ids applied, oldest first (duplicate filter)."""

    def to_dict(self) -> dict[str, Any]:
        return {"days": self.days, "last": self.last, "seen": self.seen}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ProfileState:
        if not data:
            return cls()
        return cls(days=dict(data.get("days", {})), last=dict(data.get("last", {})), seen=list(data.get("seen", [])))

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
        if event["event_id"] in self.seen:
            return False
        props = event.get("properties") or {}
        received = event.get("received_at")
        late_by = received - time_ms if late_after_days is not None and received is not None else None
        horizon = late_after_days if late_after_days is not None else DEFAULT_LATE_AFTER_DAYS
        if quarantine_reason(event["event_type"], props, late_by_ms=late_by, late_after_days=horizon) is not None:
            return False
        day = utc_date(time_ms).isoformat()
        etype = event["event_type"]
        for bucket, (types, value) in fs.buckets().items():
            if etype not in types:
                continue
            if value is None:
                v = None
            else:
                v = property_value(props, value)
                if v is None:
                    continue
            cell = self.days.setdefault(day, {}).setdefault(bucket, [0, 0.0, None])
            cell[0] += 1
            if v is not None:
                cell[1] += v
                cell[2] = v if cell[2] is None else max(cell[2], v)
        for rec in fs.recencies:
            if etype in rec.event_types and time_ms > self.last.get(rec.input, -1):
                self.last[rec.input] = time_ms
        if max_seen > 0:
            self.seen.append(event["event_id"])
            if len(self.seen) > max_seen:
                del self.seen[: len(self.seen) - max_seen]
        return True

    def expire(self, as_of_ms: int, keep_days: int) -> None:
        """Drop day buckets no window as of ``as_of_ms`` can reach any more."""
        oldest = (utc_date(as_of_ms) - timedelta(days=keep_days - 1)).isoformat()
        for day in [d for d in self.days if d < oldest]:
            del self.days[day]

    def features(self, fs: FeatureSet, as_of_ms: int) -> dict[str, float | int | None]:
        """Feature values as of ``as_of_ms``, assuming no event after it has been folded in.

        Serving calls this on every prediction: one pass over the days files each bucket's
        cells under their age in days, and each window then reads only its bucket's cells,
        adding up only what its operation needs (in day order, so sums are the same floats)."""
        aggregations, recencies = _plan(fs)
        today = utc_date(as_of_ms).toordinal()
        by_bucket: dict[str, list[tuple[int, list[float]]]] = {}
        for day, buckets in self.days.items():
            age = today - date.fromisoformat(day).toordinal()
            if age < 0:
                continue
            for bucket, cell in buckets.items():
                cells = by_bucket.get(bucket)
                if cells is None:
                    by_bucket[bucket] = [(age, cell)]
                else:
                    cells.append((age, cell))
        out: dict[str, float | int | None] = {}
        for bucket, op, windows in aggregations:
            cells = by_bucket.get(bucket, [])
            if op == "count":
                for window, name in windows:
                    n = 0
                    for age, (cn, _, _) in cells:
                        if age < window:
                            n += cn
                    out[name] = n
            elif op == "sum":
                for window, name in windows:
                    total = 0.0
                    for age, (_, cs, _) in cells:
                        if age < window:
                            total += cs
                    out[name] = total
            elif op == "avg":
                for window, name in windows:
                    n, total = 0, 0.0
                    for age, (cn, cs, _) in cells:
                        if age < window:
                            n += cn
                            total += cs
                    out[name] = total / n if n else None
            else:
                for window, name in windows:
                    best = None
                    for age, (_, _, cm) in cells:
                        if age < window and cm is not None:
                            best = cm if best is None else max(best, cm)
                    out[name] = best
        for key, name in recencies:
            t = self.last.get(key)
            out[name] = (as_of_ms - t) / DAY_MS if t is not None and t <= as_of_ms else None
        return out


_Plan = tuple[tuple[tuple[str, str, tuple[tuple[int, str], ...]], ...], tuple[tuple[str, str], ...]]
_plans: dict[int, tuple[FeatureSet, _Plan]] = {}


def _plan(fs: FeatureSet) -> _Plan:
    """``fs`` as ``features`` reads it: each aggregation's bucket, operation and (window,
    output name) pairs, and each recency's input and output name; built once per set."""
    entry = _plans.get(id(fs))
    if entry is None or entry[0] is not fs:
        aggregations = tuple((a.bucket, a.op, tuple((w, a.output_name(w)) for w in a.windows)) for a in fs.aggregations)
        entry = _plans[id(fs)] = (fs, (aggregations, tuple((r.input, r.output_name) for r in fs.recencies)))
    return entry[1]
