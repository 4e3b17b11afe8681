"""gold.player_daily and the feature tables: day aggregates, the date spine, day-tiled windows."""

from __future__ import annotations

from datetime import date

import msgspec
import pytest
from event_factory import ms

from features.definitions import PLAYER_ACTIVITY_V1, Aggregation, FeatureSet, Recency
from pipelines import gold
from pipelines.session import table_path

pytestmark = pytest.mark.spark

SMALL = FeatureSet(
    "small",
    1,
    aggregations=(
        Aggregation("session", ("session_start",), "count", (1, 3)),
        Aggregation("spend", ("purchase",), "sum", (3,), value="price_usd"),
        Aggregation("spend_avg", ("purchase",), "avg", (3,), value="price_usd"),
        Aggregation("level", ("level_up",), "max", (2,), value="level"),
    ),
    recencies=(Recency("purchase", ("purchase",)),),
)


def _silver(spark, rows):
    """Silver-shaped rows from ``(player, event_type, iso time, properties[, game])`` (game ``demo``
    unless given)."""
    from pyspark.sql import functions as F

    from pipelines.expressions import utc_date, with_typed_properties

    data = [
        ((game or ["demo"])[0], p, t, ms(at), msgspec.json.encode(props).decode()) for p, t, at, props, *game in rows
    ]
    df = spark.createDataFrame(data, "game_id string, player_id string, event_type string, t long, properties string")
    df = df.withColumn("event_time", F.timestamp_millis("t")).withColumn("event_date", utc_date(F.col("event_time")))
    return with_typed_properties(df)


def test_daily_rows_aggregate_each_input_per_player_and_utc_day(spark):
    silver = _silver(
        spark,
        [
            ("p1", "purchase", "2026-11-01T09:00:00", {"sku": "a", "price_usd": 2.0}),
            ("p1", "purchase", "2026-11-01T23:59:59.999", {"sku": "b", "price_usd": 5.0}),
            ("p1", "purchase", "2026-11-02T00:00:00", {"sku": "c", "price_usd": 1.0}),
            ("p1", "session_start", "2026-11-01T08:00:00", {}),
            ("p2", "level_up", "2026-11-01T10:00:00", {"level": 4}),
        ],
    )

    rows = {(r.player_id, r.event_date): r for r in gold.player_daily(silver, [SMALL]).collect()}

    day1 = rows[("p1", date(2026, 11, 1))]
    assert (day1.spend_n, day1.spend_sum, day1.spend_max) == (2, 7.0, 5.0)
    assert (day1.session_n, day1.session_sum, day1.session_max) == (1, 0.0, None)
    assert day1.last_purchase_ms == ms("2026-11-01T23:59:59.999")
    assert rows[("p1", date(2026, 11, 2))].spend_sum == 1.0
    p2 = rows[("p2", date(2026, 11, 1))]
    assert (p2.level_n, p2.level_max, p2.spend_n, p2.spend_sum, p2.last_purchase_ms) == (1, 4.0, 0, 0.0, None)


def test_daily_rows_keep_the_same_player_id_of_two_games_apart(spark):
    silver = _silver(
        spark,
        [
            ("p1", "purchase", "2026-11-01T09:00:00", {"sku": "a", "price_usd": 2.0}, "alpha"),
            ("p1", "purchase", "2026-11-01T10:00:00", {"sku": "a", "price_usd": 5.0}, "beta"),
            ("p1", "purchase", "2026-11-01T11:00:00", {"sku": "a", "price_usd": 1.0}, "beta"),
        ],
    )

    rows = {(r.game_id, r.player_id, r.event_date): r for r in gold.player_daily(silver, [SMALL]).collect()}

    assert {key: (r.spend_n, r.spend_sum) for key, r in rows.items()} == {
        ("alpha", "p1", date(2026, 11, 1)): (1, 2.0),
        ("beta", "p1", date(2026, 11, 1)): (2, 6.0),
    }


def test_value_inputs_count_only_events_that_carry_the_value(spark):
    silver = _silver(
        spark,
        [
            ("p1", "purchase", "2026-11-01T09:00:00", {"sku": "a", "price_usd": 2.0}),
            ("p1", "purchase", "2026-11-01T10:00:00", {"sku": "a"}),
        ],
    )

    [row] = gold.player_daily(silver, [SMALL]).collect()

    assert (row.spend_n, row.spend_sum) == (1, 2.0)


