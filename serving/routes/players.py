"""Reading a game's players: ``GET /v1/players/{id}/profile`` and ``POST /v1/models/{m}/predict``.

Both routes take the game's *serve* key (the ingest key ships inside game clients, so anyone
can extract it) and authenticate before they read or parse anything the caller sent. Every
lookup is by (game of the key, player id): another game's player is a 404, the same answer
as an unknown player. Client errors are short and generic; what went wrong in detail goes to
the log, with player ids as digests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from features.contract import now_ms
from features.errors import ModelNotFound
from features.model_config import MODEL_NAME
from serving.auth import UNAUTHORIZED
from serving.http_body import BodyRejected, read_body
from serving.privacy import predict_for, read_profile
from serving.requests import (
    BAD_PLAYER_ID,
    NO_MODEL,
    NO_PROFILE,
    PREDICT_REQUEST_SCHEMA,
    PREDICT_RESPONSE_SCHEMA,
    ClientMistake,
    parse_predict_body,
    player_id_ok,
    profile_body,
)
from serving.state import ServingState, State, serving_state

log = logging.getLogger(__name__)
router = APIRouter()
_encode = msgspec.json.Encoder().encode

PREDICT_REQUEST: dict[str, Any] = {
    "required": True,
    "content": {"application/json": {"schema": PREDICT_REQUEST_SCHEMA}},
}
PREDICT_RESPONSE = PREDICT_RESPONSE_SCHEMA


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status)


def _err_doc(description: str) -> dict[str, Any]:
    error = {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": error}}}


def _serve_game(request: Request, state: ServingState) -> str | None:
    return state.keys.game_for(request.headers.get("authorization"), "serve")


@router.get(
    "/v1/players/{player_id}/profile",
    summary="A player's online profile with its freshness timestamps",
    response_model=None,
    responses={
        400: _err_doc("player_id breaks the contract's pattern"),
        401: _err_doc("no serve key, or not a known game's serve key"),
        404: _err_doc("no profile for this player in the key's game"),
    },
)
async def profile(player_id: str, request: Request, state: State) -> Response:
    game = _serve_game(request, state)
    if game is None:
        return _error(401, UNAUTHORIZED)
    if not player_id_ok(player_id):
        return _error(400, BAD_PLAYER_ID)
    assert state.online is not None
    p = await anyio.to_thread.run_sync(read_profile, state.online, state.collector.pseudonyms, game, player_id)
    if p is None:
        return _error(404, NO_PROFILE)
    return JSONResponse({**profile_body(p, now_ms()), "player_id": player_id})  # the game's id, not its pseudonym


class _PredictRoute(APIRoute):
    """The predict route as FastAPI declares it (its OpenAPI operation and path parameter),
    answered without FastAPI's per-request machinery (endpoint context, dependency solving,
    response handling: ~0.1 ms): its parameters are the path's model name, which routing
    has already matched as a string, and the request; it reads its own body and returns a
    ``Response``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            response: Response = await endpoint(request.path_params["model"], request)
            return response

        return handler


async def predict(model: str, request: Request) -> Response:
    # The hot path: the state straight from the app, not through FastAPI's dependency
    # resolution (tens of microseconds a request), and one hop to a worker thread, not two
    # (the state's prediction pool).
    state = serving_state(request)
    game = _serve_game(request, state)
    if game is None:
        return _error(401, UNAUTHORIZED)
    cfg = state.settings.serving
    try:
        raw = await read_body(request, cfg.max_request_bytes, cfg.body_read_timeout_s)
    except BodyRejected as exc:
        return _error(exc.status, exc.reason)
    try:
        body = parse_predict_body(raw, cfg.max_context_keys)
    except ClientMistake as exc:
        return _error(exc.status, exc.message)
    if not MODEL_NAME.fullmatch(model):
        return _error(404, NO_MODEL)
    try:
        out = await state.run_predict(_predict, state, model, game, body.player_id, body.context)
    except ModelNotFound as exc:
        log.info("predict for an undeclared model %s: %s", model, exc)
        return _error(404, NO_MODEL)
    except ClientMistake as exc:  # a context value of the wrong type for a field the model declares
        return _error(exc.status, exc.message)
    except Exception:  # the predictor answers fallbacks itself; this is the server failing to
        log.exception("the predictor for model %s could not run", model)
        return _error(503, "predictions are unavailable right now; retry later")
    if not out["fallback"]:
        state.settle()
    state.metrics.count_prediction(model, out["fallback"])
    state.metrics.observe_served_hops(out.get("timestamps") or {})
    return Response(_encode(out), media_type="application/json")


router.add_api_route(
    "/v1/models/{model}/predict",
    predict,
    methods=["POST"],
    summary="Personalised content for a player from the model's champion",
    response_model=None,
    openapi_extra={"requestBody": PREDICT_REQUEST},
    responses={
        200: {
            "description": "Content for the player",
            "content": {"application/json": {"schema": PREDICT_RESPONSE_SCHEMA}},
        },
        400: _err_doc(
            "the body is not a valid predict request, or a context field the model declares has a value of another type"
        ),
        401: _err_doc("no serve key, or not a known game's serve key"),
        404: _err_doc("no such model"),
        408: _err_doc("the body did not arrive in time"),
        413: _err_doc("the body is larger than serving.max_request_bytes"),
    },
    route_class_override=_PredictRoute,
)


def _predict(state: ServingState, model: str, game: str, player_id: str, context: dict[str, Any]) -> dict[str, Any]:
    """In a worker thread: the predictor (built on first use) and its answer for the game's id."""
    return predict_for(state.predictor(), state.collector.pseudonyms, model, game, player_id, context)
