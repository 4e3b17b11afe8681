"""Keys per game and per role, kept only as SHA-256 digests and compared in constant time.

A key answers one question: which game may this caller act for, in which role. The ingest key
ships inside game clients, so anyone can extract it: it may only post events. Reading players'
profiles and predictions takes the serve key, which stays on the game's servers; and every
read is scoped to the key's own game, so no key ever reaches another game's players.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Literal

from features.config import GameConfig

Role = Literal["ingest", "serve"]

UNAUTHORIZED = "missing or invalid API key: send 'Authorization: Bearer <key>' with the key for this route's role"


def bearer_digest(authorization: str | None) -> bytes | None:
    """SHA-256 of the key in ``Authorization: Bearer <key>``, or ``None`` when there is none."""
    if not authorization:
        return None
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        return None
    return hashlib.sha256(key.encode()).digest()


def _matches(digest: bytes, candidates: Iterable[bytes]) -> bool:
    """Every candidate is compared (no early exit): timing tells nothing about which matched."""
    found = False
    for expected in candidates:
        found |= hmac.compare_digest(digest, expected)
    return found


class GameKeys:
    def __init__(self, games: Mapping[str, GameConfig]):
        self._by_role: dict[Role, list[tuple[str, bytes]]] = {
            "ingest": [(g, bytes.fromhex(d)) for g, c in games.items() for d in c.ingest_keys],
            "serve": [(g, bytes.fromhex(d)) for g, c in games.items() for d in c.serve_keys],
        }

    def game_for(self, authorization: str | None, role: Role) -> str | None:
        """The game whose ``role`` key is in the ``Authorization`` header, else ``None``."""
        digest = bearer_digest(authorization)
        if digest is None:
            return None
        found = None
        for game, expected in self._by_role[role]:
            if hmac.compare_digest(digest, expected):
                found = game
        return found


class BearerKeys:
    """A flat set of key digests (e.g. who may scrape ``/metrics``)."""

    def __init__(self, digests: Iterable[str]):
        self._digests = [bytes.fromhex(d) for d in digests]

    def allows(self, authorization: str | None) -> bool:
        digest = bearer_digest(authorization)
        return digest is not None and _matches(digest, self._digests)
