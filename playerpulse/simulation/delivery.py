"""What a device puts on the wire: one HTTP batch of raw events, exactly as the client made it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class Delivery:
    """One ``POST /v1/events`` batch of one player's device (at most 100 events).

    ``events`` holds raw JSON values, not validated ones: mostly event objects with device-clock
    times, plus the occasional malformed value a buggy client sends. The sender stamps
    ``sent_at`` (device clock) on every object when it posts the batch; the raw dicts themselves
    are shared with ``Simulation.events`` and are never modified.
    """

    player_id: str
    skew_ms: int
    """Device clock minus true time; the sender adds it to ``now`` to make ``sent_at``."""
    events: list[Any]
    simulated_send_ms: int
    """True time at which the device sent this batch in the simulated world (epoch ms)."""
    duplicate: bool = False
    """A re-send of an earlier delivery (same event ids): a retry after a lost response."""


InjectedKind = Literal["envelope", "properties"]


@dataclass(frozen=True, slots=True)
class InjectedEvent:
    """A malformed value added on top of the clean history (the ground truth never sees it).

    ``envelope`` values must be rejected by the collector; ``properties`` values pass the
    collector but break a quality rule and must be quarantined in silver.
    """

    kind: InjectedKind
    defect: str
    raw: Any
    skew_ms: int
