"""The read side's request contract, shared by the local gateway and the model functions.

Both faces (``serving.routes.players`` and ``serving.model_function``) parse a predict body and
check a player id the same way and give the same generic answers, so a game sees one API
whether it talks to ``playerpulse serve`` or to API Gateway.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from features.contract import PLAYER_ID_PATTERN, PlayerId
from features.definitions import FEATURE_SETS
from features.online import Profile
from features.profile_state import ProfileState

_player_id = re.compile(PLAYER_ID_PATTERN)
BAD_PLAYER_ID = "player_id must be 1-64 characters of A-Z a-z 0-9 _ . : -"
BAD_PREDICT_BODY = 'body must be {"player_id": "...", "context": {...}} with flat context values'
NO_PROFILE = "no profile for this player"
NO_MODEL = "no such model"

ContextValue = str | int | float | bool | None


class ClientMistake(Exception):
    """A request the caller must fix: ``status`` and a short message that echoes nothing."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class PredictBody(msgspec.Struct, forbid_unknown_fields=True):
    """What a game sends to ask for content: flat context values only, so nesting cannot grow."""

    player_id: PlayerId
    context: dict[str, ContextValue] = msgspec.field(default_factory=dict)


_predict_body = msgspec.json.Decoder(PredictBody)


def player_id_ok(player_id: str) -> bool:
    return _player_id.fullmatch(player_id) is not None


def parse_predict_body(raw: bytes, max_context_keys: int) -> PredictBody:
    """The predict request in ``raw``, or ``ClientMistake`` (400) saying what shape is expected."""
    try:
        body = _predict_body.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        raise ClientMistake(400, BAD_PREDICT_BODY) from None
    if not player_id_ok(body.player_id):
        raise ClientMistake(400, BAD_PLAYER_ID)
    if len(body.context) > max_context_keys:
        raise ClientMistake(400, f"context has more than {max_context_keys} fields")
    return body


def profile_body(p: Profile, now_ms: int) -> dict[str, Any]:
    """A profile as the API shows it: features as of the request, freshness timestamps, never
    the folded state.

    The features are computed from the folded tiles as of ``now_ms`` (or the profile's own
    ``as_of`` if that is later: no folded event may lie after the answer's time), as a
    prediction reads them, so an idle player's 15-minute and 1-day windows have slid rather
    than showing what they were at the last write; ``written_as_of`` says when that was. A set
    this code does not define (a newer writer's) keeps the features the writer stored."""
    as_of = max(now_ms, p.as_of)
    state = ProfileState.from_dict(p.state)
    features: dict[str, Any] = {}
    for name in (p.feature_set or "").split(","):
        fs = FEATURE_SETS.get(name)
        if fs is None or not fs.online:
            features = {**p.features, **features}
            continue
        features.update(state.features(fs, as_of))
    return {
        "game_id": p.game_id,
        "player_id": p.player_id,
        "feature_set": p.feature_set,
        "as_of": as_of,
        "written_as_of": p.as_of,
        "version": p.version,
        "features": features,
        "timestamps": p.timestamps,
    }


PREDICT_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["player_id"],
    "additionalProperties": False,
    "properties": {
        "player_id": {"type": "string", "pattern": PLAYER_ID_PATTERN, "maxLength": 64},
        "context": {
            "type": "object",
            "description": "What the game knows about the request (platform, placement): flat string, "
            "number, boolean or null values; at most serving.max_context_keys. The fields the model's "
            "declaration lists under `context` (conf/models/NAME.yaml) are model inputs: each has a type "
            "(int: an integer, float: a number, bool: true or false, category: a string) and a default, "
            "used when the field is omitted or null; a category value the declaration does not list is "
            "read as its default, and a number outside the field's low/high bounds as the nearest bound. "
            "A value of another type for a declared field is a 400 naming the field. Keys the model "
            "does not declare are ignored.",
            "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
        },
    },
}

PREDICT_RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["model", "version", "player_id", "prediction", "fallback"],
    "properties": {
        "model": {"type": "string"},
        "version": {"type": ["integer", "null"]},
        "player_id": {"type": "string"},
        "prediction": {"type": "object"},
        "fallback": {"type": "boolean"},
        "reason": {"type": ["string", "null"]},
        "timestamps": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
}
