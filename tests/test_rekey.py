"""Re-keying the lake after a secret rotation, on a tiny lake with the shared Spark session."""

from __future__ import annotations

from typing import Any

import pytest

from features.config import GameConfig, Settings
from features.errors import ConfigError
from features.pseudonyms import pseudonym
from pipelines import rekey

NEW = "new-secret-0123456789abcdef"
OLD = "old-secret-0123456789abcdef"


def rotating(settings: Settings, secrets: list[str]) -> Settings:
    demo = settings.games["demo"].model_dump(exclude_none=True)
    game = GameConfig.model_validate({**demo, "pseudonymise": {"secrets": secrets}})
    other = GameConfig.model_validate({"ingest_keys": ["0" * 64]})
    return settings.model_copy(update={"games": {"demo": game, "other": other}})


def old(raw: str) -> str:
    return pseudonym(OLD.encode(), raw)


def new(raw: str) -> str:
    return pseudonym(NEW.encode(), raw)


def write(spark: Any, settings: Settings, name: str, rows: list[tuple], ddl: str) -> str:
    database, table = name.split(".")
    path = f"{settings.lake.root}/{database}/{table}"
    spark.createDataFrame(rows, ddl).write.format("delta").mode("overwrite").save(path)
    return path


def ids(spark: Any, path: str) -> list[tuple[str, str]]:
    return sorted((r.game_id, r.player_id) for r in spark.read.format("delta").load(path).collect())


@pytest.fixture
def lake(spark, settings):
    settings = rotating(settings, [NEW, OLD])
    bronze = write(
        spark,
        settings,
        "bronze.player_events",
        [
            ("e1", "demo", old("ann")),
            ("e2", "demo", old("ben")),
            ("e3", "demo", old("cyd")),
            ("e4", "demo", new("ann")),
            ("e5", "other", old("ann")),
        ],
        "event_id STRING, game_id STRING, player_id STRING",
    )
    gold = write(
        spark, settings, "gold.player_daily", [("demo", old("ann"), 3)], "game_id STRING, player_id STRING, n INT"
    )
    no_players = write(spark, settings, "gold.model_metrics", [("auc", 0.7)], "name STRING, value DOUBLE")
    return settings, bronze, gold, no_players


def test_listed_players_move_to_their_new_pseudonym_in_every_player_table(spark, lake):
    settings, bronze, gold, _ = lake
    changed = rekey.run(spark, settings, "demo", ["ann", "ben"])
    assert changed == {bronze: 2, gold: 1}
    assert ids(spark, bronze) == sorted(
        [("demo", new("ann")), ("demo", new("ben")), ("demo", old("cyd")), ("demo", new("ann")), ("other", old("ann"))]
    )
    assert ids(spark, gold) == [("demo", new("ann"))]


def test_a_player_nobody_lists_keeps_the_old_pseudonym_and_another_games_rows_are_untouched(spark, lake):
    settings, bronze, _, _ = lake
    rekey.run(spark, settings, "demo", ["ann"])
    rows = ids(spark, bronze)
    assert ("demo", old("cyd")) in rows and ("other", old("ann")) in rows


def test_running_it_twice_changes_nothing_the_second_time(spark, lake):
    settings, bronze, gold, _ = lake
    rekey.run(spark, settings, "demo", ["ann", "ben"])
    assert rekey.run(spark, settings, "demo", ["ann", "ben"]) == {bronze: 0, gold: 0}


def test_tables_without_player_ids_are_left_alone(spark, lake):
    settings, _, _, no_players = lake
    assert no_players not in rekey.player_tables(spark, settings)


@pytest.mark.parametrize("secrets, complaint", [([NEW], "one secret"), (None, "no pseudonymise")])
def test_it_refuses_to_run_without_an_old_and_a_new_secret(settings, secrets, complaint):
    configured = rotating(settings, secrets) if secrets else settings
    with pytest.raises(ConfigError, match=complaint):
        rekey.rotation_secrets(configured, "demo")
