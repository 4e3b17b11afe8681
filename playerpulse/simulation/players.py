"""Who the simulated players are: a device per player id, and latent traits per simulation.

A device (platform, country, app version, clock skew, SDK flush size) is derived from the player
id alone, not from the simulation's seed, so the live events of the demo come from the same
device as the replayed history of that player, whatever seed the live round uses. The latent
traits (engagement, spending, skill, churn) are what drives behaviour; they are never sent, only
reflected in what the player does, which is what a model has to learn from.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from features.contract import PLATFORMS

GAME_ID = "demo"

_PLATFORM_WEIGHTS = (0.36, 0.44, 0.10, 0.05, 0.05)  # same order as features.contract.PLATFORMS
_COUNTRIES = ("US", "DE", "GB", "FR", "BR", "JP", "KR", "IN", "CA", "MX", "ES", "IT", "PL", "SE", "AU")
_COUNTRY_WEIGHTS = (0.24, 0.10, 0.08, 0.07, 0.09, 0.07, 0.05, 0.08, 0.04, 0.04, 0.04, 0.03, 0.03, 0.02, 0.02)
_APP_VERSIONS = ("1.4.2", "1.4.1", "1.3.9", "1.5.0-beta")
_APP_VERSION_WEIGHTS = (0.62, 0.25, 0.10, 0.03)
_FLUSH_SIZES = (20, 50, 100)

SKEWED_DEVICE_SHARE = 0.05
"""Share of devices whose clock is minutes to hours off; the rest are within a few seconds."""


def player_id(index: int) -> str:
    """Pseudonymous id: the simulator never makes anything that looks like personal data."""
    return f"p{index:06d}"


@dataclass(frozen=True)
class Device:
    """What a player's game client looks like on the wire."""

    platform: str
    country: str
    app_version: str
    skew_ms: int
    """Device clock minus true time: every device time the client sends is off by this much."""
    flush_size: int
    """The SDK sends its queue once this many events are waiting (or the session ends)."""


def device_of(pid: str) -> Device:
    """The device of a player, stable across seeds so history and live events agree."""
    digest = hashlib.blake2b(pid.encode(), digest_size=8).digest()
    rng = np.random.default_rng(int.from_bytes(digest, "big"))
    platform = PLATFORMS[rng.choice(len(PLATFORMS), p=_PLATFORM_WEIGHTS)]
    country = _COUNTRIES[rng.choice(len(_COUNTRIES), p=_COUNTRY_WEIGHTS)]
    version = _APP_VERSIONS[rng.choice(len(_APP_VERSIONS), p=_APP_VERSION_WEIGHTS)]
    if rng.random() < SKEWED_DEVICE_SHARE:
        # Log-uniform between 2 minutes and 6 hours, either direction: a wrong time zone setting
        # or a manually set clock.
        magnitude = np.exp(rng.uniform(np.log(120_000), np.log(6 * 3_600_000)))
        skew = int(magnitude) * (1 if rng.random() < 0.5 else -1)
    else:
        skew = int(np.clip(rng.normal(0, 1_500), -5_000, 5_000))
    flush = int(_FLUSH_SIZES[rng.integers(len(_FLUSH_SIZES))])
    return Device(platform, country, version, skew, flush)


@dataclass(frozen=True)
class Players:
    """Per-player arrays (index i is player ``ids[i]``): devices plus latent traits."""

    ids: list[str]
    devices: list[Device]
    engagement: np.ndarray
    """0..1: how likely the player is to show up on a given day."""
    spend: np.ndarray
    """Standard normal spending propensity; the purchase logit is steep in it, so the upper
    tail (a few percent) are whales and most players never buy."""
    skill: np.ndarray
    """Standard normal; drives match wins and scores."""
    churn_day: np.ndarray
    """Day index from which engagement decays (``inf`` for players who stay)."""
    churn_tau: np.ndarray
    """Days over which a churner's engagement falls by a factor e."""
    start_level: np.ndarray

    @property
    def skew_ms(self) -> np.ndarray:
        return np.fromiter((d.skew_ms for d in self.devices), dtype=np.int64, count=len(self.devices))

    @property
    def flush_size(self) -> np.ndarray:
        return np.fromiter((d.flush_size for d in self.devices), dtype=np.int64, count=len(self.devices))


CHURN_SHARE = 0.25


def draw_players(n: int, days: int, rng: np.random.Generator) -> Players:
    """Latent traits for ``n`` players over a period of ``days`` days."""
    ids = [player_id(i) for i in range(n)]
    engagement = rng.beta(2.2, 2.0, size=n)
    churns = rng.random(n) < CHURN_SHARE
    churn_day = np.where(churns, rng.uniform(0, days, size=n), np.inf)
    return Players(
        ids=ids,
        devices=[device_of(pid) for pid in ids],
        engagement=engagement,
        spend=rng.standard_normal(n),
        skill=rng.standard_normal(n),
        churn_day=churn_day,
        churn_tau=rng.uniform(1.5, 5.0, size=n),
        start_level=1 + rng.poisson(2 + 12 * engagement),
    )
