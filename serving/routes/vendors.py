"""Segment, Snowplow and GameAnalytics clients' routes: a drop-in collector for SDKs games ship.

Each route reads the body within the collector's limits, runs its vendor adapter
(``serving.vendors``, off the event loop when the body is large), makes dead letters and records
durable exactly as ``POST /v1/events`` does, and answers the way that vendor's clients expect:
their success bodies, and status codes their retry logic reads (503 + ``Retry-After`` when the
stream cannot take the batch, so every client retries; 4xx where they give up).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from serving.collector import Prepared, response_headers
from serving.http_body import BodyRejected, read_body
from serving.openapi import VENDOR_ROUTES
from serving.state import ServingState, serving_state
from serving.vendors.ingest import VendorIngest
from serving.vendors.snowplow import PIXEL


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Build the adapters when the app starts: a bad mapping file or a missing GameAnalytics
    secret stops start-up with a ``ConfigError`` naming it, not the first request."""
    state: ServingState = app.state.serving
    app.state.vendors = VendorIngest(state.settings, state.collector)
    yield


router = APIRouter(tags=["vendor SDKs"], lifespan=_lifespan)


def _vendors(request: Request) -> VendorIngest:
    return request.app.state.vendors


async def _run(state: ServingState, fn: Callable[..., Prepared], *args: Any, size: int) -> Prepared:
    """The adapter, then the durable writes; a large body is adapted in a thread."""
    if size > state.settings.collector.inline_decode_bytes // 8:  # gzip: ~8x smaller than what it unpacks to
        prepared = await asyncio.to_thread(fn, *args)
    else:
        prepared = fn(*args)
    return await state.commit(prepared)


async def _body(request: Request, state: ServingState) -> bytes | Prepared:
    cfg = state.settings.collector
    try:
        body = await read_body(request, cfg.max_body_bytes, state.settings.serving.body_read_timeout_s)
    except BodyRejected as exc:
        return Prepared(exc.status, message=exc.reason)
    state.metrics.bytes_in.inc(len(body))
    return body


def _observe(state: ServingState, route: str, status: int, started: float) -> None:
    state.metrics.requests.labels(route, str(status)).inc()
    state.metrics.latency.labels(route).observe(time.perf_counter() - started)


def _headers(request: Request) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}


# --- Segment ----------------------------------------------------------------------------------


def _segment_answer(state: ServingState, prepared: Prepared, route: str, started: float) -> JSONResponse:
    status = 200 if prepared.status == 202 else prepared.status
    _observe(state, route, status, started)
    if status == 200:
        return JSONResponse({"success": True})
    code = {400: "invalid_request", 401: "unauthorized", 413: "payload_too_large", 503: "unavailable"}
    body = {"success": False, "code": code.get(status, "invalid_request"), "message": prepared.message}
    return JSONResponse(body, status, headers=response_headers(prepared))


async def _segment(request: Request, state: ServingState, single_type: str | None) -> Response:
    started = time.perf_counter()
    route = f"/v1/{single_type or 'batch'}"
    body = await _body(request, state)
    if isinstance(body, Prepared):
        return _segment_answer(state, body, route, started)
    prepared = await _run(state, _vendors(request).segment, _headers(request), body, single_type, size=len(body))
    return _segment_answer(state, prepared, route, started)


@router.post("/v1/batch", summary="Segment: a batch of messages", **VENDOR_ROUTES["segment_batch"])
async def segment_batch(request: Request) -> Response:
    state = serving_state(request)  # not through FastAPI's dependency resolution: the hot path
    return await _segment(request, state, None)


@router.post("/v1/track", summary="Segment: one track message", **VENDOR_ROUTES["segment_single"])
async def segment_track(request: Request) -> Response:
    state = serving_state(request)  # not through FastAPI's dependency resolution: the hot path
    return await _segment(request, state, "track")


@router.post("/v1/identify", summary="Segment: one identify message", **VENDOR_ROUTES["segment_single"])
async def segment_identify(request: Request) -> Response:
    state = serving_state(request)  # not through FastAPI's dependency resolution: the hot path
    return await _segment(request, state, "identify")


@router.post("/v1/page", summary="Segment: one page message", **VENDOR_ROUTES["segment_single"])
async def segment_page(request: Request) -> Response:
    state = serving_state(request)  # not through FastAPI's dependency resolution: the hot path
    return await _segment(request, state, "page")


