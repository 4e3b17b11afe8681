"""How a vendor SDK's event becomes a PlayerPulse event: declared as data, per game.

A game points at ``conf/vendors/<name>.yaml`` (``games.GAME.vendors.mapping``, default
``default``). The file says, per vendor, which vendor event (by a key such as
``track:Order Completed``, ``se:level:up`` or ``progression:Complete``) becomes which
``event_type``, where each PlayerPulse property comes from (a dotted path into the vendor's
event, the first present one wins, optionally scaled and typed), which vendor fields are
dropped, and what happens to events no rule names: kept as ``custom`` or rejected. It is
validated with pydantic when the collector starts; an error names the file and the key.

The adapters (``segment.py``, ``snowplow.py``, ``gameanalytics.py``) read their wire format;
``Mapper.plan`` compiles the rule for an event's keys once (then caches it), and
``Mapper.event`` applies it and hands the collector core a plain event dict, which the
contract then validates, a whole batch at once, like any other.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import msgspec
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from features.config import conf_dir
from features.contract import EVENT_TYPES, EpochMs, Platform, Properties
from features.errors import ConfigError

Vendor = Literal["segment", "snowplow", "gameanalytics"]
MAX_PROPERTIES = 64
"""The contract's limit on ``properties`` keys: vendor fields beyond it are left out."""
ID_NAMESPACE = uuid.UUID("3f0c8a52-6f4e-4d52-9b83-6c1f3b1f8a10")
"""uuid5 namespace of event ids derived from vendor ids that are not UUIDs (stable forever:
changing it would let re-sent events through deduplication)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _paths(v: Any) -> Any:
    """``"a.b"`` or ``["a.b", "c"]`` is shorthand for ``{"from": ...}``."""
    if isinstance(v, str):
        return {"from": [v]}
    if isinstance(v, list):
        return {"from": v}
    if isinstance(v, dict) and isinstance(v.get("from"), str):
        return {**v, "from": [v["from"]]}
    return v


class PropertySource(_Strict):
    """Where one PlayerPulse property comes from in the vendor's event."""

    from_: list[str] = Field(alias="from", min_length=1)
    """Dotted paths into the vendor event (``properties.products.0.sku``); the first present wins."""
    scale: float = 1.0
    """Multiplies a numeric value (``0.01``: GameAnalytics' cents become dollars)."""
    type: Literal["number", "integer", "string", "boolean", "last_integer"] | None = None
    """Converts the value (Snowplow sends every field as a string; ``last_integer`` takes the
    last run of digits, so GameAnalytics' ``Stage03`` is level 3); ``None`` keeps it as sent."""


class Rule(_Strict):
    event_type: str
    """The PlayerPulse ``event_type`` this vendor event becomes."""
    properties: dict[str, Annotated[PropertySource, BeforeValidator(_paths)]] = Field(default_factory=dict)
    """PlayerPulse property name → where its value comes from."""

    @field_validator("event_type")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in EVENT_TYPES:
            raise ValueError(f"unknown event_type '{v}' (known: {', '.join(EVENT_TYPES)})")
        return v


class VendorMapping(_Strict):
    events: dict[str, Rule] = Field(default_factory=dict)
    """Vendor event key → rule; each adapter's docstring lists its keys, most specific first."""
    platforms: dict[str, Platform] = Field(default_factory=dict)
    """Vendor platform or OS name (lower-case) → PlayerPulse ``platform``."""
    drop: list[str] = Field(default_factory=list)
    """Vendor fields never copied into ``properties`` (top-level names of the vendor's payload)."""


class MappingFile(_Strict):
    unmapped: Literal["custom", "reject"] = "custom"
    """An event no rule names: kept as ``custom`` (its vendor name in ``properties.name``) or
    rejected (dead-lettered in its vendor form)."""
    default_platform: Platform | None = None
    """The platform of an event whose vendor fields name none in ``platforms``; ``None``
    rejects such an event (the contract requires a platform)."""
    default_app_version: str = Field("unknown", min_length=1, max_length=64)
    """The ``app_version`` of an event that carries none (Snowplow's protocol has no field for it)."""
    segment: VendorMapping = VendorMapping()
    snowplow: VendorMapping = VendorMapping()
    gameanalytics: VendorMapping = VendorMapping()


