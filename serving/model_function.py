"""An AWS Lambda model function: one deployed function per model, this one module for all of them.

    handler: serving.model_function.handler      env: PLAYERPULSE_MODEL=store_offer

Everything expensive happens once per container, at init: settings, the online store client,
the champion (from the package's ``model/`` folder, see ``serving.model_files``, or else from
the MLflow registry), and the check that the champion's features are the ones its declaration
and feature set produce: a mismatch refuses to start, naming the features. The cold start
(imports + model load) is measured and logged. Requests then cost a profile read and one
``Booster.inplace_predict``.

It answers API Gateway HTTP APIs (payload 2.0), REST APIs (1.0) and Lambda function URLs, for
``POST /v1/models/{model}/predict``, ``GET /v1/players/{id}/profile`` and ``GET /healthz``,
with the same request contract and answers as the local gateway (``serving.requests``), the
game's serve key, and every read scoped to that key's game. Logs are Powertools JSON with the
request id as correlation id; metrics are CloudWatch embedded-metric-format lines.
"""

from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_INIT_STARTED = time.perf_counter()

from aws_lambda_powertools import Logger, Metrics  # noqa: E402 - timed as part of the cold start
from aws_lambda_powertools.event_handler import (  # noqa: E402
    APIGatewayHttpResolver,
    APIGatewayRestResolver,
    LambdaFunctionUrlResolver,
    Response,
)
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver  # noqa: E402
from aws_lambda_powertools.event_handler.router import Router  # noqa: E402
from aws_lambda_powertools.metrics import MetricUnit, single_metric  # noqa: E402

from features.config import Settings, load_settings  # noqa: E402
from features.contract import now_ms  # noqa: E402
from features.errors import ConfigError, ModelNotFound, PlayerPulseError  # noqa: E402
from features.latency import hop_latencies  # noqa: E402
from features.model_config import ModelConfig, load_model_config, parse_model_config  # noqa: E402
from features.online import OnlineStore, open_online_store  # noqa: E402
from features.pseudonyms import GamePseudonyms  # noqa: E402
from serving.auth import UNAUTHORIZED, GameKeys  # noqa: E402
from serving.lambda_body import event_body  # noqa: E402
from serving.model_files import check_features, load_champion  # noqa: E402
from serving.models import ChampionCache, ChampionModel  # noqa: E402
from serving.predict import Predictor  # noqa: E402
from serving.prediction_log import PredictionLog, log_folder  # noqa: E402
from serving.privacy import predict_for, read_profile  # noqa: E402
from serving.requests import (  # noqa: E402
    BAD_PLAYER_ID,
    NO_MODEL,
    NO_PROFILE,
    ClientMistake,
    parse_predict_body,
    player_id_ok,
    profile_body,
)

IMPORT_MS = (time.perf_counter() - _INIT_STARTED) * 1000
"""How long this module's imports took (the first part of a cold start)."""

MODEL_ENV = "PLAYERPULSE_MODEL"
MODEL_DIR_ENV = "PLAYERPULSE_MODEL_DIR"
NAMESPACE = "PlayerPulse"

logger = Logger(service="playerpulse-model")
metrics = Metrics(namespace=NAMESPACE, service="playerpulse-model")


class PackagedChampion:
    """The ``ChampionCache`` role for a champion that shipped in the package: it never changes."""

    def __init__(self, champion: ChampionModel):
        self.champion = champion

    def get(self, name: str, alias: str = "champion") -> ChampionModel:
        if name != self.champion.name or alias != "champion":
            raise ModelNotFound(f"this function serves '{self.champion.name}', not '{name}'")
        return self.champion


@dataclass
class ModelRuntime:
    settings: Settings
    model: str
    config: ModelConfig
    store: OnlineStore
    champion: ChampionModel
    predictor: Predictor
    keys: GameKeys
    cold_start_ms: float
    pseudonyms: GamePseudonyms = field(default_factory=lambda: GamePseudonyms({}))
    """How each game's player ids are stored: the id a request names is hashed the same way."""
    cold_start_cpu_ms: float = 0.0
    """CPU time the process had used when ready (interpreter start, imports, model load): the
    cold start's own work, which a busy machine's wait for a core does not inflate."""
    prediction_log: PredictionLog | None = None
    """The sampled prediction log, written after an invocation once a file is due."""


