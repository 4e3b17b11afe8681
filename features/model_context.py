"""Request-time features: the ``context`` a model YAML declares, what the game sends with a predict call.

A profile knows what a player did; only the game knows what the request is about (the platform it
runs on, the store placement being filled). A model may declare such fields::

    context:
      - name: platform
        type: category
        values: [ios, android, pc, console, web]
        default: ios
        training:
          latest_property: {event_type: session_start, property: platform}

Each field becomes one model input after the profile features, in declared order, encoded the
same way at training and at serving (``ContextEncoding``):

- ``int`` / ``float``: the number; with ``low``/``high`` an out-of-range value is *clamped* to the
  nearest bound (the value still says "very high", and trees cannot tell apart values beyond the
  range they were trained on anyway, so clamping never changes what the model learned);
- ``bool``: 1.0 / 0.0;
- ``category``: the value's index in ``values``. One column per field rather than one-hot: a tree
  isolates any index in two splits, a handful of values costs no extra inputs, and the model's
  input list stays one name per declared field. A value not in ``values`` is encoded as the
  default (a new platform the model never saw is treated as the default one, not as missing);
- a field the game omits or sends as ``null`` takes ``default``.

``training`` says where the training set takes each snapshot's value from, point-in-time: the
constant ``default`` (the model then cannot learn anything from the field: every training row
holds the same value, so it never splits on it), or ``latest_property``, the value of a property
on the player's latest event of a type at or before the snapshot's ``as_of`` (its default when
the player had no such event yet, or that event lacks the property). No Spark here: serving
imports this module.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

import msgspec
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from features.contract import EVENT_TYPES
from features.properties import PROPERTY_TYPES

ContextType = Literal["int", "float", "bool", "category"]
CONTEXT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
"""A field's name is a column of the training set and a key the game sends."""
RESERVED_NAMES = ("game_id", "player_id", "as_of_date", "as_of", "label")
"""Columns every training set already has (``training.dataset.KEY_COLUMNS`` and ``LABEL``)."""

ENVELOPE_SOURCES: dict[str, str] = {"platform": "string", "app_version": "string", "country": "string"}
"""Envelope fields of the event contract a ``latest_property`` may read (silver columns, like the
typed properties of ``PROPERTY_TYPES``)."""
SOURCE_TYPES: dict[str, str] = {**ENVELOPE_SOURCES, **PROPERTY_TYPES}
"""Every silver column a ``latest_property`` may read, with its type."""
_FITS: dict[str, str] = {"category": "string", "bool": "boolean", "int": "double", "float": "double"}
"""The property type a field of each type reads in training."""


class Strict(BaseModel):
    """A declaration section: unknown keys are errors and a parsed section never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def known_event_type(v: str) -> str:
    """``v`` if the contract defines that event type; else the error a declaration shows."""
    if v not in EVENT_TYPES:
        raise ValueError(f"unknown event type '{v}' (known: {', '.join(EVENT_TYPES)})")
    return v


class LatestProperty(Strict):
    event_type: str
    """An event type of the contract (``session_start``)."""
    property: str
    """An envelope field (``platform``, ``app_version``, ``country``) or a typed property of
    ``features.properties.PROPERTY_TYPES`` (``placement``, ``level``, …)."""

    @field_validator("event_type")
    @classmethod
    def _known_event_type(cls, v: str) -> str:
        return known_event_type(v)

    @field_validator("property")
    @classmethod
    def _known_property(cls, v: str) -> str:
        if v not in SOURCE_TYPES:
            raise ValueError(f"unknown property '{v}' (known: {', '.join(SOURCE_TYPES)})")
        return v


class LatestPropertySource(Strict):
    latest_property: LatestProperty


def _source_kind(v: Any) -> str | None:
    if isinstance(v, str):
        return "default"
    if isinstance(v, dict | LatestPropertySource):
        return "latest_property"
    return None


TrainingSource = Annotated[
    Annotated[Literal["default"], Tag("default")] | Annotated[LatestPropertySource, Tag("latest_property")],
    Discriminator(
        _source_kind,
        custom_error_type="training_source",
        custom_error_message="must be 'default' or {latest_property: {event_type: ..., property: ...}}",
    ),
]


class ContextEncoding(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How one field becomes a model input: what a trained version records and serving must match.

    The training source is not part of it: it changes what a model learned, not how a request is
    read, so a version trained from another source still reads requests correctly."""

    name: str
    type: str
    default: bool | int | float | str
    values: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None

    def encode(self, value: bool | int | float | str | None) -> float:
        """The model input for an already type-checked ``value`` (``None``: the default); the
        reference for the Spark encoding in ``training.dataset`` and for serving's decoders."""
        v = self.default if value is None else value
        if self.type == "category":
            values = self.values or ()
            return float(values.index(v) if v in values else values.index(self.default))
        f = float(v)
        if self.low is not None and f < self.low:
            return float(self.low)
        if self.high is not None and f > self.high:
            return float(self.high)
        return f


