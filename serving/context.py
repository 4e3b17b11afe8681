"""A predict request's ``context`` as the model's context inputs, per the model's declaration.

Built once per model declaration (``ContextDecoder.of``): each declared field gets a small
function specialised to its type, so a request pays one dictionary lookup and a type check per
field. A value of the wrong type for a declared field is the caller's mistake (HTTP 400 naming
the field, never echoing the value); keys the model does not declare are ignored, so a game can
send one context to every model. Everything else is encoded as ``ContextEncoding.encode``
defines it, the reference the training set's Spark encoding is tested against: ``null`` or
omitted → the default, a category's unknown value → the default, numbers clamped to their
bounds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from features.model_context import ContextEncoding
from serving.requests import ClientMistake

FLOAT32_MAX = 3.4028234663852886e38
"""Beyond this a number becomes infinite in the model's float32 input row."""

Value = bool | int | float | str
Reader = Callable[[Any], tuple[Value, float]]
"""A present, non-null raw value → (the value used, the model input); ``ClientMistake`` on a bad type."""


def _bad(name: str, expected: str) -> ClientMistake:
    return ClientMistake(400, f"context.{name} must be {expected} (or null, or omitted, for its default)")


def _number_reader(enc: ContextEncoding, integral: bool) -> Reader:
    name = enc.name
    low = -math.inf if enc.low is None else enc.low
    high = math.inf if enc.high is None else enc.high
    expected = "an integer" if integral else "a finite number"

    def read(v: Any) -> tuple[Value, float]:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise _bad(name, expected)
        if integral and isinstance(v, float) and not v.is_integer():
            raise _bad(name, expected)
        try:
            f = float(v)
        except OverflowError:  # an integer beyond the double range
            raise _bad(name, expected) from None
        if f < low:
            f = low
        elif f > high:
            f = high
        if not -FLOAT32_MAX <= f <= FLOAT32_MAX:  # also NaN
            raise _bad(name, expected)
        used: Value = int(f) if integral and f.is_integer() else f
        return used, f

    return read


def _bool_reader(enc: ContextEncoding) -> Reader:
    name = enc.name

    def read(v: Any) -> tuple[Value, float]:
        if not isinstance(v, bool):
            raise _bad(name, "true or false")
        return v, 1.0 if v else 0.0

    return read


def _category_reader(enc: ContextEncoding) -> Reader:
    name, default = enc.name, enc.default
    index = {value: float(i) for i, value in enumerate(enc.values or ())}
    unknown = index[str(default)]

    def read(v: Any) -> tuple[Value, float]:
        if not isinstance(v, str):
            raise _bad(name, "a string")
        code = index.get(v)
        return (v, code) if code is not None else (default, unknown)

    return read


def _reader(enc: ContextEncoding) -> Reader:
    if enc.type == "category":
        return _category_reader(enc)
    if enc.type == "bool":
        return _bool_reader(enc)
    return _number_reader(enc, integral=enc.type == "int")


@dataclass(frozen=True)
class ContextDecoder:
    """The declared context fields of one model, ready to read requests."""

    encodings: tuple[ContextEncoding, ...]
    _fields: tuple[tuple[str, Reader, Value, float], ...]
    """Per field: name, reader, default value, default input."""

    @classmethod
    def of(cls, encodings: tuple[ContextEncoding, ...]) -> ContextDecoder:
        fields = tuple((e.name, _reader(e), e.default, e.encode(None)) for e in encodings)
        return cls(encodings, fields)

    def decode(self, context: Mapping[str, Any] | None) -> tuple[list[float], dict[str, Value]]:
        """The model's context inputs in declared order and the values they stand for (what the
        prediction log records: after defaults and clamping, so it shows what was scored)."""
        inputs: list[float] = []
        used: dict[str, Value] = {}
        ctx = context or {}
        for name, read, default, default_input in self._fields:
            raw = ctx.get(name)
            if raw is None:
                used[name] = default
                inputs.append(default_input)
            else:
                value, x = read(raw)
                used[name] = value
                inputs.append(x)
        return inputs, used


NO_CONTEXT = ContextDecoder.of(())
