"""Online stores: one row per player profile, read by serving in milliseconds.

``OnlineStore`` is the interface; ``SqliteOnlineStore`` (embedded default) and
``DynamoDBOnlineStore`` (cloud) implement it; ``open_online_store`` picks one from configuration.
"""

from features.online.base import OnlineStore, Profile
from features.online.factory import open_online_store

__all__ = ["OnlineStore", "Profile", "open_online_store"]
