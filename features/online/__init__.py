"""Online stores: one row per player profile, read by serving in milliseconds.

A player is the pair ``(game_id, player_id)`` (``PlayerKey``): profiles are stored, read and
erased by the pair, never by the player id alone.

``OnlineStore`` is the interface; ``SqliteOnlineStore`` (embedded default) and
``DynamoDBOnlineStore`` (cloud) implement it; ``open_online_store`` picks one from configuration.
"""

from features.online.base import OnlineStore, PlayerKey, Profile
from features.online.factory import open_online_store

__all__ = ["OnlineStore", "PlayerKey", "Profile", "open_online_store"]
