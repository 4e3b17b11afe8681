"""The HTTP face of PlayerPulse: collector, profile API, model predictions, health, metrics.

``create_app(settings)`` builds one ASGI app over the configured stream, dead-letter store and
online store; ``playerpulse serve`` runs it with uvicorn. Handlers stay thin: the collector core
(``serving.collector``) and the predictor (``serving.predict``) do the work.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from features.config import Settings
from features.deadletter import open_dead_letter_store
from features.errors import ModelNotFound, StreamUnavailable
from features.online import open_online_store
from features.streams import open_stream
from serving.collector import (
    UNAUTHORIZED,
    Collector,
    Prepared,
    body_too_large,
    reason_kind,
    response_headers,
    stream_unavailable,
)
from serving.metrics import ServingMetrics
from serving.openapi import EVENTS_REQUEST, EVENTS_RESPONSES, event_schemas
from serving.writer import GroupCommitWriter


class PredictRequest(BaseModel):
    player_id: str = Field(min_length=1, max_length=64)
    context: dict[str, Any] = Field(default_factory=dict)


class PredictResponse(BaseModel):
    model: str
    version: int | None
    player_id: str
    prediction: dict[str, Any]
    fallback: bool
    reason: str | None = None
    timestamps: dict[str, int] = Field(default_factory=dict)


def create_app(settings: Settings) -> FastAPI:
    metrics = ServingMetrics()
    collector = Collector(settings.collector)
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state["stream"] = open_stream(settings.stream)
        state["dead_letters"] = open_dead_letter_store(settings.dead_letter)
        state["online"] = open_online_store(settings.online_store)
        state["writer"] = GroupCommitWriter(
            state["stream"],
            settings.collector.group_commit_max_wait_ms,
            on_commit=lambda recs: metrics.commit_records.observe(len(recs)),
        )
        try:
            yield
        finally:
            await state["writer"].stop()
            for key in ("stream", "dead_letters", "online"):
                state[key].close()

    app = FastAPI(
        title="PlayerPulse",
        version="1",
        description="Collects player events and serves online profiles and model predictions.",
        lifespan=lifespan,
    )

    def predictor():
        if "predictor" not in state:
            from serving.predict import Predictor

            state["predictor"] = Predictor(settings, state["online"])
        return state["predictor"]

    def game_of(request: Request) -> str | None:
        return collector.keys.game_for(request.headers.get("authorization"))

    def unauthorized() -> JSONResponse:
        return JSONResponse({"error": UNAUTHORIZED}, 401)

    @app.post(
        "/v1/events",
        status_code=202,
        summary="Ingest a batch of player events",
        openapi_extra={"requestBody": EVENTS_REQUEST},
        responses=EVENTS_RESPONSES,
        response_model=None,
    )
    async def ingest(request: Request) -> Response:
        started = time.perf_counter()
        declared = request.headers.get("content-length")
        limit = settings.collector.max_body_bytes
        if declared and declared.isdigit() and int(declared) > limit:
            return _answer(metrics, body_too_large(limit), started)
        body = bytearray()
        async for chunk in request.stream():  # stop reading as soon as the limit is passed
            body += chunk
            if len(body) > limit:
                return _answer(metrics, body_too_large(limit), started)
        metrics.bytes_in.inc(len(body))
        prepared = collector.prepare({k.lower(): v for k, v in request.headers.items()}, bytes(body))
        try:
            if prepared.dead_letters:
                await asyncio.to_thread(state["dead_letters"].put, prepared.dead_letters)
            await state["writer"].write(prepared.records)
        except StreamUnavailable as exc:
            return _answer(metrics, stream_unavailable(exc), started)
        if prepared.status == 202:
            metrics.accepted.labels(prepared.game or "").inc(prepared.accepted)
            metrics.batch_events.observe(prepared.events_in)
            metrics.bytes_decoded.inc(prepared.decoded_bytes)
            metrics.bytes_out.inc(prepared.bytes_out)
            for err in prepared.errors:
                metrics.rejected.labels(reason_kind(err["reason"])).inc()
        return _answer(metrics, prepared, started)

    @app.get(
        "/v1/players/{player_id}/profile",
        summary="A player's online profile with its freshness timestamps",
        responses={401: {"description": "bad key"}, 404: {"description": "no profile for this player"}},
    )
    def profile(player_id: str, request: Request) -> Response:
        if game_of(request) is None:
            return unauthorized()
        p = state["online"].get(player_id)
        if p is None:
            return JSONResponse({"error": f"no profile for player '{player_id}'"}, 404)
        return JSONResponse(
            {
                "player_id": p.player_id,
                "feature_set": p.feature_set,
                "as_of": p.as_of,
                "version": p.version,
                "features": p.features,
                "timestamps": p.timestamps,
            }
        )

    @app.post(
        "/v1/models/{model}/predict",
        summary="Personalised content for a player from the model's champion",
        response_model=PredictResponse,
        responses={
            400: {"description": "the body is not JSON"},
            401: {"description": "bad key"},
            404: {"description": "no such model"},
        },
    )
    def predict(model: str, body: PredictRequest, request: Request) -> Response:
        if game_of(request) is None:
            return unauthorized()
        try:
            out = predictor().predict(model, body.player_id, body.context)
        except ModelNotFound as exc:
            return JSONResponse({"error": str(exc)}, 404)
        metrics.predictions.labels(model, str(out["fallback"]).lower()).inc()
        return JSONResponse(out)

    @app.get("/healthz", summary="Liveness and readiness")
    def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "env": settings.env,
            "stream": settings.stream.backend,
            "online_store": settings.online_store.backend,
        }

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=[r for r in app.routes if isinstance(r, APIRoute)],
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(event_schemas())
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.state.metrics = metrics
    return app


def _answer(metrics: ServingMetrics, prepared: Prepared, started: float) -> JSONResponse:
    metrics.requests.labels("/v1/events", str(prepared.status)).inc()
    metrics.latency.labels("/v1/events").observe(time.perf_counter() - started)
    headers = response_headers(prepared)
    return JSONResponse(prepared.body(), prepared.status, headers=headers)
