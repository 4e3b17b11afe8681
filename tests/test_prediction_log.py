"""The prediction log: a bounded sample of what each prediction scored and said, players as digests."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from test_serving_fallbacks import Versions, constant_model, declaration

from features.config import Settings
from features.monitoring_config import PredictionLogConfig
from features.online import Profile, open_online_store
from serving.models import CHALLENGER, CHAMPION
from serving.predict import Predictor
from serving.prediction_log import PredictionLog, read_log


@pytest.fixture(scope="module")
def models():
    return {CHAMPION: constant_model(1, 0.2), CHALLENGER: constant_model(2, 0.8)}


def logged_predictor(settings: Settings, models, log: PredictionLog, challenger=None) -> Predictor:
    store = open_online_store(settings.online_store)
    store.put([Profile(game_id="demo", player_id="p1", version=1, as_of=1, features={}, state={})])
    return Predictor(
        settings, store, Versions(**models), configs={"offer": declaration(challenger)}, prediction_log=log
    )


def test_a_logged_prediction_keeps_its_features_score_versions_and_hops_but_not_the_player_id(
    settings, models, tmp_path
):
    log = PredictionLog(PredictionLogConfig(sample_rate=1.0), str(tmp_path / "log"))
    predictor = logged_predictor(settings, models, log, {"mode": "shadow"})

    out = predictor.predict("offer", "demo", "p1")
    log.close()

    (record,) = read_log(str(tmp_path / "log"))
    assert (record["model"], record["version"], record["champion"], record["challenger"]) == ("offer", 1, 1, 2)
    assert record["score"] == pytest.approx(out["prediction"]["score"])
    assert record["challenger_score"] == pytest.approx(0.8, abs=0.05)
    assert set(record["features"]) >= {"store_view_count_1d", "session_count_7d"}
    assert (record["fallback"], record["reason"], record["game_id"]) == (False, None, "demo")
    assert record["timestamps"]["served_at"] == out["timestamps"]["served_at"]
    assert "p1" not in json.dumps(record) and len(record["player_key"]) == 12


def test_a_fallback_is_logged_with_its_reason(settings, models, tmp_path):
    log = PredictionLog(PredictionLogConfig(sample_rate=1.0), str(tmp_path / "log"))
    predictor = logged_predictor(settings, models, log)

    predictor.predict("offer", "demo", "nobody")
    log.close()

    (record,) = read_log(str(tmp_path / "log"))
    assert (record["fallback"], record["reason"], record["score"], record["features"]) == (
        True,
        "no_profile",
        None,
        None,
    )


def test_only_the_sample_rate_of_predictions_is_kept(tmp_path):
    draws = iter([0.05, 0.5, 0.09, 0.95])
    log = PredictionLog(PredictionLogConfig(sample_rate=0.1), str(tmp_path / "log"), rng=lambda: next(draws))

    kept = [log.offer({"n": n}) for n in range(4)]
    log.close()

    assert kept == [True, False, True, False]
    assert [r["n"] for r in read_log(str(tmp_path / "log"))] == [0, 2]


def test_past_max_queued_records_are_dropped_and_counted_never_waited_for(tmp_path):
    dropped: list[int] = []
    config = PredictionLogConfig(sample_rate=1.0, max_queued=3, flush_seconds=3600, max_file_records=10)
    log = PredictionLog(config, str(tmp_path / "log"), on_drop=dropped.append)

    kept = [log.offer({"n": n}) for n in range(5)]
    log.close()

    assert kept == [True, True, True, False, False] and sum(dropped) == 2 == log.dropped
    assert len(read_log(str(tmp_path / "log"))) == 3


def test_a_file_holds_at_most_max_file_records(tmp_path):
    config = PredictionLogConfig(sample_rate=1.0, max_file_records=2, flush_seconds=3600)
    log = PredictionLog(config, str(tmp_path / "log"))
    for n in range(5):
        log.offer({"n": n})
    log.close()

    files = sorted(Path(tmp_path / "log").glob("*.jsonl"))
    assert [len(f.read_text().splitlines()) for f in files] == [2, 2, 1]
    assert not list(Path(tmp_path / "log").glob(".*"))  # no half-written file is left behind


def test_on_s3_each_file_is_one_object(aws_endpoint):
    s3 = boto3.client("s3", endpoint_url=aws_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="pp-prediction-log")
    log = PredictionLog(
        PredictionLogConfig(sample_rate=1.0), "s3a://pp-prediction-log/reports/predictions", endpoint_url=aws_endpoint
    )
    log.offer({"n": 1})
    log.close()

    (obj,) = s3.list_objects_v2(Bucket="pp-prediction-log", Prefix="reports/predictions/")["Contents"]
    body = s3.get_object(Bucket="pp-prediction-log", Key=obj["Key"])["Body"].read()
    assert obj["Key"].endswith(".jsonl") and json.loads(body) == {"n": 1}


def test_without_a_writer_thread_records_are_written_once_a_file_is_due(tmp_path):
    config = PredictionLogConfig(sample_rate=1.0, max_file_records=2, flush_seconds=3600)
    log = PredictionLog(config, str(tmp_path / "log"), background=False)

    log.offer({"n": 1})
    first = log.flush_if_due()
    log.offer({"n": 2})
    second = log.flush_if_due()

    assert (first, second) == (0, 2)
    assert [r["n"] for r in read_log(str(tmp_path / "log"))] == [1, 2]
