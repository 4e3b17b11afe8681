"""The Spark expressions of silver agree with the Python rules the streaming fold uses, value for value."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from features.contract import EVENT_TYPES, corrected_event_time_ms
from features.expectations import (
    DAY_MS,
    DEFAULT_LATE_AFTER_DAYS,
    PROPERTIES,
    ArrivedInTime,
    Between,
    NotNull,
    quarantine_reason,
)
from features.profile_state import utc_date
from features.properties import PROPERTY_TYPES, coerce

pytestmark = pytest.mark.spark

# JSON texts of one property value, as a game might send them.
TRICKY_JSON = [
    "0",
    "-0",
    "-0.0",
    "1",
    "1.5",
    "-1.5",
    "1e5",
    "1E-7",
    "2.5e+3",
    "0.1",
    "9007199254740993",
    "1.7976931348623157e308",
    "-1.7976931348623157e308",
    "5e-324",
    "123456789012345678901234567890",
    "1" + "0" * 400,
    "-" + "9" * 320,
    '"1"',
    '" 12 "',
    '"1.5"',
    '"-3"',
    '"+4"',
    '".5"',
    '"5."',
    '"1e3"',
    '"1E+2"',
    '"+.5e-3"',
    '"0007"',
    '"1_000"',
    '"0x10"',
    '"NaN"',
    '"nan"',
    '"inf"',
    '"Infinity"',
    '"-Infinity"',
    '"1e400"',
    '"-1e400"',
    '""',
    '" "',
    '"abc"',
    '"1 2"',
    '"1,5"',
    '"1d"',
    '"1f"',
    '"--1"',
    '"+-1"',
    '"1e"',
    '"e5"',
    '"."',
    '"\\u0661\\u0662"',
    '"\\ud835\\udfcf\\ud835\\udfd0"',
    '"\\uff11\\uff12"',
    '"\\u0663.\\u0665e\\u0662"',
    '"\\u00a012\\u2003"',
    '"12\\n"',
    '"\\t3\\r"',
    '"12\\u0085"',
    '"1\\u20282"',
    '"12\\u001c"',
    '"\\u3000 7"',
    '"\\u0000"',
    '"1\\u0000"',
    '"' + "1" * 400 + '"',
    '"99999999999999999999e999"',
    '"0e99999999999999999999"',
    '"1e-99999999999999999999"',
    '"1e0000000000000000000005"',
    '"0.0000000001e10"',
    '".0e-5"',
    '"-0"',
    '"1e-400"',
    "true",
    "false",
    '"true"',
    '"false"',
    '"True"',
    '"TRUE"',
    '"null"',
    "null",
    "{}",
    '{"a": 1}',
    '{"price_usd": 1}',
    "[]",
    "[1]",
    '["1"]',
    "[true]",
    '"\\"quoted\\""',
    '"{\\"a\\": 1}"',
    '"[1]"',
    '"caf\\u00e9 \\ud83c\\udfae"',
]


def _stored_properties(raw_value_json: str | None) -> list[str]:
    """JSON objects holding ``raw_value_json`` under every property name: as sent, and as bronze
    stores them (decoded and re-encoded on the way through the stream)."""
    if raw_value_json is None:
        return ["{}", '{"unrelated": 1}']
    texts = {"{" + ", ".join(f'"{name}": {raw_value_json}' for name in PROPERTY_TYPES) + "}"}
    for text in list(texts):
        texts.add(msgspec.json.encode(msgspec.json.decode(text)).decode())
    return sorted(texts)


def _spark_typed(spark, texts: list[str]) -> list[dict]:
    from pipelines.expressions import with_typed_properties

    df = spark.createDataFrame([(i, t) for i, t in enumerate(texts)], "i int, properties string")
    rows = with_typed_properties(df).orderBy("i").collect()
    return [{name: row[name] for name in PROPERTY_TYPES} for row in rows]


def _python_typed(text: str) -> dict:
    properties = msgspec.json.decode(text)
    return {name: coerce(properties.get(name), kind) for name, kind in PROPERTY_TYPES.items()}


def _assert_same_typed(spark, texts: list[str]) -> None:
    got = _spark_typed(spark, texts)
    for text, spark_values in zip(texts, got, strict=True):
        assert spark_values == _python_typed(text), text


def test_typed_properties_match_coerce_on_tricky_json(spark):
    texts = [t for raw in [None, *TRICKY_JSON] for t in _stored_properties(raw)]
    _assert_same_typed(spark, texts)


def test_booleans_are_doubles_and_json_booleans_are_not_numbers(spark):
    [typed] = _spark_typed(spark, ['{"won": true, "price_usd": true, "sku": true}'])
    assert (typed["won"], typed["price_usd"], typed["sku"]) == (1.0, None, None)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=4,
)
numeric_strings = st.from_regex(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,3})?\s*", fullmatch=True)
near_numeric = st.from_regex(r"[\s\d.eE+\-_xa-f]{0,8}", fullmatch=True)


@hypothesis_settings(max_examples=8, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(sorted(PROPERTY_TYPES)),
            json_values | numeric_strings | near_numeric,
            max_size=len(PROPERTY_TYPES),
        ),
        min_size=20,
        max_size=60,
    )
)
def test_typed_properties_match_coerce_on_generated_json(spark, properties):
    _assert_same_typed(spark, [msgspec.json.encode(p).decode() for p in properties])


def _rule_cases() -> list[dict]:
    valid = {"sku": "gem", "price_usd": 4.99, "offer_id": "o1", "level": 3, "won": True, "amount": 10}
    cases = [{}, valid]
    for expectation in PROPERTIES:
        prop = expectation.column
        bad_type = 7 if PROPERTY_TYPES[prop] == "string" else "seven"
        cases += [
            {**valid, prop: None},
            {k: v for k, v in valid.items() if k != prop},
            {**valid, prop: bad_type},
        ]
        if isinstance(expectation, Between):
            for bound in (expectation.low, expectation.high):
                cases += [
                    {**valid, prop: bound},
                    {**valid, prop: str(bound)},
                    {**valid, prop: bound - 0.001},
                    {**valid, prop: bound + 0.001},
                ]
    cases += [{"price_usd": -1}, {"sku": "x", "price_usd": "1000.0001"}, {"won": "true", "level": "0"}]
    return cases


def _silver_rows(spark, cases: list[tuple[str | None, str, int]]):
    """Rows with a valid envelope, the given event type and properties, received ``late_by`` ms
    after their event time; typed like silver's."""
    from pipelines.expressions import with_typed_properties

    event_time = 1_793_577_600_000  # 2026-11-02T00:00:00Z
    rows = [(i, e, p, event_time, event_time + late) for i, (e, p, late) in enumerate(cases)]
    df = spark.createDataFrame(rows, "i int, event_type string, properties string, t long, r long")
    return with_typed_properties(df).selectExpr(
        "*",
        "uuid() AS event_id",
        "'p1' AS player_id",
        "'demo' AS game_id",
        "'ios' AS platform",
        "timestamp_millis(t) AS event_time",
        "timestamp_millis(r) AS received_at",
    )