@router.post("/v1/screen", summary="Segment: one screen message", **VENDOR_ROUTES["segment_single"])
async def segment_screen(request: Request) -> Response:
    state = serving_state(request)  # not through FastAPI's dependency resolution: the hot path
    return await _segment(request, state, "screen")


# --- Snowplow ---------------------------------------------------------------------------------


def _snowplow_answer(state: ServingState, prepared: Prepared, route: str, started: float, pixel: bool) -> Response:
    status = 200 if prepared.status == 202 else prepared.status
    _observe(state, route, status, started)
    if status == 200:
        if pixel:
            return Response(PIXEL, 200, media_type="image/gif", headers={"Cache-Control": "no-cache, no-store"})
        return Response("ok", 200, media_type="text/plain")
    return Response(prepared.message or "", status, media_type="text/plain", headers=response_headers(prepared))


@router.post(
    "/{game}/com.snowplowanalytics.snowplow/tp2",
    summary="Snowplow: tracker protocol POST (payload_data)",
    **VENDOR_ROUTES["snowplow_post"],
)
async def snowplow_post(game: str, request: Request) -> Response:
    state = serving_state(request)  # not through FastAPI's dependency resolution: the hot path
    started = time.perf_counter()
    route = "/{game}/com.snowplowanalytics.snowplow/tp2"
    body = await _body(request, state)
    if isinstance(body, Prepared):
        return _snowplow_answer(state, body, route, started, pixel=False)
    prepared = await _run(state, _vendors(request).snowplow_post, game, _headers(request), body, size=len(body))
    return _snowplow_answer(state, prepared, route, started, pixel=False)


@router.get("/{game}/i", summary="Snowplow: tracker protocol GET (pixel)", **VENDOR_ROUTES["snowplow_get"])
async def snowplow_get(game: str, request: Request) -> Response:
    state = serving_state(request)  # not through FastAPI's dependency resolution: the hot path
    started = time.perf_counter()
    query = dict(request.query_params)
    prepared = await _run(state, _vendors(request).snowplow_get, game, query, size=0)
    return _snowplow_answer(state, prepared, "/{game}/i", started, pixel=True)


# --- GameAnalytics ----------------------------------------------------------------------------


@router.post("/v2/{game_key}/init", summary="GameAnalytics: init", **VENDOR_ROUTES["gameanalytics_init"])
async def gameanalytics_init(game_key: str, request: Request) -> Response:
    state = serving_state(request)  # not through FastAPI's dependency resolution: the hot path
    started = time.perf_counter()
    body = await _body(request, state)
    if isinstance(body, Prepared):
        _observe(state, "/v2/{game_key}/init", body.status, started)
        return JSONResponse({"error": body.message}, body.status)
    if _vendors(request).gameanalytics_game(game_key, _headers(request), body) is None:
        _observe(state, "/v2/{game_key}/init", 401, started)
        return JSONResponse({"error": "game key unknown or body signature (Authorization) does not verify"}, 401)
    _observe(state, "/v2/{game_key}/init", 200, started)
    return JSONResponse({"enabled": True, "server_ts": int(time.time()), "flags": []})


@router.post("/v2/{game_key}/events", summary="GameAnalytics: events", **VENDOR_ROUTES["gameanalytics_events"])
async def gameanalytics_events(game_key: str, request: Request) -> Response:
    state = serving_state(request)  # not through FastAPI's dependency resolution: the hot path
    started = time.perf_counter()
    route = "/v2/{game_key}/events"
    body = await _body(request, state)
    if isinstance(body, Prepared):
        prepared = body
    else:
        fn = _vendors(request).gameanalytics_events
        prepared = await _run(state, fn, game_key, _headers(request), body, size=len(body))
    if prepared.status == 202 and prepared.errors:
        # GameAnalytics answers 400 naming the events that failed validation; the others are kept.
        _observe(state, route, 400, started)
        return JSONResponse({"accepted": prepared.accepted, "errors": prepared.errors}, 400)
    status = 200 if prepared.status == 202 else prepared.status
    _observe(state, route, status, started)
    if status == 200:
        return JSONResponse({})
    return JSONResponse({"error": prepared.message}, status, headers=response_headers(prepared))
