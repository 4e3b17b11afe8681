"""Typed event properties, defined once for Python and Spark.

The collector checks an event's envelope; what each event type must carry in ``properties``,
and the ranges of values, are declared with silver's other expectations in
``features.expectations``, on the typed values this module gives. The Python coercion below
mirrors what ``pipelines.expressions.property_column`` does in Spark, and a test holds the two
together.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

PropertyType = Literal["double", "boolean", "string"]

PROPERTY_TYPES: dict[str, PropertyType] = {
    "sku": "string",
    "price_usd": "double",
    "level": "double",
    "won": "boolean",
    "score": "double",
    "duration_s": "double",
    "amount": "double",
    "offer_id": "string",
    "placement": "string",
}

_NUMERIC = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")


def coerce(value: Any, kind: PropertyType) -> float | str | None:
    """A property value as its declared type, or ``None`` when absent or not of that type."""
    if value is None:
        return None
    if kind == "double":
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            try:
                f = float(value)
            except OverflowError:  # a JSON integer beyond the double range: like Spark's cast, not a number
                return None
            return f if math.isfinite(f) else None
        if isinstance(value, str) and _NUMERIC.match(value):
            try:
                f = float(value)
            except ValueError:  # \s also matches the separators \x1c-\x1f, which float() refuses
                return None
            return f if math.isfinite(f) else None
        return None
    if kind == "boolean":
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        if value in ("true", "false"):
            return 1.0 if value == "true" else 0.0
        return None
    if isinstance(value, str):
        return value
    return None


def property_value(properties: dict[str, Any], name: str) -> float | str | None:
    return coerce(properties.get(name), PROPERTY_TYPES[name])


def quarantine_reason(event_type: str, properties: dict[str, Any]) -> str | None:
    """The first property expectation an event breaks (``features.expectations``), or ``None``."""
    from features.expectations import quarantine_reason as reason  # it builds on this module

    return reason(event_type, properties)
