"""Scoring through libxgboost's C API gives xgboost's own scores, and a bad model file is named."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from features.errors import ConfigError
from serving.model_files import load_champion
from serving.native_booster import NativeBooster, XGBoostError

FEATURES = ["a", "b", "c", "d"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[xgb.Booster, Path]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, len(FEATURES))).astype(np.float32)
    x[rng.random(x.shape) < 0.2] = np.nan
    y = (np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 1]) > 0).astype(int)
    params = {"objective": "binary:logistic", "max_depth": 3, "nthread": 1}
    booster = xgb.train(params, xgb.DMatrix(x, y, feature_names=FEATURES), 30)
    path = tmp_path_factory.mktemp("native") / "model.ubj"
    booster.save_model(str(path))
    return booster, path


def test_predict_row_gives_inplace_predicts_scores_missing_values_included(trained) -> None:
    booster, path = trained
    native = NativeBooster.load(path)
    rows = np.random.default_rng(4).normal(size=(200, len(FEATURES))).astype(np.float32)
    rows[::3, 1] = np.nan

    scores = [native.predict_row([float(v) for v in row]) for row in rows]

    assert scores == pytest.approx(booster.inplace_predict(rows).tolist(), abs=0)
    assert (native.num_features, native.feature_names) == (len(FEATURES), tuple(FEATURES))


def test_threads_scoring_at_once_each_get_their_own_rows_scores(trained) -> None:
    """Each thread scores through its own proxy DMatrix: rows scored at once in eight
    threads get the scores they get one at a time."""
    booster, path = trained
    native = NativeBooster.load(path)
    rows = np.random.default_rng(5).normal(size=(400, len(FEATURES))).astype(np.float32)
    expected = booster.inplace_predict(rows).tolist()

    def score(start: int) -> list[tuple[int, float]]:
        return [(i, native.predict_row([float(v) for v in rows[i]])) for _ in range(5) for i in range(start, 400, 8)]

    with ThreadPoolExecutor(8) as pool:
        scored = [pair for part in pool.map(score, range(8)) for pair in part]

    assert len(scored) == 2000
    assert all(score == expected[i] for i, score in scored)


def test_a_row_of_the_wrong_length_is_refused(trained) -> None:
    native = NativeBooster.load(trained[1])
    with pytest.raises(ValueError, match="takes 4 features, got 3"):
        native.predict_row([1.0, 2.0, math.nan])


def test_a_file_that_is_not_a_model_fails_with_xgboosts_message(tmp_path: Path) -> None:
    bad = tmp_path / "model.ubj"
    bad.write_bytes(b"not a model")
    with pytest.raises(XGBoostError):
        NativeBooster.load(bad)


def test_a_packaged_model_that_is_not_loadable_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "model.ubj").write_bytes(b"not a model")
    meta = {"model": "m", "version": 1, "feature_set": "player_activity_v1", "feature_names": FEATURES}
    (tmp_path / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=r"model\.ubj is not a model xgboost can load"):
        load_champion(tmp_path)


def test_a_packaged_model_whose_features_differ_from_its_metadata_is_refused(trained, tmp_path: Path) -> None:
    (tmp_path / "model.ubj").write_bytes(trained[1].read_bytes())
    meta = {"model": "m", "version": 1, "feature_set": "player_activity_v1", "feature_names": ["a", "c", "b", "d"]}
    (tmp_path / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="takes 4 features"):
        load_champion(tmp_path)