def _spark_reasons(df, late_after_days: float = DEFAULT_LATE_AFTER_DAYS) -> list[str | None]:
    from pipelines.expressions import quarantine_reason as reason_column

    return [r.reason for r in df.select("i", reason_column(late_after_days).alias("reason")).orderBy("i").collect()]


def test_quarantine_reason_matches_python_for_every_event_type_and_expectation_edge(spark):
    cases = [(e, msgspec.json.encode(p).decode(), 1000) for e in [*EVENT_TYPES, None] for p in _rule_cases()]

    got = _spark_reasons(_silver_rows(spark, cases))

    # without an event type only the envelope (the collector's contract, which the fold relies on) catches a row
    expected = [
        quarantine_reason(e, msgspec.json.decode(p)) if e else NotNull("event_type").reason for e, p, _ in cases
    ]
    assert got == expected
    assert {r for r in expected if r} == {e.reason for e in PROPERTIES} | {NotNull("event_type").reason}


def test_lateness_horizon_matches_python_on_both_sides_of_it(spark):
    horizon_ms = round(2.5 * DAY_MS)
    lates = [0, 1000, horizon_ms - 1, horizon_ms, horizon_ms + 1, 30 * DAY_MS]
    cases = [
        (e, p, late) for late in lates for e, p in [("ad_view", "{}"), ("purchase", '{"sku": "gem", "price_usd": 1}')]
    ]

    got = _spark_reasons(_silver_rows(spark, cases), late_after_days=2.5)

    expected = [
        quarantine_reason(e, msgspec.json.decode(p), late_by_ms=late, late_after_days=2.5) for e, p, late in cases
    ]
    assert got == expected
    assert [r == ArrivedInTime(2.5).reason for r in got] == [late > horizon_ms for _, _, late in cases]


def test_corrected_event_time_and_utc_date_match_python(spark):
    from pyspark.sql import functions as F

    from pipelines.expressions import corrected_event_time
    from pipelines.expressions import utc_date as utc_date_column

    midnight = 1_793_577_600_000  # 2026-11-02T00:00:00Z
    cases = [
        (midnight - 1, None, midnight + 5),
        (midnight - 1, midnight - 3_600_000, midnight + 1),
        (midnight + 10, midnight + 3_600_000, midnight + 20),
        (midnight, midnight, midnight),
        (0, None, 1),
    ]
    df = spark.createDataFrame(cases, "e long, s long, r long").select(*(F.timestamp_millis(c).alias(c) for c in "esr"))
    corrected = corrected_event_time(F.col("e"), F.col("s"), F.col("r"))
    got = [
        (r.ms, r.day)
        for r in df.select(F.unix_millis(corrected).alias("ms"), utc_date_column(corrected).alias("day")).collect()
    ]

    expected = [corrected_event_time_ms(e, s, r) for e, s, r in cases]
    assert got == [(m, utc_date(m)) for m in expected]
