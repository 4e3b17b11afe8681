"""The Lambda model function as API Gateway and function URLs call it, with a real xgboost champion
loaded from the package's files and a real (SQLite) online store."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from features.config import conf_dir, hash_api_key, load_settings
from features.errors import ConfigError
from features.model_config import parse_model_config
from features.online import Profile, open_online_store
from serving import model_function
from serving.model_files import save_champion
from serving.models import ChampionModel

EVENTS = Path(__file__).parent / "events"
REPO = Path(__file__).parent.parent
SERVE_KEY = "pp-serve-key-for-tests"


def event(name: str, **changes: Any) -> dict[str, Any]:
    e = json.loads((EVENTS / name).read_text())
    e.update(changes)
    return e


def tiny_champion(feature_names: list[str], name: str = "store_offer", feature_set: str | None = None):
    import xgboost as xgb

    rng = np.random.default_rng(3)
    x = rng.random((200, len(feature_names)), dtype=np.float32)
    y = (x[:, 0] > 0.5).astype(np.float32)
    booster = xgb.train({"max_depth": 2, "nthread": 1}, xgb.DMatrix(x, y, feature_names=feature_names), 3)
    if feature_set is None:  # the set the shipped YAML trains on
        feature_set = parse_model_config(conf_dir() / "models" / f"{name}.yaml").feature_set
    return ChampionModel(name, 4, booster, tuple(feature_names), feature_set)


@pytest.fixture
def function_env(tmp_path: Path) -> dict[str, str]:
    """A conf folder whose game 'demo' has SERVE_KEY, and a packaged store_offer champion."""
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf", conf)
    raw = yaml.safe_load((conf / "local.yaml").read_text())
    raw["games"]["demo"]["serve_keys"] = [hash_api_key(SERVE_KEY)]
    (conf / "local.yaml").write_text(yaml.safe_dump(raw))
    cfg = parse_model_config(conf / "models" / "store_offer.yaml")
    model_dir = save_champion(tiny_champion(cfg.feature_names), tmp_path / "model")
    shutil.copy(conf / "models" / "store_offer.yaml", model_dir / "store_offer.yaml")
    return {
        "PLAYERPULSE_ENV": "local",
        "PLAYERPULSE_CONF_DIR": str(conf),
        "PLAYERPULSE_WORKDIR": str(tmp_path / "var"),
        "PLAYERPULSE_MODEL": "store_offer",
        "PLAYERPULSE_MODEL_DIR": str(model_dir),
    }


@pytest.fixture
def runtime(function_env, monkeypatch):
    for k, v in function_env.items():
        monkeypatch.setenv(k, v)
    rt = model_function.init(function_env)
    settings = load_settings("local", function_env["PLAYERPULSE_WORKDIR"])
    with open_online_store(settings.online_store) as store:
        for game in ("demo", "rival"):
            store.put([Profile(game_id=game, player_id="p1", version=1, as_of=1, features={}, state={})])
    yield rt
    rt.store.close()


@dataclass
class LambdaContext:
    """The fields of Lambda's context object that Powertools reads (as in its own tests)."""

    function_name: str = "playerpulse-store_offer"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:playerpulse-store_offer"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"


