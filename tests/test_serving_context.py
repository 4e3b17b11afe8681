"""Serving request-time context: the fields a model YAML declares become the model's last inputs.

The champion is a real xgboost booster trained here so that the request's context decides its
score (players on ``android``, or asked with a ``boost`` of at least 8, buy); profiles live in a
real SQLite online store; the HTTP face is the gateway app.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient
from test_model_config import declaration
from test_model_function import call, event, function_env  # noqa: F401 - a fixture
from test_serving_fallbacks import Versions

from features.config import DEVELOPMENT_KEYS, Settings
from features.errors import ConfigError
from features.model_config import ModelConfig, parse_model_config
from features.model_context import ContextEncoding
from features.monitoring_config import PredictionLogConfig
from features.online import Profile, open_online_store
from serving import model_function
from serving.app import create_app
from serving.context import ContextDecoder
from serving.model_files import check_features, load_champion, save_champion
from serving.models import CHAMPION, ChampionModel
from serving.predict import Predictor
from serving.prediction_log import PredictionLog, read_log
from serving.requests import ClientMistake
from tests_support import PLATFORM_CONTEXT

FEATURES = ["store_view_count_1d", "purchase_count_30d"]
PLATFORM = PLATFORM_CONTEXT
BOOST = {"name": "boost", "type": "float", "default": 0.0, "low": 0, "high": 10, "training": "default"}
VIP = {"name": "vip", "type": "bool", "default": False, "training": "default"}
LEVEL = {"name": "level", "type": "int", "default": 1, "training": "default"}
SERVE = {"Authorization": f"Bearer {DEVELOPMENT_KEYS['serve']}"}


def config(*context: dict[str, Any]) -> ModelConfig:
    return ModelConfig.model_validate(declaration(features=FEATURES, context=list(context)))


OFFER = config(PLATFORM, BOOST, VIP, LEVEL)


def context_decides(cfg: ModelConfig = OFFER, version: int = 1) -> ChampionModel:
    """A real booster over the features and ``cfg``'s context whose score only the context moves:
    android players, and requests with a boost of 8 or more, buy."""
    import xgboost as xgb

    rng = np.random.default_rng(5)
    n = 2000
    features = rng.integers(0, 5, (n, len(cfg.feature_names)))
    platform, boost = rng.integers(0, 3, n), rng.uniform(0, 10, n)
    others = rng.integers(0, 2, (n, len(cfg.context) - 2))
    x = np.column_stack([features, platform, boost, others]).astype(np.float32)
    y = ((platform == 1) | (boost >= 8)).astype(np.float32)
    data = xgb.DMatrix(x, y, feature_names=cfg.input_names)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 1}, data, 30)
    return ChampionModel(cfg.name, version, booster, tuple(cfg.input_names), cfg.feature_set, cfg.context_encodings)


@pytest.fixture(scope="module")
def champion() -> ChampionModel:
    return context_decides()


@pytest.fixture
def store(settings: Settings):
    s = open_online_store(settings.online_store)
    s.put([Profile(game_id="demo", player_id="p1", version=1, as_of=1, features={}, state={})])
    yield s
    s.close()


@pytest.fixture
def predictor(settings: Settings, store, champion: ChampionModel) -> Predictor:
    return Predictor(settings, store, Versions(**{CHAMPION: champion}), configs={"offer": OFFER})


def score(predictor: Predictor, context: dict[str, Any] | None) -> float:
    out = predictor.predict("offer", "demo", "p1", context)
    assert out["fallback"] is False, out
    return out["prediction"]["score"]


# --- the model's inputs -----------------------------------------------------------------------


def test_the_declared_fields_follow_the_features_as_the_models_inputs(champion: ChampionModel) -> None:
    inputs, used = ContextDecoder.of(OFFER.context_encodings).decode(
        {"platform": "pc", "boost": 2.5, "vip": True, "level": 7}
    )
    assert champion.feature_names == (*FEATURES, "platform", "boost", "vip", "level")
    assert champion.values({"store_view_count_1d": 3, "purchase_count_30d": None}, inputs)[2:] == [2.0, 2.5, 1.0, 7.0]
    assert used == {"platform": "pc", "boost": 2.5, "vip": True, "level": 7}


def test_a_declared_field_decides_the_score(predictor: Predictor) -> None:
    assert score(predictor, {"platform": "android"}) > 0.9
    assert score(predictor, {"platform": "pc"}) < 0.1
    assert score(predictor, {"platform": "pc", "boost": 9}) > 0.9


def test_an_omitted_or_null_field_takes_its_default(predictor: Predictor) -> None:
    default = score(predictor, {"platform": "ios", "boost": 0.0, "vip": False, "level": 1})
    assert score(predictor, {}) == score(predictor, None) == score(predictor, {"platform": None}) == default
    assert default < 0.1


def test_a_category_value_the_declaration_does_not_list_is_read_as_the_default(predictor: Predictor) -> None:
    assert score(predictor, {"platform": "switch"}) == score(predictor, {"platform": "ios"})


def test_a_number_outside_its_bounds_is_clamped_to_the_nearest_bound(settings, store, champion, tmp_path) -> None:
    log = PredictionLog(PredictionLogConfig(sample_rate=1.0), str(tmp_path / "log"))
    predictor = Predictor(
        settings, store, Versions(**{CHAMPION: champion}), configs={"offer": OFFER}, prediction_log=log
    )
    high = predictor.predict("offer", "demo", "p1", {"platform": "pc", "boost": 1e6})
    low = predictor.predict("offer", "demo", "p1", {"platform": "pc", "boost": -3})
    log.close()

    assert high["prediction"]["score"] == score(predictor, {"platform": "pc", "boost": 10})
    assert low["prediction"]["score"] == score(predictor, {"platform": "pc", "boost": 0})
    assert [r["context"]["boost"] for r in read_log(str(tmp_path / "log"))] == [10.0, 0.0]


def test_keys_the_model_does_not_declare_are_ignored(predictor: Predictor) -> None:
    plain = score(predictor, {"platform": "android"})
    assert score(predictor, {"platform": "android", "screen": "shop", "tab": 3, "platform_hint": None}) == plain


def test_the_prediction_log_records_the_context_values_used(settings, store, champion, tmp_path) -> None:
    log = PredictionLog(PredictionLogConfig(sample_rate=1.0), str(tmp_path / "log"))
    predictor = Predictor(
        settings, store, Versions(**{CHAMPION: champion}), configs={"offer": OFFER}, prediction_log=log
    )
    predictor.predict("offer", "demo", "p1", {"platform": "switch", "level": 4, "screen": "shop"})
    predictor.predict("offer", "demo", "nobody", {"platform": "pc"})
    log.close()

    scored, fallback = read_log(str(tmp_path / "log"))
    assert scored["context"] == {"platform": "ios", "boost": 0.0, "vip": False, "level": 4}
    assert set(FEATURES) <= set(scored["features"])  # the profile's features, apart from the context
    assert not set(OFFER.context_names) & set(scored["features"])
    assert (fallback["reason"], fallback["context"]) == ("no_profile", None)


# --- the caller's mistakes --------------------------------------------------------------------


@pytest.mark.parametrize(
    "context, message",
    [
        ({"platform": 3}, "context.platform must be a string"),
        ({"boost": "high"}, "context.boost must be a finite number"),
        ({"boost": True}, "context.boost must be a finite number"),
        ({"vip": "yes"}, "context.vip must be true or false"),
        ({"vip": 1}, "context.vip must be true or false"),
        ({"level": 2.5}, "context.level must be an integer"),
        ({"level": 10**400}, "context.level must be an integer"),
    ],
)
def test_a_value_of_another_type_for_a_declared_field_is_the_callers_mistake(
    predictor: Predictor, context: dict[str, Any], message: str
) -> None:
    with pytest.raises(ClientMistake) as caught:
        predictor.predict("offer", "demo", "p1", context)
    assert caught.value.status == 400 and caught.value.message.startswith(message)


def test_an_integral_number_is_an_integer(predictor: Predictor) -> None:
    assert score(predictor, {"level": 3.0}) == score(predictor, {"level": 3})


def test_over_http_a_wrong_type_is_a_400_naming_the_field_and_the_rest_is_answered(
    settings: Settings, champion: ChampionModel
) -> None:
    with TestClient(create_app(settings)) as client:
        state = client.app.state.serving
        champions = Versions(**{CHAMPION: champion})
        state._predictor = Predictor(state.settings, state.online, champions, configs={"offer": OFFER})
        state.online.put([Profile(game_id="demo", player_id="p1", version=1, as_of=1, features={}, state={})])

        bad = client.post("/v1/models/offer/predict", json={"player_id": "p1", "context": {"vip": "no"}}, headers=SERVE)
        good = client.post(
            "/v1/models/offer/predict",
            json={"player_id": "p1", "context": {"platform": "android", "tab": 3}},
            headers=SERVE,
        )

    assert bad.status_code == 400
    assert bad.json() == {"error": "context.vip must be true or false (or null, or omitted, for its default)"}
    assert good.status_code == 200 and good.json()["prediction"]["score"] > 0.9


def test_the_openapi_document_says_how_context_is_read(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        doc = client.get("/openapi.json").json()
    body = doc["paths"]["/v1/models/{model}/predict"]["post"]["requestBody"]["content"]["application/json"]
    description = body["schema"]["properties"]["context"]["description"]
    assert "conf/models/NAME.yaml" in description and "default" in description and "ignored" in description


# --- a version trained with other context -------------------------------------------------------


def test_a_version_trained_with_other_context_fields_is_refused_naming_them(champion: ChampionModel) -> None:
    with pytest.raises(
        ConfigError, match=r'"declared_not_in_model": \["placement"\].*"in_model_not_declared": \["vip"'
    ):
        check_features(champion, config(PLATFORM, BOOST, {**VIP, "name": "placement"}, LEVEL))
    with pytest.raises(ConfigError, match="context fields or their order differ"):
        check_features(champion, config(BOOST, PLATFORM, VIP, LEVEL))


def test_a_version_trained_with_other_category_values_is_refused_naming_the_field(champion: ChampionModel) -> None:
    reordered = config({**PLATFORM, "values": ["android", "ios", "pc"]}, BOOST, VIP, LEVEL)
    with pytest.raises(ConfigError, match=r"the encoding of platform \(trained .*ios.*declared .*android"):
        check_features(champion, reordered)


def test_a_version_trained_from_another_source_reads_requests_alike_and_is_served(champion: ChampionModel) -> None:
    check_features(champion, config({**PLATFORM, "training": "default"}, BOOST, VIP, LEVEL))


def test_a_version_trained_without_the_declared_context_answers_with_the_fallback(settings, store) -> None:
    without = context_decides(config(PLATFORM, BOOST))  # an older version: two fields only
    predictor = Predictor(settings, store, Versions(**{CHAMPION: without}), configs={"offer": OFFER})
    out = predictor.predict("offer", "demo", "p1", {"platform": "android"})
    assert (out["fallback"], out["reason"]) == (True, "model_error")


def test_the_packaged_files_keep_the_context_encodings(champion: ChampionModel, tmp_path: Path) -> None:
    loaded = load_champion(save_champion(champion, tmp_path / "model"))
    assert loaded.feature_names == champion.feature_names and loaded.context == OFFER.context_encodings
    check_features(loaded, OFFER)
    inputs, _ = ContextDecoder.of(loaded.context).decode({"platform": "android"})
    assert loaded.predict_proba({}, inputs) == pytest.approx(champion.predict_proba({}, inputs), abs=1e-6)


# --- one encoding -------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, "ios", "android", "pc", "switch", -3, 0, 2.5, 10, 11, True, False, 7])
def test_serving_encodes_each_value_as_the_declarations_reference_encoding(raw: Any) -> None:
    for field in OFFER.context:
        enc: ContextEncoding = field.encoding
        try:
            (x,), _ = ContextDecoder.of((enc,)).decode({enc.name: raw})
        except ClientMistake:
            continue  # a value of another type: never encoded
        expected = enc.encode(raw)
        assert x == expected and not math.isnan(x), (enc.name, raw)


def test_the_model_function_answers_a_wrong_type_with_a_400_naming_the_field(
    function_env: dict[str, str],  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model_dir = Path(function_env["PLAYERPULSE_MODEL_DIR"])
    declared = yaml.safe_load((model_dir / "store_offer.yaml").read_text())
    declared["context"] = [PLATFORM, BOOST]
    (model_dir / "store_offer.yaml").write_text(yaml.safe_dump(declared))
    save_champion(context_decides(parse_model_config(model_dir / "store_offer.yaml")), model_dir)
    for k, v in function_env.items():
        monkeypatch.setenv(k, v)
    rt = model_function.init(function_env)
    try:
        bad = call(event("http_api_predict.json", body=json.dumps({"player_id": "p1", "context": {"boost": "x"}})))
        good = call(event("http_api_predict.json", body=json.dumps({"player_id": "p1", "context": {"boost": 9}})))
    finally:
        rt.store.close()
    assert bad == (400, {"error": "context.boost must be a finite number (or null, or omitted, for its default)"})
    assert good[0] == 200


class ByName:
    """Each declared model's champion, by name: the ``Champions`` role without a registry."""

    def __init__(self, champions: dict[str, ChampionModel]):
        self.champions = champions

    def get(self, name: str, alias: str = CHAMPION) -> ChampionModel:
        return self.champions[name]


def test_readiness_names_a_champion_trained_with_context_its_declaration_lacks(settings: Settings) -> None:
    from features.model_config import list_model_configs

    champions = {}
    for cfg in list_model_configs(settings):
        extra = (
            (ContextEncoding("platform", "category", "ios", ("ios", "android")),) if cfg.name == "store_offer" else ()
        )
        names = (*cfg.feature_names, *(e.name for e in extra))
        champions[cfg.name] = ChampionModel(cfg.name, 3, None, names, cfg.feature_set, extra)  # type: ignore[arg-type]
    with TestClient(create_app(settings)) as client:
        state = client.app.state.serving
        state._predictor = Predictor(state.settings, state.online, ByName(champions))
        problems = state.readiness_problems()
        ready = client.get("/readyz")

    assert ready.status_code == 503
    assert problems == [
        "model store_offer: model 'store_offer' v3 does not read the context conf/models/store_offer.yaml declares "
        '(context fields or their order differ: {"declared_not_in_model": [], "in_model_not_declared": ["platform"]}); '
        "retrain it or fix the declaration"
    ]