class ContextField(Strict):
    """One field the game sends with a predict call, and how training gets its value."""

    name: str
    type: ContextType
    default: bool | int | float | str
    """Used when the game omits the field or sends ``null``; of the field's type (a category's
    default is one of its ``values``)."""
    values: list[str] | None = None
    """``category`` only: the known values, encoded as their index; anything else is the default."""
    low: float | None = None
    """``int``/``float`` only: values below are clamped to ``low``."""
    high: float | None = None
    """``int``/``float`` only: values above are clamped to ``high``."""
    training: TrainingSource = Field(description="where the training set takes the value from")

    @field_validator("name")
    @classmethod
    def _valid_name(cls, v: str) -> str:
        if not CONTEXT_NAME.match(v):
            raise ValueError("must be lower-case letters, digits and '_', starting with a letter (max 64)")
        if v in RESERVED_NAMES:
            raise ValueError(f"'{v}' is a column every training set has ({', '.join(RESERVED_NAMES)})")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ContextField:
        problem = self._problem()
        if problem:
            raise ValueError(f"context field '{self.name}': {problem}")
        return self

    def _problem(self) -> str | None:
        t, d = self.type, self.default
        if t == "category":
            if not self.values:
                return "a category lists its values (values: [...])"
            if len(set(self.values)) != len(self.values):
                return f"values {self.values} list a value more than once"
            if self.low is not None or self.high is not None:
                return "low/high bound numbers; a category takes none"
            if not isinstance(d, str) or d not in self.values:
                return f"default {d!r} is not one of its values {self.values}"
        else:
            if self.values is not None:
                return f"only a category lists values; a {t} field takes none"
            if t == "bool" and not isinstance(d, bool):
                return f"default {d!r} is not a bool (true or false)"
            if t == "int" and (isinstance(d, bool) or not isinstance(d, int)):
                return f"default {d!r} is not an integer"
            if t == "float" and (isinstance(d, bool) or not isinstance(d, int | float)):
                return f"default {d!r} is not a number"
            if t == "bool" and (self.low is not None or self.high is not None):
                return "low/high bound numbers; a bool takes none"
            low = -math.inf if self.low is None else self.low
            high = math.inf if self.high is None else self.high
            if low > high:
                return f"low {self.low} is above high {self.high}"
            if t != "bool" and not low <= d <= high:
                return f"default {d} lies outside [low, high] = [{self.low}, {self.high}]"
        if isinstance(self.training, LatestPropertySource):
            source = self.training.latest_property
            kind = SOURCE_TYPES[source.property]
            if kind != _FITS[t]:
                return (
                    f"training reads {source.property}, a {kind} value, which a {t} field cannot take "
                    f"(a {t} field reads a {_FITS[t]} property)"
                )
        return None

    @property
    def encoding(self) -> ContextEncoding:
        default = float(self.default) if self.type == "float" else self.default
        values = tuple(self.values) if self.values is not None else None
        return ContextEncoding(self.name, self.type, default, values, self.low, self.high)

    @property
    def source(self) -> LatestProperty | None:
        """Where training reads the value, or ``None`` for the constant default."""
        return self.training.latest_property if isinstance(self.training, LatestPropertySource) else None


def context_problem(fields: list[ContextField], feature_names: list[str], set_name: str) -> str | None:
    """Why a model's ``context`` cannot sit beside its feature set's features, or ``None``."""
    names = [f.name for f in fields]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        return f"context declares {repeated} more than once"
    taken = [n for n in names if n in set(feature_names)]
    if taken:
        return f"context fields {taken} have the names of features of {set_name}: rename them"
    return None
