"""Per-game API keys, kept only as SHA-256 digests and compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping


class ApiKeys:
    def __init__(self, digests: Mapping[str, str]):
        self._digests = [(game, bytes.fromhex(d)) for game, d in digests.items()]

    def game_for(self, authorization: str | None) -> str | None:
        """The game whose key is in ``Authorization: Bearer <key>``, else ``None``.

        Every configured digest is compared (no early exit), so timing tells nothing about
        which game or how much of a key matched."""
        if not authorization:
            return None
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return None
        digest = hashlib.sha256(key.strip().encode()).digest()
        found = None
        for game, expected in self._digests:
            if hmac.compare_digest(digest, expected):
                found = game
        return found
