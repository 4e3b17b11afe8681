"""The monitoring job lands latency reports and the prediction log in gold.latency and gold.predictions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from features.config import Settings
from pipelines import monitoring
from pipelines.session import table_path

pytestmark = pytest.mark.spark

AT = 1_790_000_000_000


def write_jsonl(folder: str, name: str, records: list[dict]) -> None:
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / name).write_text("".join(json.dumps(r) + "\n" for r in records))


def profiles_report(batch: int, hops: dict[str, list[float]], batch_ms: float, age: float | None) -> dict:
    return {"batch": batch, "at": AT + batch, "batch_ms": batch_ms, "iterator_age_ms": age, "hops": hops, "players": 2}


def logged_prediction(score: float | None, reason: str | None = None) -> dict:
    return {
        "served_at": AT + 500,
        "model": "store_offer",
        "version": 3,
        "champion": 3,
        "challenger": None,
        "challenger_score": None,
        "game_id": "demo",
        "player_key": "0123456789ab",
        "score": score,
        "fallback": reason is not None,
        "reason": reason,
        "features": {"session_count_7d": 4} if reason is None else None,
        "timestamps": {"profile_written_at": AT + 100, "served_at": AT + 500},
    }


def test_every_sample_lands_once_however_often_the_job_runs(spark, settings: Settings):
    write_jsonl(
        monitoring.profiles_latency_dir(settings),
        "0001-batch0.jsonl",
        [profiles_report(0, {"stream": [120.0, 300.0], "collector": [4.0]}, 80.0, 300.0)],
    )
    write_jsonl(
        monitoring.predictions_dir(settings),
        "0001-a.jsonl",
        [logged_prediction(0.7), logged_prediction(None, "no_profile")],
    )

    first = monitoring.run(spark, settings)
    again = monitoring.run(spark, settings)

    latency = spark.read.format("delta").load(table_path(settings, "gold.latency"))
    got = sorted((r.source, r.hop, r.ms) for r in latency.collect())
    assert got == [
        ("profiles", "collector", 4.0),
        ("profiles", "iterator_age", 300.0),
        ("profiles", "micro_batch", 80.0),
        ("profiles", "stream", 120.0),
        ("profiles", "stream", 300.0),
        ("serving", "serve", 400.0),
        ("serving", "serve", 400.0),
    ]
    predictions = spark.read.format("delta").load(table_path(settings, "gold.predictions")).collect()
    assert sorted((p.score, p.reason) for p in predictions if p.score) == [(0.7, None)]
    assert {p.reason for p in predictions} == {None, "no_profile"}
    assert predictions[0].served_date is not None
    assert first == {"latency_rows": 7, "prediction_rows": 2} and again == {"latency_rows": 0, "prediction_rows": 0}
