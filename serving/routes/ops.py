"""Operations: ``/healthz`` (alive), ``/readyz`` (able to serve), ``/metrics`` for a scraper.

``/metrics`` names games and shows their traffic, so it is never open: on the API port it
takes a scraper's bearer key (``serving.metrics.keys``); with ``serving.metrics.port`` it is
served only on that separate, private port (``serving.metrics_server``) and not here at all.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from serving.state import State

log = logging.getLogger(__name__)
router = APIRouter()


@router.get("/healthz", summary="Liveness and readiness")
def healthz(state: State) -> dict[str, Any]:
    s = state.settings
    return {"status": "ok", "env": s.env, "stream": s.stream.backend, "online_store": s.online_store.backend}


@router.get(
    "/readyz",
    summary="Readiness: the online store answers and every declared model has a loaded champion",
    responses={503: {"description": "not ready: a store or a model cannot serve (details in the log)"}},
)
async def readyz(state: State) -> JSONResponse:
    """Point load balancers and readiness probes here, not at ``/healthz``: a deployment whose
    models would all answer fallback content is up, but it is not ready."""
    problems = await anyio.to_thread.run_sync(state.readiness_problems)
    for problem in problems:
        log.warning("not ready: %s", problem)
    return JSONResponse({"status": "not_ready" if problems else "ready"}, 503 if problems else 200)


@router.get(
    "/metrics",
    summary="Prometheus metrics (needs a metrics key; absent when metrics have their own port)",
    response_class=Response,
    responses={401: {"description": "no metrics key"}, 404: {"description": "metrics are on their own port"}},
)
def prometheus(request: Request, state: State) -> Response:
    access = state.settings.serving.metrics
    if not access.keys:
        return JSONResponse({"error": "not found"}, 404)
    if not state.metrics_keys.allows(request.headers.get("authorization")):
        return JSONResponse({"error": "send 'Authorization: Bearer <metrics key>'"}, 401)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
