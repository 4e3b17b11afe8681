"""OpenAPI pieces FastAPI cannot infer, because ``/v1/events`` reads its raw body itself."""

from __future__ import annotations

from typing import Any

from features.contract import event_schema_components


def event_schemas() -> dict[str, Any]:
    """JSON Schema components of the event contract, derived from the msgspec definition."""
    return event_schema_components(ref_template="#/components/schemas/{name}")


# Items are validated one by one (an invalid item is reported by index, the rest accepted), so
# the request schema admits any JSON item and points at ``Event`` for what a valid one is.
EVENT_ITEM: dict[str, Any] = {
    "description": "One event; it should match `Event`. Items that do not are rejected individually "
    "(listed in `errors` by index and dead-lettered) without failing the batch.",
    "anyOf": [{"$ref": "#/components/schemas/Event"}, {}],
}

EVENTS_REQUEST: dict[str, Any] = {
    "required": True,
    "description": (
        'A batch of events: a JSON array, an object `{"events": [...]}`, or NDJSON (one event per '
        "line, `Content-Type: application/x-ndjson`). `Content-Encoding` may be gzip, zstd or absent."
    ),
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"type": "array", "items": EVENT_ITEM},
                    {
                        "type": "object",
                        "required": ["events"],
                        "properties": {"events": {"type": "array", "items": EVENT_ITEM}},
                    },
                ]
            }
        },
        "application/x-ndjson": {
            "schema": {"description": "One event per line; each line is validated like an array item."}
        },
    },
}

INGEST_RESULT = {
    "type": "object",
    "required": ["accepted", "rejected", "errors"],
    "properties": {
        "accepted": {"type": "integer", "minimum": 0},
        "rejected": {"type": "integer", "minimum": 0},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "reason"],
                "properties": {"index": {"type": "integer"}, "reason": {"type": "string"}},
            },
        },
    },
}
ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}


def _err(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": ERROR}}}
    if headers:
        out["headers"] = headers
    return out


EVENTS_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Valid events are durably on the stream; invalid ones are listed by index and dead-lettered.",
        "content": {"application/json": {"schema": INGEST_RESULT}},
    },
    400: _err("The body is not parseable (bad JSON or bad compression)."),
    401: _err("No API key, or not a known game's key."),
    413: _err("Body, decompressed body, or event count above the configured limits."),
    415: _err("Unsupported Content-Encoding."),
    429: _err(
        "This ingest key's rate limit (games.GAME.rate_limit, per worker process) is spent; nothing was "
        "taken or kept. Retry after the given delay.",
        {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds until the batch would pass"}},
    ),
    503: _err(
        "The stream cannot take the batch now; nothing was acknowledged. Retry after the given delay.",
        {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    ),
}


# --- vendor SDK formats (serving/routes/vendors.py) ----------------------------------------------

_JSON_OBJECT = {"type": "object"}


def _vendor_err(description: str, media: str = "application/json") -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": _JSON_OBJECT if media.endswith("json") else {}}}}


_RETRY = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
_SEGMENT_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Every valid message is durably on the stream (invalid ones are dead-lettered as sent).",
        "content": {"application/json": {"schema": {"type": "object", "properties": {"success": {"const": True}}}}},
    },
    400: _vendor_err("The body is not a Segment message or batch, or not valid gzip."),
    401: _vendor_err("No write key, or not a game's ingest key (HTTP Basic, user = write key)."),
    413: _vendor_err("Body or message count above the collector's limits."),
    429: {**_vendor_err("The game's rate limit for vendor traffic is spent; nothing was kept."), "headers": _RETRY},
    503: {**_vendor_err("The stream cannot take the batch; nothing was acknowledged."), "headers": _RETRY},
}
_SEGMENT_SECURITY = [{"segmentWriteKey": []}]
_SNOWPLOW_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "Every valid event is durably on the stream.", "content": {"text/plain": {"schema": {}}}},
    400: _vendor_err("The body is not a payload_data envelope.", "text/plain"),
    401: _vendor_err("The app id (aid) is not an ingest key of the game in the path.", "text/plain"),
    429: {**_vendor_err("The game's rate limit for vendor traffic is spent.", "text/plain"), "headers": _RETRY},
    503: {**_vendor_err("The stream cannot take the batch.", "text/plain"), "headers": _RETRY},
}
_GA_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "Every event is durably on the stream.", "content": {"application/json": {"schema": {}}}},
    400: _vendor_err("Some events failed validation (listed; the others were kept), or the body is unusable."),
    401: _vendor_err("Unknown game key, or Authorization is not base64(HMAC-SHA256(secret, body))."),
    413: _vendor_err("Body above the collector's limits."),
    429: {**_vendor_err("The game's rate limit for vendor traffic is spent."), "headers": _RETRY},
    503: {**_vendor_err("The stream cannot take the batch."), "headers": _RETRY},
}


def _body(description: str, media: str = "application/json") -> dict[str, Any]:
    return {"requestBody": {"required": True, "description": description, "content": {media: {"schema": {}}}}}


VENDOR_ROUTES: dict[str, dict[str, Any]] = {
    "segment_batch": {
        "response_model": None,
        "responses": _SEGMENT_ANSWERS,
        "openapi_extra": {
            **_body('Segment\'s HTTP Tracking API batch: `{"batch": [message, ...], "sentAt": ...}`, gzip or plain.'),
            "security": _SEGMENT_SECURITY,
        },
    },
    "segment_single": {
        "response_model": None,
        "responses": _SEGMENT_ANSWERS,
        "openapi_extra": {**_body("One Segment message of this route's type."), "security": _SEGMENT_SECURITY},
    },
    "snowplow_post": {
        "response_model": None,
        "responses": _SNOWPLOW_ANSWERS,
        "openapi_extra": _body(
            "Snowplow tracker protocol: `{schema: iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4, "
            "data: [...]}`; every event's `aid` (app id) is the game's ingest key."
        ),
    },
    "snowplow_get": {
        "response_model": None,
        "responses": {
            **_SNOWPLOW_ANSWERS,
            200: {"description": "A 1×1 GIF.", "content": {"image/gif": {"schema": {"type": "string"}}}},
        },
        "openapi_extra": {
            "description": "One Snowplow event in the query string (`e`, `eid`, `aid` = the game's ingest key, …)."
        },
    },
    "gameanalytics_init": {
        "response_model": None,
        "responses": {
            200: {
                "description": "The SDK may send events.",
                "content": {"application/json": {"schema": {"type": "object", "required": ["enabled", "server_ts"]}}},
            },
            401: _GA_ANSWERS[401],
        },
        "openapi_extra": {
            **_body("GameAnalytics init body (platform, os_version, sdk_version)."),
            "security": [{"gameAnalyticsHmac": []}],
        },
    },
    "gameanalytics_events": {
        "response_model": None,
        "responses": _GA_ANSWERS,
        "openapi_extra": {
            **_body(
                "A JSON array of GameAnalytics v2 events (user, session_end, business, progression, resource, "
                "design, error)."
            ),
            "security": [{"gameAnalyticsHmac": []}],
        },
    },
}
"""What FastAPI cannot infer for the vendor routes, which read their raw bodies themselves."""

VENDOR_SECURITY_SCHEMES: dict[str, Any] = {
    "segmentWriteKey": {"type": "http", "scheme": "basic", "description": "user = the game's ingest key, no password"},
    "gameAnalyticsHmac": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "base64(HMAC-SHA256(GameAnalytics secret key, body bytes as sent))",
    },
}
