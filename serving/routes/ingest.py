"""``POST /v1/events``: the collector's HTTP face.

The route reads the body within its byte and time limits, hands it to the collector core
(off the event loop when it is large, so a few heavy requests never stall ``/healthz`` or other
clients), writes dead letters and records, and answers. Everything else lives in
``serving.collector``, shared with the Lambda handler.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from serving.collector import Prepared, response_headers
from serving.http_body import BodyRejected, read_body
from serving.openapi import EVENTS_REQUEST, EVENTS_RESPONSES
from serving.state import ServingState, serving_state

router = APIRouter()


@router.post(
    "/v1/events",
    status_code=202,
    summary="Ingest a batch of player events",
    openapi_extra={"requestBody": EVENTS_REQUEST},
    responses=EVENTS_RESPONSES,
    response_model=None,
)
async def ingest(request: Request) -> Response:
    # The hot path: the state straight from the app, not through FastAPI's dependency
    # resolution, which costs tens of microseconds per request here.
    state = serving_state(request)
    started = time.perf_counter()
    cfg = state.settings.collector
    try:
        body = await read_body(request, cfg.max_body_bytes, state.settings.serving.body_read_timeout_s)
    except BodyRejected as exc:
        return _answer(state, Prepared(exc.status, message=exc.reason), started)
    state.metrics.bytes_in.inc(len(body))
    headers = {k.lower(): v for k, v in request.headers.items()}
    prepared = await state.commit(await state.prepare_events(headers, body))
    return _answer(state, prepared, started)


def _answer(state: ServingState, prepared: Prepared, started: float) -> JSONResponse:
    state.metrics.requests.labels("/v1/events", str(prepared.status)).inc()
    state.metrics.latency.labels("/v1/events").observe(time.perf_counter() - started)
    return JSONResponse(prepared.body(), prepared.status, headers=response_headers(prepared))
