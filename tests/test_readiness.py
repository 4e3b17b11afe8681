"""A broken deployment must not look healthy: /readyz says ready only when every declared model
has a champion loaded and the online store answers; /healthz only says the process is alive."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from features.config import Settings
from features.model_config import list_model_configs
from serving.app import create_app
from training.registry import ensure_experiment, tracking_client


def register_champions(settings: Settings) -> None:
    """A tiny real booster per declared model, registered with alias champion."""
    import mlflow
    import mlflow.xgboost
    import xgboost as xgb

    client = tracking_client(settings)
    for cfg in list_model_configs(settings):
        names = cfg.feature_names
        x = np.random.default_rng(0).random((50, len(names)), dtype=np.float32)
        booster = xgb.train({"nthread": 1}, xgb.DMatrix(x, (x[:, 0] > 0.5).astype(int), feature_names=names), 2)
        with mlflow.start_run(experiment_id=ensure_experiment(settings, client)):
            info = mlflow.xgboost.log_model(
                booster,
                name="model",
                registered_model_name=cfg.name,
                metadata={"feature_names": names, "feature_set": cfg.feature_set},
                pip_requirements=["xgboost-cpu"],
            )
        client.set_registered_model_alias(cfg.name, "champion", str(info.registered_model_version))


def test_without_champions_the_gateway_is_alive_but_not_ready(settings):
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        r = client.get("/readyz")
    assert (r.status_code, r.json()) == (503, {"status": "not_ready"})


def test_with_every_declared_model_champion_loaded_the_gateway_is_ready(settings):
    register_champions(settings)
    with TestClient(create_app(settings)) as client:
        r = client.get("/readyz")
    assert (r.status_code, r.json()) == (200, {"status": "ready"})
