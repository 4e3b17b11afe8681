"""The monitoring job lands latency reports and the prediction log in gold.latency and gold.predictions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from features.config import Settings
from features.model_config import load_model_config
from pipelines import monitoring
from pipelines.session import table_path
from playerpulse.cli import main

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


def conf_with_alerts(tmp_path: Path, alerts: dict) -> Path:
    raw = yaml.safe_load((Path(__file__).parent.parent / "conf" / "local.yaml").read_text())
    raw["alerts"] = alerts
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "local.yaml").write_text(yaml.safe_dump(raw))
    (conf / "models").symlink_to(Path(__file__).parent.parent / "conf" / "models")
    return conf


def test_report_check_passes_within_thresholds_and_names_each_breach(
    spark, settings: Settings, tmp_path, capsys, monkeypatch
):
    """The reports read the landed tables: a pass exits 0, a breach exits 1 with one line per breach."""
    write_jsonl(
        monitoring.profiles_latency_dir(settings),
        "0001-batch0.jsonl",
        [profiles_report(0, {"stream": [120.0, 300.0]}, 80.0, 300.0)],
    )
    write_jsonl(monitoring.predictions_dir(settings), "0001-a.jsonl", [logged_prediction(0.7)])
    monitoring.run(spark, settings)
    features = load_model_config(settings, "store_offer").feature_names
    spark.createDataFrame([dict.fromkeys(features, 1.0)] * 5).write.format("delta").save(
        table_path(settings, "gold.training_store_offer")
    )
    workdir = ["--workdir", settings.workdir]

    passed = main(["report", "latency", *workdir, "--check", "--out", str(tmp_path / "latency.html")])
    page = (tmp_path / "latency.html").read_text()
    model = main(["report", "model", "store_offer", *workdir, "--out", str(tmp_path / "model.html"), "--check"])
    capsys.readouterr()
    strict = conf_with_alerts(tmp_path, {"hop_p95_ms": {"stream": 200}, "min_samples": 1})
    monkeypatch.setenv("PLAYERPULSE_CONF_DIR", str(strict))
    breached = main(["report", "latency", *workdir, "--check", "--out", str(tmp_path / "again.html")])

    assert (passed, model) == (0, 0)
    assert "<td>stream</td><td>2</td><td>120</td><td>300</td>" in page
    assert "store_offer" in (tmp_path / "model.html").read_text()
    assert breached == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "ALERT latency: p95 of hop 'stream' is 300 ms over 2 samples (threshold 200 ms)"
    ]
