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
    503: _err(
        "The stream cannot take the batch now; nothing was acknowledged. Retry after the given delay.",
        {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    ),
}