def _default_model_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "model"


def build_runtime(environ: os._Environ[str] | dict[str, str] = os.environ) -> ModelRuntime:
    """Everything a request needs, built once; ``ConfigError`` when the function cannot serve."""
    started = time.perf_counter()
    model = environ.get(MODEL_ENV)
    if not model:
        raise ConfigError(f"set {MODEL_ENV} to the model this function serves (a conf/models/NAME.yaml)")
    settings = load_settings(environ.get("PLAYERPULSE_ENV", "aws"), environ.get("PLAYERPULSE_WORKDIR") or "/tmp/pp")
    model_dir = Path(environ.get(MODEL_DIR_ENV) or _default_model_dir())
    packaged_yaml = model_dir / f"{model}.yaml"
    cfg = parse_model_config(packaged_yaml) if packaged_yaml.is_file() else load_model_config(settings, model)
    if (model_dir / "model.ubj").is_file():
        champion = load_champion(model_dir)
        if champion.name != model:
            raise ConfigError(f"the package's model is '{champion.name}' but {MODEL_ENV} is '{model}'")
        champions: Any = PackagedChampion(champion)
    else:  # no packaged model (a local run): the registry's champion
        champions = ChampionCache(settings)
        champion = champions.get(model)
    check_features(champion, cfg)
    store = open_online_store(settings.online_store, settings.serving.store_timeout_ms)
    prediction_log = PredictionLog(
        settings.serving.prediction_log,
        log_folder(settings.reports_location),
        endpoint_url=settings.lake.endpoint_url,
        region=settings.lake.region,
        background=False,  # the container freezes between invocations: the handler flushes
    )
    # the packaged declaration, not a second read from conf/
    predictor = Predictor(settings, store, champions=champions, configs={model: cfg}, prediction_log=prediction_log)
    pseudonyms = GamePseudonyms.of(settings.games)  # secrets resolved once, at cold start
    # what init built lives as long as the container: out of every later full collection's walk
    gc.freeze()
    cold_ms = IMPORT_MS + (time.perf_counter() - started) * 1000
    keys = GameKeys(settings.games)
    cpu_ms = time.process_time() * 1000
    return ModelRuntime(
        settings, model, cfg, store, champion, predictor, keys, cold_ms, pseudonyms, cpu_ms, prediction_log
    )


router = Router()
_runtime: ModelRuntime | None = None


def runtime() -> ModelRuntime:
    if _runtime is None:
        raise ConfigError(f"the model function was not initialised: set {MODEL_ENV}")
    return _runtime


def _json(status: int, body: dict[str, Any]) -> Response:
    import json

    return Response(status_code=status, content_type="application/json", body=json.dumps(body))


def _error(status: int, message: str) -> Response:
    return _json(status, {"error": message})


def _serve_game() -> str | None:
    event = router.current_event
    return runtime().keys.game_for(event.get_header_value("authorization", case_sensitive=False), "serve")


@router.get("/v1/players/<player_id>/profile")
def profile(player_id: str) -> Response:
    rt = runtime()
    game = _serve_game()
    if game is None:
        return _error(401, UNAUTHORIZED)
    if not player_id_ok(player_id):
        return _error(400, BAD_PLAYER_ID)
    p = read_profile(rt.store, rt.pseudonyms, game, player_id)
    if p is None:
        return _error(404, NO_PROFILE)
    return _json(200, {**profile_body(p, now_ms()), "player_id": player_id})  # the game's id, not its pseudonym


