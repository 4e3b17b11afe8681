"""How a vendor SDK's event becomes a PlayerPulse event: declared as data, per game.

A game points at ``conf/vendors/<name>.yaml`` (``games.GAME.vendors.mapping``, default
``default``). The file says, per vendor, which vendor event (by a key such as
``track:Order Completed``, ``se:level:up`` or ``progression:Complete``) becomes which
``event_type``, where each PlayerPulse property comes from (a dotted path into the vendor's
event, the first present one wins, optionally scaled and typed), which vendor fields are
dropped, and what happens to events no rule names: kept as ``custom`` or rejected. It is
validated with pydantic when the collector starts; an error names the file and the key.

The adapters (``segment.py``, ``snowplow.py``, ``gameanalytics.py``) only read their wire
format into a ``VendorEvent``; ``Mapper.map`` applies the rules and hands the collector core a
plain event dict, which the contract then validates like any other.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from features.config import conf_dir
from features.contract import EVENT_TYPES, Platform
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


@dataclass
class VendorEvent:
    """One vendor event, read from its wire format but not yet mapped."""

    keys: list[str]
    """Rule keys to try, most specific first (``track:Order Completed``, ``track``)."""
    name: str
    """The vendor's name for the event (``properties.name`` of a ``custom`` event)."""
    fields: dict[str, Any]
    """The whole vendor event, for the rules' paths."""
    extra: dict[str, Any] = field(default_factory=dict)
    """The vendor's free-form fields, copied into ``properties`` unless a rule takes or drops them."""
    extra_prefix: str = ""
    """The path of ``extra`` within ``fields`` (``properties``), so rules that read it consume it."""
    event_id: str | None = None
    player_id: str | None = None
    time_ms: int | None = None
    sent_at_ms: int | None = None
    platform: str | None = None
    app_version: str | None = None
    session_id: str | None = None
    country: str | None = None
    raw: bytes = b""
    """The event as the vendor sent it: its dead letter, and the seed of a derived id."""


_MISSING = object()


def lookup(doc: Any, path: str) -> Any:
    """The value at a dotted path (list items by index), or ``_MISSING``."""
    cur = doc
    for part in path.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part, _MISSING)
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
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


def event_uuid(vendor: Vendor, game: str, vendor_id: str | None, raw: bytes) -> str:
    """The vendor's id when it is a UUID; otherwise a uuid5 of it (or of the raw event when
    there is none), so that a re-sent event keeps its id and silver deduplicates it."""
    if vendor_id:
        try:
            return str(uuid.UUID(vendor_id))
        except ValueError:
            return str(uuid.uuid5(ID_NAMESPACE, f"{vendor}:{game}:{vendor_id}"))
    return str(uuid.uuid5(ID_NAMESPACE, f"{vendor}:{game}:raw:{raw.decode('utf-8', 'replace')}"))


def iso_ms(value: Any) -> int | None:
    """Epoch ms of an RFC 3339 / ISO 8601 time (a ``Z`` suffix or none means UTC)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1000)


class Mapper:
    """Applies one game's mapping file to the events of one vendor."""

    def __init__(self, vendor: Vendor, game: str, mapping: MappingFile):
        self.vendor = vendor
        self.game = game
        self.file = mapping
        self.rules: VendorMapping = getattr(mapping, vendor)
        self._drop = frozenset(self.rules.drop)

    def rule_for(self, keys: list[str]) -> Rule | None:
        events = self.rules.events
        for key in keys:
            rule = events.get(key)
            if rule is not None:
                return rule
        return None

    def map(self, ve: VendorEvent) -> tuple[dict[str, Any] | None, str | None]:
        """The PlayerPulse event dict (validated later by the contract), or why there is none."""
        rule = self.rule_for(ve.keys)
        properties: dict[str, Any] = {}
        consumed: set[str] = set()
        if rule is None:
            if self.file.unmapped == "reject":
                return (
                    None,
                    f"{self.vendor} event '{ve.name}' has no rule in the game's vendor mapping (unmapped: reject)",
                )
            event_type = "custom"
            properties["name"] = ve.name
        else:
            event_type = rule.event_type
            prefix = ve.extra_prefix + "." if ve.extra_prefix else ""
            for prop, src in rule.properties.items():
                for path in src.from_:
                    if prefix and path.startswith(prefix):
                        consumed.add(path[len(prefix) :].split(".", 1)[0])
                    elif not prefix:
                        consumed.add(path.split(".", 1)[0])
                    value = lookup(ve.fields, path)
                    if value is not _MISSING:
                        try:
                            properties[prop] = _convert(value, src)
                        except (TypeError, ValueError):
                            return None, f"{self.vendor} field '{path}' is not a {src.type or 'number'}: {value!r}"[
                                :240
                            ]
                        break
        for key, value in ve.extra.items():
            if len(properties) >= MAX_PROPERTIES:
                break
            if key not in consumed and key not in self._drop and key not in properties:
                properties[key] = value
        platform = self.rules.platforms.get((ve.platform or "").lower()) or self.file.default_platform
        if platform is None:
            hint = f"'{ve.platform}'" if ve.platform else "none"
            return None, (
                f"{self.vendor} event names no platform the mapping knows ({hint}): add it to "
                f"{self.vendor}.platforms or set default_platform"
            )[:240]
        if ve.player_id is None:
            return None, f"{self.vendor} event carries no user id to use as player_id"
        if ve.time_ms is None:
            return None, f"{self.vendor} event carries no usable time"
        out: dict[str, Any] = {
            "event_id": event_uuid(self.vendor, self.game, ve.event_id, ve.raw),
            "event_type": event_type,
            "player_id": ve.player_id,
            "game_id": self.game,
            "event_time": ve.time_ms,
            "platform": platform,
            "app_version": ve.app_version or self.file.default_app_version,
            "properties": properties,
        }
        if ve.sent_at_ms is not None:
            out["sent_at"] = ve.sent_at_ms
        if ve.session_id:
            out["session_id"] = ve.session_id
        if ve.country:
            out["country"] = ve.country
        return out, None
