"""A game's declared data policy: which event properties are kept, dropped or coarsened.

Free-form ``properties`` are where personal data slips in (an e-mail in a support event, a
device IP, an exact birth time). ``games.GAME.data_policy`` declares, per property name, one of

- ``keep``: stored as sent;
- ``drop``: never stored;
- ``coarsen:ip_24``: an IPv4 address truncated to its /24 (``203.0.113.0``), an IPv6 address
  to its /48 (``2001:db8:abcd::``);
- ``coarsen:hour``: a time truncated to the hour (epoch milliseconds stay epoch ms; an RFC 3339
  string becomes ``YYYY-MM-DDTHH:00:00Z``);
- ``coarsen:round:N``: a number rounded to N decimals (N may be negative: ``round:-2`` → hundreds);

and ``default`` (``keep`` or ``drop``) for names it does not declare.

Rules are by name, case-insensitively, at every depth: a name declared ``drop`` is dropped inside
nested objects and arrays too, so ``{"meta": {"Email": …}}`` cannot smuggle a dropped ``email``
past the policy, and with ``default: drop`` a nested object keeps only its declared names. A
value a coarsening rule cannot read (a container, a string that is no IP, a bool under
``round``) is dropped, never kept: the policy fails closed. The collector applies the policy
after validation, before the stream; dead letters keep only what it keeps.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_RULE = re.compile(r"^(keep|drop|coarsen:ip_24|coarsen:hour|coarsen:round:-?[0-6])$")
_DROP = object()
"""What a rule returns for a value that must not be stored."""


class DataPolicyConfig(BaseModel):
    """``games.GAME.data_policy``: a rule per property name and one for the rest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: Literal["keep", "drop"] = "keep"
    """What happens to a property name the policy does not declare."""
    properties: dict[str, str] = Field(default_factory=dict)
    """Property name → ``keep`` | ``drop`` | ``coarsen:ip_24`` | ``coarsen:hour`` |
    ``coarsen:round:N`` (N from -6 to 6). Names match case-insensitively, at every depth."""

    @field_validator("properties")
    @classmethod
    def _rules(cls, rules: dict[str, str]) -> dict[str, str]:
        seen: dict[str, str] = {}
        for name, rule in rules.items():
            if not _RULE.fullmatch(rule):
                raise ValueError(
                    f"property '{name}': unknown rule '{rule}'; use keep, drop, coarsen:ip_24, coarsen:hour "
                    "or coarsen:round:N (N from -6 to 6)"
                )
            folded = name.casefold()
            if folded in seen:
                raise ValueError(f"properties '{seen[folded]}' and '{name}' are the same name (names ignore case)")
            seen[folded] = name
        return rules


def _ip_24(value: Any) -> Any:
    if not isinstance(value, str):
        return _DROP
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        return _DROP
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if isinstance(ip, ipaddress.IPv4Address) else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


_HOUR_MS = 3_600_000


def _hour(value: Any) -> Any:
    if isinstance(value, bool):
        return _DROP
    if isinstance(value, int):
        return value - value % _HOUR_MS
    if isinstance(value, float):
        return _hour(int(value)) if value == value and abs(value) < 1e18 else _DROP
    if isinstance(value, str):
        try:
            t = datetime.fromisoformat(value.strip())
        except ValueError:
            return _DROP
        t = (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)
        return t.strftime("%Y-%m-%dT%H:00:00Z")
    return _DROP


def _rounder(digits: int) -> Callable[[Any], Any]:
    def rounded(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return _DROP
        if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
            return _DROP
        out = round(value, digits)
        return int(out) if isinstance(value, int) or digits <= 0 else out

    return rounded


def _rule(text: str) -> Callable[[Any], Any] | None:
    """``None`` for keep, a function for the others (``drop`` drops everything)."""
    if text == "keep":
        return None
    if text == "drop":
        return lambda _v: _DROP
    if text == "coarsen:ip_24":
        return _ip_24
    if text == "coarsen:hour":
        return _hour
    return _rounder(int(text.rsplit(":", 1)[1]))


class DataPolicy:
    """A compiled ``DataPolicyConfig``: ``apply`` returns the properties that may be stored."""

    def __init__(self, cfg: DataPolicyConfig):
        self._rules = {name.casefold(): _rule(rule) for name, rule in cfg.properties.items()}
        self._keep_undeclared = cfg.default == "keep"

    def apply(self, properties: dict[str, Any]) -> dict[str, Any]:
        """A new dict: ``properties`` with every rule applied at every depth (never mutated)."""
        return self._object(properties)

    def _object(self, obj: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in obj.items():
            folded = name.casefold() if isinstance(name, str) else str(name)
            if folded in self._rules:
                rule = self._rules[folded]
                kept = self._value(value) if rule is None else rule(value)
            elif self._keep_undeclared:
                kept = self._value(value)
            else:
                kept = _DROP
            if kept is not _DROP:
                out[name] = kept
        return out

    def _value(self, value: Any) -> Any:
        """A kept value: containers are walked so that their names meet the rules too."""
        if isinstance(value, dict):
            return self._object(value)
        if isinstance(value, list):
            return [self._value(v) for v in value]
        return value