def test_features_cover_every_day_to_the_last_date_with_day_tiled_windows(spark):
    silver = _silver(
        spark,
        [
            ("p1", "session_start", "2026-11-01T12:00:00", {}),
            ("p1", "purchase", "2026-11-01T18:00:00", {"sku": "a", "price_usd": 3.0}),
            ("p1", "level_up", "2026-11-02T01:00:00", {"level": 7}),
            ("p1", "purchase", "2026-11-03T06:00:00", {"sku": "a", "price_usd": 1.0}),
            ("p2", "session_start", "2026-11-05T00:00:00", {}),
        ],
    )
    features = gold.features_at_day_end(spark, gold.player_daily(silver, [SMALL]), SMALL)

    rows = {(r.player_id, r.as_of_date): r for r in features.collect()}

    assert sorted(rows) == [("p1", date(2026, 11, d)) for d in range(1, 6)] + [("p2", date(2026, 11, 5))]
    nov = {d: rows[("p1", date(2026, 11, d))] for d in range(1, 6)}
    assert [nov[d].session_count_1d for d in range(1, 6)] == [1, 0, 0, 0, 0]
    assert [nov[d].session_count_3d for d in range(1, 6)] == [1, 1, 1, 0, 0]
    assert [nov[d].spend_sum_3d for d in range(1, 6)] == [3.0, 3.0, 4.0, 1.0, 1.0]
    assert [nov[d].spend_avg_avg_3d for d in range(1, 6)] == [3.0, 3.0, 2.0, 1.0, 1.0]
    assert [nov[d].level_max_2d for d in range(1, 6)] == [None, 7.0, 7.0, None, None]
    assert nov[4].days_since_last_purchase == pytest.approx(
        (ms("2026-11-04T23:59:59.999") - ms("2026-11-03T06:00:00")) / 86_400_000
    )
    assert rows[("p2", date(2026, 11, 5))].days_since_last_purchase is None
    as_of = features.where("as_of_date = DATE'2026-11-02'").selectExpr("unix_millis(as_of) AS t").first().t
    assert as_of == ms("2026-11-02T23:59:59.999")


def test_the_same_player_id_in_two_games_gets_its_own_spine_and_windows(spark):
    silver = _silver(
        spark,
        [
            ("p1", "session_start", "2026-11-01T12:00:00", {}, "alpha"),
            ("p1", "session_start", "2026-11-03T12:00:00", {}, "beta"),
        ],
    )
    features = gold.features_at_day_end(spark, gold.player_daily(silver, [SMALL]), SMALL)

    rows = {(r.game_id, r.player_id, r.as_of_date): r.session_count_3d for r in features.collect()}

    assert rows == {
        ("alpha", "p1", date(2026, 11, 1)): 1,
        ("alpha", "p1", date(2026, 11, 2)): 1,
        ("alpha", "p1", date(2026, 11, 3)): 1,
        ("beta", "p1", date(2026, 11, 3)): 1,
    }


def test_feature_rows_hold_exactly_the_feature_set_columns_and_types(spark):
    silver = _silver(spark, [("p1", "session_start", "2026-11-01T12:00:00", {})])
    features = gold.features_at_day_end(spark, gold.player_daily(silver, [PLAYER_ACTIVITY_V1]), PLAYER_ACTIVITY_V1)

    assert features.columns == ["game_id", "player_id", "as_of_date", "as_of", *PLAYER_ACTIVITY_V1.feature_names]
    types = dict(features.dtypes)
    counts = {a.output_name(w) for a in PLAYER_ACTIVITY_V1.aggregations if a.op == "count" for w in a.windows}
    assert {types[c] for c in counts} == {"bigint"}
    assert {types[c] for c in PLAYER_ACTIVITY_V1.feature_names if c not in counts} == {"double"}
    assert (types["as_of_date"], types["as_of"]) == ("date", "timestamp")


def test_daily_rows_missing_an_input_are_refused(spark):
    silver = _silver(spark, [("p1", "session_start", "2026-11-01T12:00:00", {})])
    daily = gold.player_daily(silver, [SMALL]).drop("spend_sum")

    with pytest.raises(ValueError, match="spend_sum"):
        gold.features_at_day_end(spark, daily, SMALL)


def test_two_feature_sets_defining_one_input_differently_are_refused():
    other = FeatureSet("other", 1, aggregations=(Aggregation("session", ("session_end",), "count", (1,)),))

    with pytest.raises(ValueError, match="input 'session'"):
        gold.daily_inputs([SMALL, other])


def test_run_rebuilds_daily_and_feature_tables_from_silver(spark, settings):
    from features.errors import TableNotFound

    with pytest.raises(TableNotFound, match="run the silver job first"):
        gold.run(spark, settings)
    _silver(
        spark, [("p1", "session_start", "2026-11-01T12:00:00", {}), ("p1", "session_start", "2026-11-03T12:00:00", {})]
    ).write.format("delta").save(table_path(settings, "silver.player_events"))

    every_table = {
        "gold.player_daily": 2,
        "gold.player_features_v1": 3,
        "gold.player_activity_v2": 3,
        "gold.player_activity_v3": 3,
    }
    assert gold.run(spark, settings) == every_table
    assert gold.run(spark, settings) == every_table  # overwritten
    features = spark.read.format("delta").load(table_path(settings, "gold.player_features_v1"))
    assert features.count() == 3
