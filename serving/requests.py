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
from features.online import Profile

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


def profile_body(p: Profile) -> dict[str, Any]:
    """A profile as the API shows it: features, freshness timestamps, never the folded state."""
    return {
        "game_id": p.game_id,
        "player_id": p.player_id,
        "feature_set": p.feature_set,
        "as_of": p.as_of,
        "version": p.version,
        "features": p.features,
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