def call(e: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    out = model_function.handler(e, LambdaContext())
    return out["statusCode"], json.loads(out["body"])


def test_an_http_api_predict_answers_from_the_packaged_champion(runtime):
    status, body = call(event("http_api_predict.json"))
    assert status == 200
    assert (body["model"], body["version"], body["fallback"]) == ("store_offer", 4, False)
    assert 0.0 <= body["prediction"]["score"] <= 1.0


def test_a_prediction_emits_each_hop_of_the_profile_it_read_as_an_emf_metric(runtime, capsys):
    stamps = {"event_time": 1_000, "received_at": 1_300, "stream_at": 1_310, "processed_at": 1_500}
    runtime.store.put(
        [Profile(game_id="demo", player_id="p1", version=2, as_of=1, features={}, state={}, timestamps=stamps)]
    )
    capsys.readouterr()

    status, body = call(event("http_api_predict.json"))

    written = body["timestamps"]["profile_written_at"]
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"HopLatency"' in line]
    hops = {b["hop"]: b["HopLatency"] for b in blobs}  # EMF values come as lists
    assert status == 200 and {b["model"] for b in blobs} == {"store_offer"}
    assert hops == {
        "device": [300.0],
        "stream": [190.0],
        "profile_write": [float(written - 1_500)],
        "serve": [float(body["timestamps"]["served_at"] - written)],
    }


def test_each_invocation_writes_the_prediction_log_once_a_file_is_due(function_env, monkeypatch):
    from serving.prediction_log import read_log

    conf = Path(function_env["PLAYERPULSE_CONF_DIR"]) / "local.yaml"
    raw = yaml.safe_load(conf.read_text())
    raw.setdefault("serving", {})["prediction_log"] = {"sample_rate": 1.0, "max_file_records": 1}
    conf.write_text(yaml.safe_dump(raw))
    for k, v in function_env.items():
        monkeypatch.setenv(k, v)
    rt = model_function.init(function_env)
    try:
        status, _ = call(event("http_api_predict.json"))
    finally:
        rt.store.close()

    (record,) = read_log(str(Path(function_env["PLAYERPULSE_WORKDIR"]) / "reports" / "predictions"))
    assert status == 200 and (record["model"], record["reason"]) == ("store_offer", "no_profile")


def test_a_rest_api_predict_answers_the_same(runtime):
    assert call(event("rest_api_predict.json"))[0] == 200


def test_a_function_url_reads_the_profile_of_the_keys_game(runtime):
    status, body = call(event("function_url_profile.json"))
    assert status == 200
    assert (body["game_id"], body["player_id"]) == ("demo", "p1")


def test_the_ingest_key_is_refused(runtime):
    e = event("http_api_predict.json")
    e["headers"]["authorization"] = "Bearer pp-demo-key-local-only"
    assert call(e)[0] == 401


def test_an_unknown_player_gets_fallback_content_with_a_reason(runtime):
    e = event("http_api_predict.json", body=json.dumps({"player_id": "nobody"}))
    status, body = call(e)
    assert status == 200
    assert (body["fallback"], body["reason"]) == (True, "no_profile")
    assert body["prediction"]["offer"] == "free_daily_gift"


def test_another_models_route_is_not_served_by_this_function(runtime):
    e = event("http_api_predict.json", rawPath="/v1/models/churn_risk/predict")
    e["requestContext"]["http"]["path"] = "/v1/models/churn_risk/predict"
    assert call(e) == (404, {"error": "no such model"})


def test_healthz_is_ready_with_the_champion_loaded(runtime):
    e = event("function_url_profile.json", rawPath="/healthz")
    e["requestContext"]["http"]["path"] = "/healthz"
    assert call(e) == (200, {"status": "ok", "model": "store_offer", "version": 4})


def test_the_cold_start_is_measured_in_wall_and_cpu_time(runtime):
    assert 0 < model_function.IMPORT_MS <= runtime.cold_start_ms
    assert runtime.cold_start_cpu_ms > 0


def test_a_champion_needing_a_feature_its_set_does_not_compute_refuses_to_start(function_env, tmp_path):
    cfg = parse_model_config(Path(function_env["PLAYERPULSE_MODEL_DIR"]) / "store_offer.yaml")
    save_champion(tiny_champion([*cfg.feature_names, "telepathy_score"]), Path(function_env["PLAYERPULSE_MODEL_DIR"]))
    with pytest.raises(ConfigError, match="telepathy_score"):
        model_function.build_runtime(function_env)


def test_a_champion_whose_features_differ_from_the_yaml_refuses_to_start(function_env):
    cfg = parse_model_config(Path(function_env["PLAYERPULSE_MODEL_DIR"]) / "store_offer.yaml")
    save_champion(tiny_champion(cfg.feature_names[1:]), Path(function_env["PLAYERPULSE_MODEL_DIR"]))
    with pytest.raises(ConfigError, match=cfg.feature_names[0]):
        model_function.build_runtime(function_env)


def test_without_a_model_name_the_function_refuses_to_start(function_env):
    with pytest.raises(ConfigError, match="PLAYERPULSE_MODEL"):
        model_function.build_runtime({k: v for k, v in function_env.items() if k != "PLAYERPULSE_MODEL"})


@pytest.mark.parametrize("body, is_base64", [("%%%", True), ('{"player_id": "\ud800"}', False)])
def test_an_undecodable_predict_body_is_a_400(runtime, body, is_base64):
    assert call(event("http_api_predict.json", body=body, isBase64Encoded=is_base64))[0] == 400
