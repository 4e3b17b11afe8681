"""schemathesis against the served OpenAPI document: every route answers as documented, never 5xx."""

from __future__ import annotations

import json

import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hsettings

from features.config import load_settings
from serving.app import create_app

_settings = load_settings("local", __import__("tempfile").mkdtemp(prefix="pp-schemathesis-"))
_app = create_app(_settings)


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx, value) -> bytes:
    """NDJSON bodies: each generated item is one JSON value on its own line."""
    items = value if isinstance(value, list) else [value]
    return "\n".join(json.dumps(item) for item in items).encode()


# /readyz answers 503 by design until every declared model has a champion (none here), which
# schemathesis counts as a server error; tests/test_readiness.py specifies both answers.
schema = schemathesis.openapi.from_asgi("/openapi.json", _app).exclude(path="/readyz")
AUTH = {"Authorization": "Bearer pp-demo-key-local-only"}


@schema.parametrize()
@hsettings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case):
    case.call_and_validate(headers=AUTH)
