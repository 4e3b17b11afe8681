"""Re-key the lake after a pseudonym secret rotation: old-secret player ids → new-secret ones.

    PYSPARK_PYTHON=.venv/bin/python .venv/bin/spark-submit --jars "$(ls jvm/jars/*.jar | paste -sd, -)" \\
        pipelines/rekey.py --game demo --players raw_ids.txt [--workdir var] [--env local]

During a rotation ``games.GAME.pseudonymise.secrets`` lists the new secret first and the old
one(s) after it: the collector writes new-secret pseudonyms, serving finds a player under either.
This job then rewrites ``player_id`` in every Delta table of the lake (bronze, silver, gold: each
table with ``game_id`` and ``player_id`` columns) from ``pseudonym(old, id)`` to
``pseudonym(new, id)``, for the game only, one MERGE per table; after it the old secrets can be
removed from the configuration.

What it can and cannot do, honestly:

- **It needs the raw ids.** A pseudonym cannot be turned back into its id, and PlayerPulse
  stores no raw id anywhere (that is the point), so the mapping old → new can only be computed
  for ids someone hands it: ``--players``, one raw id per line, from the studio's own records
  (its account database, or the ids its servers asked about during the overlap). Rows of a
  player not in that list keep the old pseudonym: once the old secret is gone they belong to
  nobody PlayerPulse can name, and the player starts a new history under the new pseudonym.
  That is the same as erasure for those rows, and it is the rotation's privacy benefit too.
- **Gold is re-derived, not merged.** A player active during the overlap has day rows under
  both pseudonyms; after re-keying, ``gold.player_daily`` and the feature tables can hold two
  rows for one (game, player, day). Run ``playerpulse pipeline gold`` afterwards: it recomputes
  gold from silver, where events are unique by (``game_id``, ``event_id``).
- **Not rewritten:** dead letters (their ``raw`` is text, and reduced ones hold the pseudonym
  inside JSON), online profiles (serving reads old-secret profiles while the old secret is
  listed; the streaming job writes new-secret ones as players return, and DynamoDB's TTL ages
  the rest out), and Delta's history (``VACUUM``, run by the upkeep job, removes the old files
  once they leave ``upkeep.vacuum_retain_hours``).
- Re-running it is harmless: a second run finds no old pseudonym of a listed player.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from features.config import Settings, load_settings
from features.errors import ConfigError
from features.pseudonyms import pseudonym, resolve_secrets
from pipelines.session import lake_tables

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

MAPPING_DDL = "game_id STRING, old_player_id STRING, new_player_id STRING"


def rotation_secrets(settings: Settings, game: str) -> tuple[bytes, list[bytes]]:
    """(new secret, old secrets) of ``game``; ``ConfigError`` when there is nothing to re-key."""
    cfg = settings.games.get(game)
    if cfg is None:
        raise ConfigError(f"no game '{game}' in the configuration (known: {sorted(settings.games)})")
    if cfg.pseudonymise is None:
        raise ConfigError(f"games.{game} has no pseudonymise setting: its lake holds raw ids, nothing to re-key")
    secrets = resolve_secrets(game, cfg.pseudonymise)
    if len(secrets) < 2:
        raise ConfigError(
            f"games.{game}.pseudonymise lists one secret: put the new secret first and keep the old one after it "
            "while re-keying"
        )
    return secrets[0], secrets[1:]


def mapping_rows(game: str, raw_ids: Iterable[str], new: bytes, old: list[bytes]) -> list[tuple[str, str, str]]:
    """(game, old pseudonym, new pseudonym) for every raw id and old secret."""
    rows = []
    for raw in dict.fromkeys(r for r in raw_ids if r):
        target = pseudonym(new, raw)
        rows.extend((game, pseudonym(secret, raw), target) for secret in old)
    return rows


def player_tables(spark: SparkSession, settings: Settings) -> list[str]:
    """Paths of the lake's Delta tables that have ``game_id`` and ``player_id`` columns."""
    return sorted(
        path
        for path in lake_tables(spark, settings).values()
        if {"game_id", "player_id"} <= set(spark.read.format("delta").load(path).columns)
    )


def rekey(spark: SparkSession, settings: Settings, mapping: DataFrame) -> dict[str, int]:
    """Rewrite ``player_id`` by ``mapping`` (``MAPPING_DDL``) in every player table; rows changed per table."""
    from delta.tables import DeltaTable

    changed: dict[str, int] = {}
    mapping = mapping.dropDuplicates(["game_id", "old_player_id"]).cache()
    for path in player_tables(spark, settings):
        table = DeltaTable.forPath(spark, path)
        before = table.history(1).select("version").first()[0]
        (
            table.alias("t")
            .merge(mapping.alias("m"), "t.game_id = m.game_id AND t.player_id = m.old_player_id")
            .whenMatchedUpdate(set={"player_id": "m.new_player_id"})
            .execute()
        )
        last = table.history(1).select("version", "operationMetrics").first()
        # a MERGE that matches nothing may commit nothing: then the last commit is not ours
        metrics = (last["operationMetrics"] or {}) if last["version"] != before else {}
        changed[path] = int(metrics.get("numTargetRowsUpdated", 0))
    mapping.unpersist()
    return changed


def run(spark: SparkSession, settings: Settings, game: str, raw_ids: Iterable[str]) -> dict[str, int]:
    """Re-key ``game``'s rows of the players in ``raw_ids`` from its old secrets to its new one."""
    new, old = rotation_secrets(settings, game)
    rows = mapping_rows(game, raw_ids, new, old)
    return rekey(spark, settings, spark.createDataFrame(rows, MAPPING_DDL))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Re-key the lake after a pseudonym secret rotation.")
    parser.add_argument("--game", required=True)
    parser.add_argument("--players", required=True, type=Path, help="raw player ids, one per line")
    parser.add_argument("--env", default=None)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)
    from pipelines.session import get_spark

    settings = load_settings(args.env, args.workdir)
    raw_ids = [line.strip() for line in args.players.read_text().splitlines()]
    spark = get_spark(settings, app_name="playerpulse-rekey")
    try:
        changed = run(spark, settings, args.game, raw_ids)
    finally:
        spark.stop()
    for path, n in changed.items():
        print(f"{path}: {n} rows re-keyed")
    print("now run `playerpulse pipeline gold` to recompute gold, then remove the old secret")
    return 0


if __name__ == "__main__":
    sys.exit(main())