def load_mapping(name: str, directory: Path | None = None) -> MappingFile:
    """``conf/vendors/<name>.yaml``, validated; ``ConfigError`` names the file and the bad key."""
    source = (directory or conf_dir() / "vendors") / f"{name}.yaml"
    if not source.is_file():
        raise ConfigError(f"vendor mapping '{name}' not found: {source} does not exist")
    try:
        raw = yaml.safe_load(source.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from exc
    try:
        return MappingFile.model_validate(raw)
    except ValidationError as exc:
        lines = [f"invalid vendor mapping in {source}:"]
        for e in exc.errors():
            key = ".".join(str(p) for p in e["loc"]) or "(top level)"
            what = "unknown key: remove it or check its spelling" if e["type"] == "extra_forbidden" else e["msg"]
            lines.append(f"  - '{key}': {what}")
        raise ConfigError("\n".join(lines)) from None


PropertyValue: Any = get_args(get_args(Properties)[0])[1]
"""The contract's type of one ``properties`` value (nesting bounded): the adapters' typed
paths decode vendor fields that become properties with it, so the depth is checked in C."""
MAX_EPOCH_MS: int = get_args(EpochMs)[1].le
"""The contract's latest event time (year 3000)."""


def epoch_ms_ok(value: int) -> bool:
    """Whether an epoch-ms time is one the contract takes (0 to year 3000)."""
    return 0 <= value <= MAX_EPOCH_MS


_MISSING = object()
Parts = tuple[tuple[str, int | None], ...]
"""A dotted path split once: each part with its list index (``None`` when it is not one)."""


def split_path(path: str) -> Parts:
    return tuple((part, int(part) if part.isascii() and part.isdigit() else None) for part in path.split("."))


def lookup(doc: Any, path: str | Parts) -> Any:
    """The value at a dotted path (list items by index), or ``_MISSING``."""
    cur = doc
    for part, index in split_path(path) if isinstance(path, str) else path:
        if isinstance(cur, dict):
            cur = cur.get(part, _MISSING)
        elif isinstance(cur, list) and index is not None and index < len(cur):
            cur = cur[index]
        else:
            return _MISSING
        if cur is _MISSING or cur is None:
            return _MISSING
    return cur


_DIGITS = re.compile(r"(\d+)\D*$")


def _convert(value: Any, src: PropertySource) -> Any:
    if src.type == "last_integer":
        m = _DIGITS.search(str(value))
        if m is None:
            raise ValueError(value)
        return int(m.group(1))
    if src.type == "string":
        value = str(value)
    elif src.type in ("number", "integer") or (src.scale != 1.0 and isinstance(value, str)):
        value = float(value)
    elif src.type == "boolean" and isinstance(value, str):
        value = value.strip().lower() in ("1", "true", "yes")
    if src.scale != 1.0 and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = value * src.scale
    if src.type == "integer":
        value = int(value)
    return value


def _converter(src: PropertySource) -> Callable[[Any], Any] | None:
    """``_convert`` for one source as one call (``None``: the value is taken as sent)."""
    if src.scale == 1.0:
        if src.type is None:
            return None
        if src.type == "integer":
            return lambda value: int(float(value))
        if src.type == "number":
            return float
        if src.type == "string":
            return str
    return lambda value: _convert(value, src)


def _flat_function(
    flat: tuple[tuple[str, PropertySource, tuple[tuple[str, str], ...], bool], ...], drop: frozenset[str]
) -> Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None]:
    """What ``Mapper.flat_properties`` does for one plan, as one function."""
    entries = tuple((prop, _converter(src), tuple(key for key, _ in keys)) for prop, src, keys, _ in flat)
    if len(entries) == 1 and len(entries[0][2]) == 1:
        prop, conv, (field,) = entries[0]

        def one(source: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any] | None:
            out: dict[str, Any] = {}
            value = source.get(field)
            if value is not None:
                if conv is None:
                    out[prop] = value
                else:
                    try:
                        out[prop] = conv(value)
                    except (TypeError, ValueError):
                        return None
            if extra:
                for key, value in extra.items():
                    if len(out) >= MAX_PROPERTIES:
                        break
                    if key != field and key not in drop and key not in out:
                        out[key] = value
            return out

        return one

    def many(source: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        consumed: list[str] = []
        for prop, conv, keys in entries:
            for key in keys:
                consumed.append(key)
                value = source.get(key)
                if value is not None:
                    if conv is None:
                        out[prop] = value
                    else:
                        try:
                            out[prop] = conv(value)
                        except (TypeError, ValueError):
                            return None
                    break
        if extra:
            for key, value in extra.items():
                if len(out) >= MAX_PROPERTIES:
                    break
                if key not in consumed and key not in drop and key not in out:
                    out[key] = value
        return out

    return many


_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_is_canonical_uuid = _CANONICAL_UUID.fullmatch


def event_uuid(vendor: Vendor, game: str, vendor_id: str | None, raw: bytes) -> str:
    """The vendor's id when it is a UUID; otherwise a uuid5 of it (or of the raw event when
    there is none), so that a re-sent event keeps its id and silver deduplicates it.

    A canonical id (what every SDK sends) is only lower-cased: the contract's decoder parses
    it in C, and ``uuid.UUID`` would give the same value at several times the cost."""
    if vendor_id:
        if len(vendor_id) == 36 and _is_canonical_uuid(vendor_id):
            return vendor_id.lower()
        try:
            return str(uuid.UUID(vendor_id))
        except ValueError:
            return str(uuid.uuid5(ID_NAMESPACE, f"{vendor}:{game}:{vendor_id}"))
    return str(uuid.uuid5(ID_NAMESPACE, f"{vendor}:{game}:raw:{raw.decode('utf-8', 'replace')}"))


def datetime_ms(t: datetime) -> int:
    """Epoch ms of a time (one without an offset is UTC)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1000)


def iso_ms(value: Any) -> int | None:
    """Epoch ms of an RFC 3339 / ISO 8601 time (a ``Z`` suffix or none means UTC).

    RFC 3339 text is parsed as msgspec parses it (in C), so the adapters' typed paths, which
    decode their time fields as ``datetime`` s, give each time the same value; other ISO 8601
    forms (a date alone, the basic format, a decimal comma) are left to ``datetime.fromisoformat``."""
    if not isinstance(value, str) or not value:
        return None
    try:
        t = msgspec.convert(value, datetime)
    except msgspec.ValidationError:
        try:
            t = datetime.fromisoformat(value)
        except ValueError:
            return None
    return datetime_ms(t)


@dataclass(frozen=True)
class _Plan:
    """One rule compiled for one ``extra_prefix``: its paths split, and for each path the
    ``extra`` field that reading it consumes (``None`` when it reads outside ``extra``)."""

    event_type: str
    sources: tuple[tuple[str, PropertySource, tuple[tuple[str, Parts, str | None], ...]], ...]
    reads_outside: bool = False
    """Some path reads outside ``extra`` (the typed paths hand ``properties`` only ``extra``)."""
    flat: tuple[tuple[str, PropertySource, tuple[tuple[str, str], ...], bool], ...] | None = None
    """When every path names one field right under ``extra_prefix``: per property, its
    (field, path) pairs and whether the value is taken as sent (``flat_properties``)."""
    roots: frozenset[str] = frozenset()
    """The first part of every path."""


def _consumes(path: str, extra_prefix: str) -> str | None:
    prefix = extra_prefix + "." if extra_prefix else ""
    if prefix:
        return path[len(prefix) :].split(".", 1)[0] if path.startswith(prefix) else None
    return path.split(".", 1)[0]


def _compile(rule: Rule, extra_prefix: str) -> _Plan:
    sources = tuple(
        (prop, src, tuple((path, split_path(path), _consumes(path, extra_prefix)) for path in src.from_))
        for prop, src in rule.properties.items()
    )
    outside = any(consumes is None for _, _, paths in sources for _, _, consumes in paths)
    depth = 2 if extra_prefix else 1
    flat = (
        tuple(
            (prop, src, tuple((consumes, path) for path, _, consumes in paths), src.type is None and src.scale == 1.0)
            for prop, src, paths in sources
        )
        if all(consumes is not None and len(parts) == depth for _, _, paths in sources for _, parts, consumes in paths)
        else None
    )
    roots = frozenset(parts[0][0] for _, _, paths in sources for _, parts, _ in paths)
    return _Plan(rule.event_type, sources, outside, flat, roots)


_NOTHING: frozenset[str] = frozenset()
MAX_CACHED_PLANS = 4096
"""Rule keys carry vendor event names a sender chooses: past this many, plans are not cached."""


class Mapper:
    """Applies one game's mapping file to the events of one vendor.

    Rules are compiled once per (rule keys, ``extra_prefix``) into a ``_Plan`` (paths split,
    what each consumes), so mapping an event is a dict lookup and the few reads its rule names."""

    def __init__(self, vendor: Vendor, game: str, mapping: MappingFile):
        self.vendor = vendor
        self.game = game
        self.file = mapping
        self.rules: VendorMapping = getattr(mapping, vendor)
        self._drop = frozenset(self.rules.drop)
        self._platforms = self.rules.platforms
        self.platforms_seen: dict[str | None, str | None] = {}
        """The vendor's platform name as sent → the mapped one (``None``: none)."""
        self._plans: dict[tuple[tuple[str, ...], str], _Plan | None] = {}
        self.kinds: dict[Any, Any] = {}
        """The adapter's typed path's own per-event-kind work (how a kind's ``properties`` are
        made), kept across bodies: at most ``MAX_CACHED_PLANS`` kinds, as the sender names them."""
        self._flat_functions: dict[int, tuple[_Plan, Callable[[dict[str, Any], dict[str, Any]], Any]]] = {}

    def rule_for(self, keys: tuple[str, ...] | list[str]) -> Rule | None:
        events = self.rules.events
        for key in keys:
            rule = events.get(key)
            if rule is not None:
                return rule
        return None

    def plan(self, keys: tuple[str, ...], extra_prefix: str = "") -> _Plan | None:
        """The compiled rule of the first of ``keys`` the mapping names (``None``: no rule);
        ``extra_prefix`` is the path of the event's free-form fields, which a rule's reads consume."""
        cache_key = (keys, extra_prefix)
        try:
            return self._plans[cache_key]
        except KeyError:
            pass
        rule = self.rule_for(keys)
        plan = _compile(rule, extra_prefix) if rule is not None else None
        if len(self._plans) < MAX_CACHED_PLANS:
            self._plans[cache_key] = plan
        return plan

    def plain(self, plan: _Plan | None) -> bool:
        """Whether an event's ``properties`` under ``plan`` are its ``extra`` as they are (a rule
        that reads nothing, and a mapping that drops nothing), when it has at most 64 of them."""
        return plan is not None and not plan.sources and not self._drop

    def properties(
        self, plan: _Plan | None, name: str, fields: dict[str, Any] | None, extra: dict[str, Any]
    ) -> dict[str, Any] | str:
        """An event's ``properties`` by its plan (``None``: no rule), or why there are none:
        the rule's reads from ``fields`` first, then ``extra`` less what they read and the
        mapping drops, up to the contract's 64 keys. The adapters' typed paths call it too, so
        both paths map alike."""
        properties: dict[str, Any] = {}
        consumed: set[str] | frozenset[str] = _NOTHING
        if plan is None:
            if self.file.unmapped == "reject":
                return f"{self.vendor} event '{name}' has no rule in the game's vendor mapping (unmapped: reject)"
            properties["name"] = name
        else:
            if plan.sources:
                consumed = set()
            for prop, src, paths in plan.sources:
                for path, parts, consumes in paths:
                    if consumes is not None:
                        consumed.add(consumes)  # type: ignore[union-attr]
                    value = lookup(fields, parts)
                    if value is not _MISSING:
                        try:
                            properties[prop] = _convert(value, src)
                        except (TypeError, ValueError):
                            return f"{self.vendor} field '{path}' is not a {src.type or 'number'}: {value!r}"[:240]
                        break
        if extra:
            drop = self._drop
            for key, value in extra.items():
                if len(properties) >= MAX_PROPERTIES:
                    break
                if key not in consumed and key not in drop and key not in properties:
                    properties[key] = value
        return properties

    def flat_properties(self, plan: _Plan, source: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any] | None:
        """``properties`` for a plan whose paths each name one field of ``source`` (the object
        at ``extra_prefix``), or ``None`` when a value does not convert (then ``properties``
        says why): the same reads as ``properties`` without walking paths."""
        out: dict[str, Any] = {}
        consumed: list[str] = []
        for prop, src, keys, as_sent in plan.flat or ():
            for key, _ in keys:
                consumed.append(key)
                value = source.get(key)
                if value is not None:
                    if as_sent:
                        out[prop] = value
                    else:
                        try:
                            out[prop] = _convert(value, src)
                        except (TypeError, ValueError):
                            return None
                    break
        if extra:
            drop = self._drop
            for key, value in extra.items():
                if len(out) >= MAX_PROPERTIES:
                    break
                if key not in consumed and key not in drop and key not in out:
                    out[key] = value
        return out

    def flat_function(self, plan: _Plan) -> Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None]:
        """``flat_properties`` of ``plan`` compiled into one function of (source, extra), made once
        per plan: the rule's fields, converters and the mapping's drops bound in, and a rule of one
        property read from one field (the usual kind) read without loops."""
        try:
            return self._flat_functions[id(plan)][1]
        except KeyError:
            pass
        fn = _flat_function(plan.flat or (), self._drop)
        if len(self._flat_functions) < MAX_CACHED_PLANS:  # past the plan cache's bound, plans are new objects
            self._flat_functions[id(plan)] = (plan, fn)  # the plan kept with it, so its id stays its own
        return fn

    def platform(self, name: str | None) -> str | None:
        """The PlayerPulse platform of the vendor's platform or OS name as sent (``None``: none)."""
        try:
            return self.platforms_seen[name]
        except KeyError:
            mapped = self._platforms.get(name.lower() if name else "") or self.file.default_platform
            if len(self.platforms_seen) < MAX_CACHED_PLANS:  # the sender names it: a bounded cache
                self.platforms_seen[name] = mapped
            return mapped

    def no_platform(self, name: str | None) -> str:
        hint = f"'{name}'" if name else "none"
        return (
            f"{self.vendor} event names no platform the mapping knows ({hint}): add it to "
            f"{self.vendor}.platforms or set default_platform"
        )[:240]

    def event(
        self,
        plan: _Plan | None,
        name: str,
        fields: dict[str, Any] | None,
        extra: dict[str, Any],
        event_id: str | None,
        player_id: str | None,
        time_ms: int | None,
        sent_at_ms: int | None,
        platform: str | None,
        app_version: str | None = None,
        session_id: str | None = None,
        country: str | None = None,
        raw: bytes = b"",
    ) -> dict[str, Any] | str:
        """One vendor event, as its adapter read it, as a PlayerPulse event dict (validated
        later by the contract), or why there is none.

        ``plan`` is ``self.plan(keys, extra_prefix)``; ``fields`` the whole vendor event for its
        paths (only read when the plan has any, so an adapter may pass ``None`` then);
        ``extra`` the vendor's free-form fields, copied into ``properties`` unless the rule
        reads or drops them; ``raw`` the event as sent, the seed of a derived id (only needed
        when it carries no ``event_id``). Positional and flat because it runs once per event."""
        properties = self.properties(plan, name, fields, extra)
        if properties.__class__ is str:
            return properties  # type: ignore[return-value]
        mapped_platform = self.platform(platform)
        if mapped_platform is None:
            return self.no_platform(platform)
        if player_id is None:
            return f"{self.vendor} event carries no user id to use as player_id"
        if time_ms is None:
            return f"{self.vendor} event carries no usable time"
        out: dict[str, Any] = {
            "event_id": event_id.lower()
            if event_id and len(event_id) == 36 and _is_canonical_uuid(event_id)
            else event_uuid(self.vendor, self.game, event_id, raw),
            "event_type": plan.event_type if plan is not None else "custom",
            "player_id": player_id,
            "game_id": self.game,
            "event_time": time_ms,
            "platform": mapped_platform,
            "app_version": app_version or self.file.default_app_version,
            "properties": properties,
        }
        if sent_at_ms is not None:
            out["sent_at"] = sent_at_ms
        if session_id:
            out["session_id"] = session_id
        if country:
            out["country"] = country
        return out
