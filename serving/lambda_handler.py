"""AWS Lambda face of the collector (API Gateway HTTP API, payload format 2.0).

The same ``Collector.prepare`` as the ASGI app; only the durable write differs: a Lambda
invocation handles one request at a time, so it puts its records directly (Kinesis
acknowledges them) instead of group-committing. Settings, stream and stores are built once
per container, at cold start.
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from features.config import load_settings
from features.contract import now_ms
from features.deadletter import open_dead_letter_store
from features.errors import StreamUnavailable
from features.streams import open_stream
from serving.collector import Collector, response_headers, stream_unavailable
from serving.lambda_body import event_body

app = APIGatewayHttpResolver()


@cache
def _runtime() -> tuple[Any, Collector, Any, Any]:
    settings = load_settings(os.environ.get("PLAYERPULSE_ENV", "aws"), os.environ.get("PLAYERPULSE_WORKDIR"))
    return (
        settings,
        Collector.from_settings(settings),
        open_stream(settings.stream),
        open_dead_letter_store(settings.dead_letter),
    )


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type="application/json", body=json.dumps(body), headers=headers)


def handle_events(headers: dict[str, str], body: bytes) -> Response:
    _, collector, stream, dead_letters = _runtime()
    prepared = collector.prepare({k.lower(): v for k, v in headers.items()}, body)
    try:
        if prepared.dead_letters:
            dead_letters.put(prepared.dead_letters)
        stream.put(prepared.records)
    except StreamUnavailable as exc:
        prepared = stream_unavailable(exc)
    else:
        if prepared.records and prepared.received_at is not None:
            emit_collector_hop(now_ms() - prepared.received_at)
    return _json(prepared.status, prepared.body(), response_headers(prepared))


def emit_collector_hop(ms: float) -> None:
    """The collector hop (received to durable on the stream) of one request as a ``HopLatency``
    EMF line, dimension ``hop=collector``: the gateway's ``playerpulse_hop_seconds`` in Lambda."""
    with single_metric(
        name="HopLatency", unit=MetricUnit.Milliseconds, value=max(ms, 0.0), namespace="PlayerPulse"
    ) as m:
        m.add_dimension(name="hop", value="collector")


@app.post("/v1/events")
def ingest() -> Response:
    event = app.current_event
    body = event_body(event.body, event.is_base64_encoded)
    if body is None:
        return _json(400, {"error": "the body is marked base64 but is not valid base64"})
    return handle_events(dict(event.headers or {}), body)


@app.get("/healthz")
def healthz() -> Response:
    settings = _runtime()[0]
    return _json(200, {"status": "ok", "env": settings.env, "stream": settings.stream.backend})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
