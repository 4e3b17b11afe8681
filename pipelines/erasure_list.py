"""The erasure log and the erasure list read from it: who was erased, never who they were.

``pipelines.forget`` appends to ``gold.erasure_log`` one row per place it erased a player from.
A row names the player by ``player_digest`` only: SHA-256 of ``game_id#player_id`` where
``player_id`` is the id as stored (the pseudonym when the game pseudonymises, so the raw id the
game knows never reaches the lake). The streaming profiles job reads the distinct digests before
every micro-batch and never folds their events (``UpdateContext.erased``): Kinesis records cannot
be deleted before the stream's retention expires them, and a replay must not bring a profile back.

Without pseudonymisation a digest of a guessable id can be recomputed by whoever can enumerate
ids; turning ``games.GAME.pseudonymise`` on makes the stored id itself a keyed hash.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from features.config import Settings
from pipelines.lake_files import list_files
from pipelines.session import table_path

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ERASURE_LOG = "gold.erasure_log"
ERASURE_LOG_DDL = (
    "erasure_id STRING, erased_at TIMESTAMP, game_id STRING, player_digest STRING, "
    "place STRING, removed BIGINT, detail STRING"
)
"""One row per (erasure, player, place): ``place`` is a table name, ``stream``, ``dead_letters``,
``online_store``, ``mlflow`` or ``files``; ``removed`` what went there; ``detail`` JSON notes."""


def player_digest(game_id: str, player_id: str) -> str:
    """How the erasure log names a player: hex SHA-256 of ``game_id#player_id`` (the id as stored)."""
    return hashlib.sha256(f"{game_id}#{player_id}".encode()).hexdigest()


def erasure_log_path(settings: Settings) -> str:
    return table_path(settings, ERASURE_LOG)


def read_erased(spark: SparkSession, path: str) -> frozenset[str]:
    """Digests of every erased player; empty while nobody has been erased (no table yet)."""
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, path):
        return frozenset()
    rows = spark.read.format("delta").load(path).select("player_digest").distinct().collect()
    return frozenset(r[0] for r in rows)


class ErasedPlayers:
    """The erasure list as the streaming job reads it before every micro-batch: from the Delta
    table only when its log has a commit the last read had not seen (one listing of
    ``_delta_log``, a LIST on S3), not a Spark job per micro-batch. A commit that lands
    between the listing and the read changes the next listing, so the list is re-read then:
    it is never older than the batch before."""

    def __init__(self, settings: Settings, path: str):
        self.settings, self.path = settings, path
        self._log: tuple[str, ...] | None = None
        self._erased: frozenset[str] = frozenset()

    def current(self, spark: SparkSession) -> frozenset[str]:
        log = tuple(list_files(self.settings, f"{self.path.rstrip('/')}/_delta_log", suffix=".json"))
        if log != self._log:
            self._erased = read_erased(spark, self.path) if log else frozenset()
            self._log = log
        return self._erased
