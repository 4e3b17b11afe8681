"""Rate limits per ingest key: one token bucket per key, refilled at the game's events/s.

The ingest key ships inside every game client, so anyone can extract it and flood the
collector with valid-looking events in the game's name. ``games.GAME.rate_limit`` bounds what
one key may post: a bucket of ``burst`` tokens refilled at ``events_per_second``; each item of a
request takes one token (rejected items too: decoding them cost as much). A request that finds
too few tokens is refused whole with 429 and ``Retry-After`` (seconds until enough tokens are
back), and takes none, so a client that waits that long gets through. A key whose bucket is
empty is refused before its body is even decoded (a flood costs no decoding); that answer's
``Retry-After`` is the time until the bucket holds a token again, since the batch's size is not
known yet.

The buckets live in the worker process: with ``playerpulse serve --workers N`` a key may post up
to N times the limit in all, and each Lambda container has its own. That bounds a flood per
process, which is what protects the collector; a global quota belongs in front of it (API
Gateway usage plans, or a shared counter). A bucket exists only for a configured key (keys are
looked up before the bucket), so the table of buckets cannot be grown by strangers.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping

from features.config import CollectorConfig, GameConfig, RateLimitConfig
from features.errors import ConfigError


class TokenBucket:
    """``burst`` tokens, refilled continuously at ``rate`` per second (thread-safe)."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()
        self._lock = threading.Lock()

    def _refill(self) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        return self._tokens

    def take(self, n: int) -> float:
        """Take ``n`` tokens and return 0, or take none and return the seconds until ``n`` are there."""
        with self._lock:
            tokens = self._refill()
            if tokens >= n:
                self._tokens = tokens - n
                return 0.0
            return (min(n, self.burst) - tokens) / self.rate

    def empty_for(self) -> float:
        """Seconds until one token is back (0 when there is one now); takes nothing."""
        with self._lock:
            tokens = self._refill()
            return 0.0 if tokens >= 1 else (1 - tokens) / self.rate


class RateLimiter:
    """The buckets of a deployment: one per (game, key digest), built on a key's first request."""

    def __init__(
        self,
        games: Mapping[str, GameConfig],
        collector: CollectorConfig,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._limits: dict[str, RateLimitConfig] = {}
        for game, cfg in games.items():
            limit = cfg.rate_limit
            if limit is None:
                continue
            if limit.burst < collector.max_events_per_batch:
                raise ConfigError(
                    f"games.{game}.rate_limit.burst ({limit.burst}) is below collector.max_events_per_batch "
                    f"({collector.max_events_per_batch}): a full batch could never pass; raise burst"
                )
            self._limits[game] = limit
        self._clock = clock
        self._buckets: dict[tuple[str, bytes], TokenBucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, game: str, key: bytes) -> TokenBucket | None:
        limit = self._limits.get(game)
        if limit is None:
            return None
        bucket = self._buckets.get((game, key))
        if bucket is None:
            with self._lock:
                bucket = self._buckets.setdefault(
                    (game, key), TokenBucket(limit.events_per_second, limit.burst, self._clock)
                )
        return bucket

    def empty_for(self, game: str, key: bytes) -> float:
        """Seconds this key must wait before anything passes (0: go on and decode the body)."""
        bucket = self._bucket(game, key)
        return 0.0 if bucket is None else bucket.empty_for()

    def take(self, game: str, key: bytes, events: int) -> float:
        """0 when ``events`` tokens were taken, else seconds to wait (and nothing taken)."""
        bucket = self._bucket(game, key)
        return 0.0 if bucket is None else bucket.take(events)


def retry_after_seconds(wait: float) -> int:
    """``Retry-After`` is whole seconds: round up, at least 1."""
    return max(1, math.ceil(wait))