@router.post("/v1/models/<model>/predict")
def predict(model: str) -> Response:
    rt = runtime()
    game = _serve_game()
    if game is None:
        return _error(401, UNAUTHORIZED)
    data = event_body(router.current_event.body, router.current_event.is_base64_encoded)
    if data is None:
        return _error(400, "the body is marked base64 but is not valid base64")
    if len(data) > rt.settings.serving.max_request_bytes:
        return _error(413, f"body is larger than {rt.settings.serving.max_request_bytes} bytes")
    try:
        body = parse_predict_body(data, rt.settings.serving.max_context_keys)
    except ClientMistake as exc:
        return _error(exc.status, exc.message)
    if model != rt.model:
        return _error(404, NO_MODEL)
    try:
        out = predict_for(rt.predictor, rt.pseudonyms, model, game, body.player_id, body.context)
    except ClientMistake as exc:  # a context value of the wrong type for a field the model declares
        return _error(exc.status, exc.message)
    metrics.add_metric(name="Predictions", unit=MetricUnit.Count, value=1)
    emit_hops(model, out.get("timestamps") or {})
    if out["fallback"]:
        with single_metric(name="Fallbacks", unit=MetricUnit.Count, value=1, namespace=NAMESPACE) as m:
            m.add_dimension(name="model", value=model)
            m.add_dimension(name="reason", value=str(out.get("reason")))
    return _json(200, out)


def emit_hops(model: str, timestamps: dict[str, int]) -> None:
    """One ``HopLatency`` EMF metric (ms, dimensions model and hop) per hop of the profile the
    prediction read, up to its ``served_at``: the Lambda counterpart of the gateway's
    ``playerpulse_hop_seconds`` histogram, which CloudWatch turns into percentiles."""
    for hop, ms in hop_latencies(timestamps).items():
        if hop == "collector":  # the collector's own function measures it for every request
            continue
        with single_metric(
            name="HopLatency", unit=MetricUnit.Milliseconds, value=max(ms, 0.0), namespace=NAMESPACE
        ) as m:
            m.add_dimension(name="model", value=model)
            m.add_dimension(name="hop", value=hop)


@router.get("/healthz")
def healthz() -> Response:
    """Ready only when the champion is loaded and the online store answers."""
    rt = runtime()
    try:
        rt.store.get("__healthz__", "__healthz__")
    except PlayerPulseError as exc:
        logger.warning("online store unreachable", error=str(exc))
        return _json(503, {"status": "unavailable", "online_store": "unreachable"})
    return _json(200, {"status": "ok", "model": rt.model, "version": rt.champion.version})


def _resolvers() -> dict[str, ApiGatewayResolver]:
    out: dict[str, ApiGatewayResolver] = {
        "http": APIGatewayHttpResolver(),
        "rest": APIGatewayRestResolver(),
        "url": LambdaFunctionUrlResolver(),
    }
    for resolver in out.values():
        resolver.include_router(router)
    return out


_RESOLVERS = _resolvers()


def event_kind(event: dict[str, Any]) -> str:
    """``rest`` (payload 1.0), ``url`` (function URL) or ``http`` (HTTP API, payload 2.0)."""
    if event.get("version") != "2.0":
        return "rest"
    domain = str((event.get("requestContext") or {}).get("domainName") or "")
    return "url" if ".lambda-url." in domain else "http"


@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.set_correlation_id((event.get("requestContext") or {}).get("requestId"))
    try:
        return _RESOLVERS[event_kind(event)].resolve(event, context)
    finally:
        if _runtime is not None and _runtime.prediction_log is not None:
            _runtime.prediction_log.flush_if_due()  # never raises: a failed write is counted as dropped


def init(environ: os._Environ[str] | dict[str, str] = os.environ) -> ModelRuntime:
    """Build the runtime (at import in Lambda; tests call it with their own environment)."""
    global _runtime
    metrics.set_default_dimensions(model=environ.get(MODEL_ENV, "unknown"))
    _runtime = build_runtime(environ)
    logger.info(
        "model function ready",
        model=_runtime.model,
        version=_runtime.champion.version,
        cold_start_ms=round(_runtime.cold_start_ms, 1),
        cold_start_cpu_ms=round(_runtime.cold_start_cpu_ms, 1),
    )
    return _runtime


if os.environ.get(MODEL_ENV):
    init()
