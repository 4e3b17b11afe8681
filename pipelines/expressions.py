"""Spark twins of the Python rules in ``features``: typed properties, expectations, event time.

Silver and the streaming fold must agree row for row, or batch features drift from online ones.
So every Spark expression here reproduces its Python counterpart exactly, including its corner
cases: ``features.properties.coerce`` accepts numeric *strings* with any Unicode decimal digit
and Unicode whitespace (Python's ``\\d``, ``\\s`` and ``float()`` do), rejects JSON booleans as
numbers, and returns only finite values; ``quarantine_reason`` takes the *first* broken
expectation of ``features.expectations``.
``tests/test_expressions.py`` holds the two sides together on many tricky JSON inputs.

Dates are computed from epoch milliseconds, never through the session time zone, so a cluster
configured for another zone still puts an event on its UTC day.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from functools import cache

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from features.expectations import (
    DEFAULT_LATE_AFTER_DAYS,
    ArrivedInTime,
    Between,
    InSet,
    MatchesRegex,
    NotNull,
    RowExpectation,
    row_expectations,
)
from features.properties import PROPERTY_TYPES

DAY_MS = 86_400_000

# ``features.properties._NUMERIC`` once all digits are ASCII and all whitespace is a space.
_NUMERIC_ASCII = r"^ *[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)? *$"
_PARSED = "__pp_properties_variant"


@cache
def _unicode_to_ascii() -> tuple[str, str]:
    """``(from, to)`` for ``translate``: every character Python's ``\\d`` matches → its ASCII digit,
    every whitespace character ``float()`` skips → a space (what ``float()`` does before parsing)."""
    import unicodedata

    chars = [chr(c) for c in range(sys.maxunicode + 1)]
    digits = [c for c in chars if c.isdecimal() and not "0" <= c <= "9"]
    # float() keeps ASCII characters as they are and skips only " \t\n\v\f\r" among them, so
    # the separators \x1c-\x1f (which \s matches) are left in place to fail the pattern.
    spaces = [c for c in chars if c.isspace() and (c in "\t\n\v\f\r" or ord(c) > 127)]
    source = "".join(digits) + "".join(spaces)
    target = "".join(str(unicodedata.decimal(c)) for c in digits) + " " * len(spaces)
    return source, target


def epoch_ms(ts: Column) -> Column:
    return F.unix_millis(ts)


def utc_date(ts: Column) -> Column:
    """The UTC calendar date of a timestamp, whatever ``spark.sql.session.timeZone`` says."""
    return F.date_from_unix_date(F.floor(F.unix_millis(ts) / F.lit(DAY_MS)).cast("int"))


def day_end(date: Column) -> Column:
    """The last millisecond of a UTC date: the ``as_of`` at which a day's features are read."""
    return F.timestamp_millis((F.unix_date(date).cast("long") + 1) * DAY_MS - 1)


def corrected_event_time(event_time: Column, sent_at: Column, received_at: Column) -> Column:
    """``features.contract.corrected_event_time_ms`` on TIMESTAMP columns."""
    shifted = F.timestamp_millis(epoch_ms(event_time) + (epoch_ms(received_at) - epoch_ms(sent_at)))
    return F.when(sent_at.isNull(), event_time).otherwise(shifted)


def numeric_value(text: Column) -> Column:
    """``coerce(value, "double")`` for a JSON number's or JSON string's text: finite or null."""
    source, target = _unicode_to_ascii()
    ascii_text = F.translate(text, source, target)
    number = F.when(ascii_text.rlike(_NUMERIC_ASCII), F.trim(ascii_text).try_cast("double"))
    return F.when(F.abs(number) < F.lit(float("inf")), number)


def property_column(properties: Column, name: str, parsed: Column | None = None) -> Column:
    """Property ``name`` of the JSON text ``properties`` as its declared type (DOUBLE or STRING).

    Booleans become DOUBLE 1.0/0.0 like ``coerce``, so an ``avg`` of them is a rate. A string
    property needs the JSON type of the value (``get_json_object`` hands out an object's or a
    number's text as if it were a string), hence the VARIANT ``parsed`` of ``properties``.
    """
    kind = PROPERTY_TYPES.get(name)
    if kind is None:
        raise ValueError(f"unknown property '{name}' (declared: {sorted(PROPERTY_TYPES)})")
    raw = F.get_json_object(properties, f"$.{name}")
    if kind == "double":
        return numeric_value(raw)
    if kind == "boolean":
        return F.when(raw == "true", F.lit(1.0)).when(raw == "false", F.lit(0.0)).cast("double")
    variant = parsed if parsed is not None else F.try_parse_json(properties)
    json_type = F.schema_of_variant(F.variant_get(variant, f"$.{name}", "variant"))
    return F.when(json_type == "STRING", raw)


def with_typed_properties(df: DataFrame, properties: str = "properties") -> DataFrame:
    """``df`` plus one column per name in ``PROPERTY_TYPES`` (named like the property)."""
    clash = sorted(set(PROPERTY_TYPES) & set(df.columns))
    if clash:
        raise ValueError(f"property names {clash} clash with columns of the same name: rename the property")
    if properties not in df.columns:
        raise ValueError(f"no column '{properties}' (JSON text of the event's properties) in {df.columns}")
    parsed = F.col(_PARSED)
    typed = {name: property_column(F.col(properties), name, parsed).alias(name) for name in PROPERTY_TYPES}
    return df.withColumn(_PARSED, F.try_parse_json(F.col(properties))).select("*", *typed.values()).drop(_PARSED)


def broken(expectation: RowExpectation | ArrivedInTime, typed: Mapping[str, Column] | None = None) -> Column:
    """True where a row breaks ``expectation`` (``broken_by`` of ``features.expectations``).

    A row outside the expectation's event type never breaks it; ``typed`` maps property names
    to typed columns and defaults to the columns ``with_typed_properties`` adds.
    """
    if isinstance(expectation, ArrivedInTime):
        late_by = epoch_ms(F.col("received_at")) - epoch_ms(F.col("event_time"))
        return late_by > F.lit(expectation.late_after_ms)
    column = expectation.column
    value = typed[column] if typed is not None and column in typed else F.col(column)
    if isinstance(expectation, NotNull):
        fails = value.isNull()
    elif isinstance(expectation, Between):
        fails = (value < F.lit(expectation.low)) | (value > F.lit(expectation.high))
    elif isinstance(expectation, InSet):
        fails = ~value.isin(*expectation.values)
    elif isinstance(expectation, MatchesRegex):
        fails = ~value.rlike(expectation.pattern)
    else:
        raise TypeError(f"no Spark form for {type(expectation).__name__}: add one to pipelines.expressions.broken")
    if not isinstance(expectation, NotNull):
        fails = value.isNotNull() & fails  # like GX, only NotNull looks at absent values
    if expectation.event_type is not None:
        fails = (F.col("event_type") == F.lit(expectation.event_type)) & fails
    return F.coalesce(fails, F.lit(False))


def quarantine_reason(
    late_after_days: float = DEFAULT_LATE_AFTER_DAYS, typed: Mapping[str, Column] | None = None
) -> Column:
    """The ``reason`` of the first row expectation a row breaks, else null.

    Over silver rows: envelope columns, typed properties and skew-corrected ``event_time``.
    """
    reason: Column | None = None
    for expectation in row_expectations(late_after_days):
        condition = broken(expectation, typed)
        text = F.lit(expectation.reason)
        reason = F.when(condition, text) if reason is None else reason.when(condition, text)
    return reason if reason is not None else F.lit(None).cast("string")
