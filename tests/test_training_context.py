"""Training with request-time context: each snapshot gets each field's value point-in-time, encoded
as serving encodes it, and the trained version carries the fields to serving.

Handcrafted ``silver.player_events`` rows put session starts (with a ``platform``) and other
events exactly at, just before and just after a snapshot's ``as_of``; a learnable part of the lake
makes purchases follow android sessions, so a model can only learn from the context.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from test_training import DAY0, GOLD_DDL, declare, end_of, isolated, model_yaml, snapshot

from features.config import Settings, load_settings
from features.model_config import ModelConfig, load_model_config
from features.online import Profile, open_online_store
from pipelines.session import table_path
from serving.models import ChampionCache
from serving.predict import Predictor
from training.dataset import build_training_set
from training.registry import tracking_client
from training.train import TrainResult, train_model
from training.validate import validate

pytestmark = pytest.mark.spark

SILVER_DDL = (
    "event_id STRING, event_type STRING, player_id STRING, game_id STRING, event_time TIMESTAMP, "
    "event_date DATE, received_at TIMESTAMP, platform STRING, placement STRING, level DOUBLE, won DOUBLE"
)
CONTEXT = [
    {
        "name": "platform",
        "type": "category",
        "values": ["ios", "android", "pc"],
        "default": "ios",
        "training": {"latest_property": {"event_type": "session_start", "property": "platform"}},
    },
    {
        "name": "ad_placement",
        "type": "category",
        "values": ["rewarded_video", "banner"],
        "default": "banner",
        "training": {"latest_property": {"event_type": "ad_view", "property": "placement"}},
    },
    {
        "name": "hero_level",
        "type": "int",
        "default": 1,
        "low": 1,
        "high": 50,
        "training": {"latest_property": {"event_type": "level_up", "property": "level"}},
    },
    {
        "name": "won_last",
        "type": "bool",
        "default": False,
        "training": {"latest_property": {"event_type": "match_end", "property": "won"}},
    },
    {"name": "promo", "type": "float", "default": 0.5, "training": "default"},
]
LEARN_DAYS, LEARNERS = 12, 30
EDGE_DAY = DAY0 + timedelta(days=3)
AS_OF = end_of(EDGE_DAY)
US = timedelta(microseconds=1)
HOUR = timedelta(hours=1)


class Events:
    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def add(self, player: str, etype: str, at: Any, game: str = "demo", eid: str | None = None, **props: Any) -> None:
        eid = eid or f"e{len(self.rows):05d}"
        values = (props.get("platform"), props.get("placement"), props.get("level"), props.get("won"))
        self.rows.append((eid, etype, player, game, at, at.date(), at, *values))


def edge_cases(events: Events) -> list[tuple[Any, ...]]:
    """Players snapshotted on EDGE_DAY whose latest session start sits at an edge of ``as_of``."""
    e = events
    e.add("at_as_of", "session_start", AS_OF - HOUR, platform="pc")
    e.add("at_as_of", "session_start", AS_OF, platform="android")  # exactly at as_of: counts
    e.add("after", "session_start", AS_OF - HOUR, platform="pc")
    e.add("after", "session_start", AS_OF + US, platform="android")  # a microsecond later: never
    e.add("never", "store_view", AS_OF - HOUR)
    e.add("null_latest", "session_start", AS_OF - 2 * HOUR, platform="android")
    e.add("null_latest", "session_start", AS_OF - HOUR)  # the latest such event lacks it: the default
    e.add("unlisted", "session_start", AS_OF - HOUR, platform="web")  # not one of the field's values
    e.add("tie", "session_start", AS_OF - HOUR, eid="tie-a", platform="pc")
    e.add("tie", "session_start", AS_OF - HOUR, eid="tie-b", platform="android")  # same instant, larger id
    e.add("twin", "session_start", AS_OF - HOUR, game="rival", platform="android")  # another game's player
    e.add("moves", "session_start", AS_OF - 10 * HOUR, platform="pc")
    e.add("moves", "session_start", AS_OF + 14 * HOUR, platform="android")  # before the next day's as_of
    e.add("rich", "ad_view", AS_OF - HOUR, placement="rewarded_video")
    e.add("rich", "level_up", AS_OF - HOUR, level=80.0)  # clamped to high
    e.add("rich", "level_up", AS_OF + HOUR, level=3.0)
    e.add("rich", "match_end", AS_OF - 2 * HOUR, won=0.0)
    e.add("rich", "match_end", AS_OF - HOUR, won=1.0)
    e.add("rich", "match_end", AS_OF + HOUR, won=0.0)
    players = ["at_as_of", "after", "never", "null_latest", "unlisted", "tie", "twin", "moves", "rich"]
    snaps = [snapshot(p, EDGE_DAY) for p in players]
    return [*snaps, snapshot("twin", EDGE_DAY, "rival"), snapshot("moves", EDGE_DAY + timedelta(days=1))]


def learnable(events: Events) -> list[tuple[Any, ...]]:
    """Each day every learner starts a session on some platform; android players buy the next day."""
    rng = np.random.default_rng(11)
    snaps = []
    for p in range(LEARNERS):
        player = f"l{p:02d}"
        for d in range(LEARN_DAYS):
            day = DAY0 + timedelta(days=d)
            platform = str(rng.choice(["ios", "android", "pc"]))
            events.add(player, "session_start", end_of(day) - 15 * HOUR, platform=platform)
            if rng.random() < (0.85 if platform == "android" else 0.05):
                events.add(player, "purchase", end_of(day) + 12 * HOUR)
            snaps.append(snapshot(player, day, store_view_count_1d=int(rng.integers(0, 4))))
    events.add("l00", "session_end", end_of(DAY0 + timedelta(days=LEARN_DAYS + 1)))  # every window observed
    return snaps


@pytest.fixture(scope="module")
def lake(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    base = tmp_path_factory.mktemp("context-lake")
    settings = isolated(load_settings("local", base / "var"), base / "own")
    events = Events()
    snaps = edge_cases(events) + learnable(events)
    spark.createDataFrame(snaps, GOLD_DDL).write.format("delta").save(table_path(settings, "gold.player_features_v1"))
    spark.createDataFrame(events.rows, SILVER_DDL).write.format("delta").save(
        table_path(settings, "silver.player_events")
    )
    declaration = model_yaml("ctx", ["store_view_count_1d"], min_auc=0.5, test_days=3, min_history_days=0)
    declare(settings, {**declaration, "context": CONTEXT})
    return settings


@pytest.fixture(scope="module")
def rows(spark: Any, lake: Settings) -> dict[tuple[str, str, Any], dict[str, Any]]:
    ts = build_training_set(spark, lake, load_model_config(lake, "ctx"))
    return {(r["game_id"], r["player_id"], r["as_of_date"]): r.asDict() for r in ts.df.collect()}


def encoded(cfg: ModelConfig, name: str, raw: Any) -> float:
    """What serving feeds the model for ``raw`` (``ContextEncoding.encode``): training must agree."""
    return next(f.encoding for f in cfg.context if f.name == name).encode(raw)


def platform_of(rows: dict[Any, dict[str, Any]], player: str, game: str = "demo", day: Any = EDGE_DAY) -> float:
    return rows[(game, player, day)]["platform"]


def test_an_event_exactly_at_as_of_gives_the_value(rows: dict[Any, Any], lake: Settings) -> None:
    assert platform_of(rows, "at_as_of") == encoded(load_model_config(lake, "ctx"), "platform", "android") == 1.0


def test_an_event_after_as_of_never_gives_the_value_even_a_microsecond_later(rows: dict[Any, Any]) -> None:
    assert platform_of(rows, "after") == 2.0  # pc, the latest one at or before as_of


def test_without_such_an_event_yet_the_field_is_its_default(rows: dict[Any, Any]) -> None:
    assert platform_of(rows, "never") == 0.0  # ios


def test_the_latest_event_lacking_the_property_gives_the_default_not_an_older_value(rows: dict[Any, Any]) -> None:
    assert platform_of(rows, "null_latest") == 0.0


def test_a_value_the_field_does_not_list_is_encoded_as_the_default(rows: dict[Any, Any]) -> None:
    assert platform_of(rows, "unlisted") == 0.0


def test_events_at_the_same_instant_resolve_to_the_larger_event_id(rows: dict[Any, Any]) -> None:
    assert platform_of(rows, "tie") == 1.0


def test_another_games_events_of_the_same_player_id_are_not_this_games_context(rows: dict[Any, Any]) -> None:
    assert (platform_of(rows, "twin"), platform_of(rows, "twin", "rival")) == (0.0, 1.0)


def test_each_snapshot_takes_the_value_as_of_its_own_time(rows: dict[Any, Any]) -> None:
    assert (platform_of(rows, "moves"), platform_of(rows, "moves", day=EDGE_DAY + timedelta(days=1))) == (2.0, 1.0)


def test_every_field_reads_its_own_event_type_clamped_and_encoded_as_serving_does(
    rows: dict[Any, Any], lake: Settings
) -> None:
    cfg = load_model_config(lake, "ctx")
    rich, never = rows[("demo", "rich", EDGE_DAY)], rows[("demo", "never", EDGE_DAY)]
    assert encoded(cfg, "hero_level", 80.0) == 50.0
    assert {n: rich[n] for n in cfg.context_names} == {
        "platform": encoded(cfg, "platform", None),
        "ad_placement": encoded(cfg, "ad_placement", "rewarded_video"),
        "hero_level": 50.0,  # level 80 clamped to high, as serving clamps
        "won_last": encoded(cfg, "won_last", 1.0),
        "promo": 0.5,
    }
    assert {n: never[n] for n in cfg.context_names} == {n: encoded(cfg, n, None) for n in cfg.context_names}


def test_the_context_columns_follow_the_features_and_precede_the_label(spark: Any, lake: Settings) -> None:
    cfg = load_model_config(lake, "ctx")
    columns = spark.read.format("delta").load(table_path(lake, "gold.training_ctx")).columns
    assert columns[-len(cfg.context) - 1 :] == [*cfg.context_names, "label"]


# --- training and serving ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(spark: Any, lake: Settings, rows: Any) -> TrainResult:
    return train_model(spark, lake, "ctx")


@pytest.fixture(scope="module")
def served(lake: Settings, trained: TrainResult) -> Predictor:
    """The trained version made champion, and a predictor over a real online store."""
    tracking_client(lake).set_registered_model_alias("ctx", "champion", str(trained.version))
    store = open_online_store(lake.online_store)
    store.put([Profile(game_id="demo", player_id="p1", version=1, as_of=1, features={}, state={})])
    return Predictor(lake, store)


def test_the_trained_version_records_its_inputs_and_context_encodings(served: Predictor, lake: Settings) -> None:
    cfg = load_model_config(lake, "ctx")
    champion = ChampionCache(lake).get("ctx")
    assert champion.feature_names == (*cfg.feature_names, *cfg.context_names)
    assert champion.context == cfg.context_encodings


def test_the_served_score_follows_the_context_the_model_learned_from(served: Predictor) -> None:
    android = served.predict("ctx", "demo", "p1", {"platform": "android"})
    ios = served.predict("ctx", "demo", "p1", {"platform": "ios", "screen": "shop"})
    assert (android["fallback"], ios["fallback"]) == (False, False)
    assert android["prediction"]["score"] > 0.5 > 0.2 > ios["prediction"]["score"]


def test_validation_rescores_the_version_on_its_holdout_with_the_context_columns(
    lake: Settings, trained: TrainResult
) -> None:
    result = validate(lake, "ctx", trained.version)
    assert result.metrics["auc"] == pytest.approx(trained.metrics["test_auc"]) and result.metrics["auc"] > 0.8
