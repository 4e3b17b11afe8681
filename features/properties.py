"""Typed event properties and the quality rules on them, defined once for Python and Spark.

The collector checks an event's envelope; what each event type carries in ``properties`` is
checked here. Silver quarantines a row that breaks a rule (with the rule's reason) and the
streaming path skips it, so both paths see the same events. The Python coercion below mirrors
what Spark's ``try_cast(get_json_object(...))`` does, and a test holds the two together.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
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


@dataclass(frozen=True)
class PropertyRule:
    """An event of ``event_type`` must carry ``prop`` of its type, within ``[low, high]``."""

    event_type: str
    prop: str
    low: float | None = None
    high: float | None = None

    @property
    def reason(self) -> str:
        bounds = ""
        if self.low is not None or self.high is not None:
            bounds = f" in [{self.low if self.low is not None else '-inf'}, "
            bounds += f"{self.high if self.high is not None else 'inf'}]"
        return f"{self.event_type}: properties.{self.prop} must be a {PROPERTY_TYPES[self.prop]}{bounds}"

    def broken_by(self, event_type: str, properties: dict[str, Any]) -> bool:
        if event_type != self.event_type:
            return False
        v = property_value(properties, self.prop)
        if v is None:
            return True
        if isinstance(v, float):
            if self.low is not None and v < self.low:
                return True
            if self.high is not None and v > self.high:
                return True
        return False


QUALITY_RULES: tuple[PropertyRule, ...] = (
    PropertyRule("purchase", "sku"),
    PropertyRule("purchase", "price_usd", 0.0, 1000.0),
    PropertyRule("offer_shown", "offer_id"),
    PropertyRule("level_up", "level", 1.0, 100_000.0),
    PropertyRule("match_end", "won"),
    PropertyRule("currency_earn", "amount", 0.0, 1e9),
    PropertyRule("currency_spend", "amount", 0.0, 1e9),
)


def quarantine_reason(event_type: str, properties: dict[str, Any]) -> str | None:
    """The first rule an event breaks (its quarantine reason), or ``None`` if it is clean."""
    for rule in QUALITY_RULES:
        if rule.broken_by(event_type, properties):
            return rule.reason
    return None
