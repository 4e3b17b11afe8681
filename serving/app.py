"""The HTTP face of PlayerPulse: collector, profile API, model predictions, health, metrics.

``create_app(settings)`` composes one router per concern (``serving.routes``) over a typed
``ServingState`` opened in the lifespan; ``playerpulse serve`` runs it with uvicorn. Handlers
stay thin: the collector core (``serving.collector``) and the predictor (``serving.predict``)
do the work.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from features.config import Settings
from serving.openapi import ERROR, VENDOR_SECURITY_SCHEMES, event_schemas
from serving.routes import ingest, ops, players, vendors
from serving.state import ServingState

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    state = ServingState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.open()
        metrics_server = None
        access = settings.serving.metrics
        if access.port is not None:
            from serving.metrics_server import start_metrics_server

            metrics_server = start_metrics_server(state.metrics.registry, access.host, access.port)
        try:
            yield
        finally:
            if metrics_server is not None:
                metrics_server.shutdown()
            await state.close()

    app = FastAPI(
        title="PlayerPulse",
        version="1",
        description="Collects player events and serves online profiles and model predictions.",
        lifespan=lifespan,
    )
    app.state.serving = state
    # Ingest routes first: Starlette tries routes in order, and each miss costs the busiest
    # endpoints (event batches in every format) a few microseconds; reads have room to spare.
    for router in (ingest.router, vendors.router, players.router, ops.router):
        app.include_router(router)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """A generic 400: FastAPI's default 422 echoes the caller's input back."""
        return JSONResponse({"error": "invalid request"}, 400)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(event_schemas())
            components["Error"] = ERROR
            schema["components"]["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"},
                **VENDOR_SECURITY_SCHEMES,
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
