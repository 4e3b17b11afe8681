"""Spark twins of the Python rules in ``features``: typed properties, quality rules, event time.

Silver and the streaming fold must agree row for row, or batch features drift from online ones.
So every Spark expression here reproduces its Python counterpart exactly, including its corner
cases: ``features.properties.coerce`` accepts numeric *strings* with any Unicode decimal digit
and Unicode whitespace (Python's ``\\d``, ``\\s`` and ``float()`` do), rejects JSON booleans as
numbers, and returns only finite values; ``quarantine_reason`` takes the *first* broken rule.
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

from features.properties import PROPERTY_TYPES, QUALITY_RULES

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


def quarantine_reason(event_type: Column, typed: Mapping[str, Column] | None = None) -> Column:
    """``features.properties.quarantine_reason`` over typed property columns: the first rule
    broken, else null. ``typed`` defaults to the columns ``with_typed_properties`` adds."""
    reason: Column | None = None
    for rule in QUALITY_RULES:
        value = typed[rule.prop] if typed is not None else F.col(rule.prop)
        broken = value.isNull()
        if PROPERTY_TYPES[rule.prop] != "string":
            if rule.low is not None:
                broken = broken | (value < F.lit(rule.low))
            if rule.high is not None:
                broken = broken | (value > F.lit(rule.high))
        condition = (event_type == F.lit(rule.event_type)) & broken
        reason = F.when(condition, rule.reason) if reason is None else reason.when(condition, rule.reason)
    return reason if reason is not None else F.lit(None).cast("string")
