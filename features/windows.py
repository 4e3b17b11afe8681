"""Windows and tiles: what "the last N minutes / hours / days as of T" and "lifetime" mean.

This is the one definition batch (``pipelines.gold``), streaming (``features.profile_state``),
training (which reads gold's snapshots) and serving (which reads the streamed state) share, so
the parity test can hold them equal.

Events are filed into **tiles** by their skew-corrected event time (``features.contract``):

- *5-minute tiles* (``TILE_MINUTES``), aligned to the Unix epoch (so to UTC hours and days), for
  windows written in minutes or hours (``15m``, ``1h``, up to ``24h``);
- *day tiles*, UTC calendar dates, for windows written in days (``7d``);
- one *lifetime* cell for ``lifetime``.

A window of N minutes as of T covers the N / 5 tiles ending with the tile that holds T, and only
events at or before T: an event at time t counts iff ``t <= T`` and
``tile(t) > tile(T) - N / 5``. A window of N days as of T likewise covers the UTC dates
``date(T) - N + 1 … date(T)`` and events at or before T. So a window spans between N minus one
tile and N: "15 minutes as of 12:07" counts events from 11:55:00.000 to 12:07 (the 11:55, 12:00
and 12:05 tiles), and at 12:10 the 11:55 tile has slid out. This is Chronon's tiling: exact at
tile boundaries (a day end, where training reads snapshots, is one) and never counting an event
twice or after T; the tile sizes are what the online state stores, so they are fixed here.
``lifetime`` counts every event at or before T that the profile has seen (online: since the
profile was created; an expired idle profile starts again).

Minute and hour windows are at most a day (``MAX_TILE_MINUTES``); longer spans are written in
days, whose tiles cost 288 times less state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

TILE_MINUTES = 5
TILE_MS = TILE_MINUTES * 60_000
MAX_TILE_MINUTES = 24 * 60
DAY_MS = 86_400_000
MINUTE_MS = 60_000

Resolution = Literal["tile", "day", "lifetime"]
_WRITTEN = re.compile(r"^([1-9][0-9]*)([mhd])$")


@dataclass(frozen=True, order=True)
class Window:
    """One window of an aggregation: ``length`` in ``unit`` (``m``, ``h``, ``d``) or lifetime."""

    length: int
    unit: Literal["m", "h", "d", "lifetime"]

    def __post_init__(self) -> None:
        if self.unit == "lifetime":
            return
        if self.length < 1:
            raise ValueError(f"window {self.label}: length must be >= 1")
        if self.unit in ("m", "h"):
            minutes = self.minutes
            if minutes % TILE_MINUTES:
                raise ValueError(f"window {self.label}: minute windows are whole {TILE_MINUTES}-minute tiles")
            if minutes > MAX_TILE_MINUTES:
                raise ValueError(
                    f"window {self.label}: minute and hour windows reach at most 24h; write longer ones in days"
                )

    @classmethod
    def parse(cls, written: int | str | Window) -> Window:
        """``7`` (days, as feature sets wrote windows before units), ``"15m"``, ``"1h"``,
        ``"7d"`` or ``"lifetime"``."""
        if isinstance(written, Window):
            return written
        if isinstance(written, bool):
            raise ValueError(f"window {written!r}: write a number of days or '15m', '1h', '7d', 'lifetime'")
        if isinstance(written, int):
            return cls(written, "d")
        if written == "lifetime":
            return cls(0, "lifetime")
        m = _WRITTEN.match(str(written))
        if not m:
            raise ValueError(f"window {written!r}: write '15m', '1h', '7d' or 'lifetime'")
        return cls(int(m.group(1)), m.group(2))  # type: ignore[arg-type]

    @property
    def label(self) -> str:
        """How the window appears in feature names: ``15m``, ``1h``, ``7d``, ``lifetime``."""
        return "lifetime" if self.unit == "lifetime" else f"{self.length}{self.unit}"

    @property
    def resolution(self) -> Resolution:
        if self.unit == "lifetime":
            return "lifetime"
        return "day" if self.unit == "d" else "tile"

    @property
    def minutes(self) -> int:
        """Length in minutes (minute and hour windows)."""
        return self.length * (60 if self.unit == "h" else 1)

    @property
    def tiles(self) -> int:
        """How many tiles of its resolution the window reads (days for day windows)."""
        if self.unit == "lifetime":
            raise ValueError("a lifetime window has no tile count")
        return self.length if self.unit == "d" else self.minutes // TILE_MINUTES

    @property
    def span_days(self) -> int:
        """Days of day tiles online state must keep for this window (0 when it reads none)."""
        return self.length if self.unit == "d" else 0


def tile_index(time_ms: int) -> int:
    """The 5-minute tile holding ``time_ms``: tiles since the epoch."""
    return time_ms // TILE_MS


def day_index(time_ms: int) -> int:
    """The UTC date holding ``time_ms``, as days since the epoch."""
    return time_ms // DAY_MS


def covers(window: Window, event_ms: int, as_of_ms: int) -> bool:
    """Whether ``window`` as of ``as_of_ms`` counts an event at ``event_ms``: the definition
    above, written as plainly as possible (tests hold every implementation to it)."""
    if event_ms > as_of_ms:
        return False
    if window.unit == "lifetime":
        return True
    if window.unit == "d":
        return day_index(event_ms) > day_index(as_of_ms) - window.length
    return tile_index(event_ms) > tile_index(as_of_ms) - window.tiles
