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
        "context": {"platform": "android", "hero_level": 4, "vip": True} if reason is None else None,
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
    assert [p.context for p in predictions if p.score] == [{"platform": "android", "hero_level": "4", "vip": "true"}]
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


HOUR = 3_600_000
FIRST = {"version": 1, "champion": 1}
"""The first registered version answered, as champion."""
SERVED = {"session_count_7d": 4.0}


def test_report_model_labels_predictions_as_training_does_and_reads_the_champions_training_version(
    spark, settings: Settings, tmp_path, capsys, monkeypatch
):
    """Predictions at T get the label a training snapshot at T would (purchase in (T, T + 24 h]):
    scores the reverse of the labels give live AUC 0.0, 0.9 below the champion's test AUC, one
    breach line. PSI reads the training version the champion's run records, the latest once
    that version's files are gone."""
    from pyspark.sql import functions as F

    from features.pseudonyms import digest_for_log
    from playerpulse.report_command import training_of_champion
    from training.registry import CHAMPION, ensure_experiment, tracking_client

    # player → (a purchase at T + this many ms, label at T); "late" is served 1 h before the newest event.
    purchases = {"in": HOUR, "before": -HOUR, "after": 25 * HOUR, "at_end": 24 * HOUR, "at_start": 0, "none": None}
    labels = {"in": 1, "before": 0, "after": 0, "at_end": 1, "at_start": 0, "none": 0}
    events = [("demo", p, "purchase", AT + d) for p, d in purchases.items() if d is not None]
    events += [("demo", "none", "session_start", AT + 48 * HOUR), ("other", "none", "purchase", AT + HOUR)]
    spark.createDataFrame(events, "game_id STRING, player_id STRING, event_type STRING, ms BIGINT").select(
        "game_id", "player_id", "event_type", F.timestamp_millis("ms").alias("event_time")
    ).write.format("delta").save(table_path(settings, "silver.player_events"))
    served = [(p, AT, 1.0 - labels[p]) for p in labels] + [("late", AT + 47 * HOUR, 0.5)]
    records = [
        {**logged_prediction(score), **FIRST, "features": SERVED, "player_key": digest_for_log(p), "served_at": at}
        for p, at, score in served
    ]
    records.append({**logged_prediction(None, "no_profile"), **FIRST, "player_key": digest_for_log("in")})
    monitoring.prediction_rows(spark.createDataFrame(records, monitoring.PREDICTIONS_JSON)).write.format("delta").save(
        table_path(settings, "gold.predictions")
    )
    features = load_model_config(settings, "store_offer").feature_names
    training = table_path(settings, "gold.training_store_offer")
    for value in (4.0, 9.0):  # version 0 (the champion's, as served), then version 1
        spark.createDataFrame([dict.fromkeys(features, value)] * 5).write.format("delta").mode("overwrite").save(
            training
        )
    client = tracking_client(settings)
    run = client.create_run(ensure_experiment(settings, client), tags={"training_table_version": "0"})
    client.log_metric(run.info.run_id, "test_auc", 0.9)
    client.create_registered_model("store_offer")
    mv = client.create_model_version("store_offer", str(tmp_path), run_id=run.info.run_id)
    client.set_registered_model_alias("store_offer", CHAMPION, mv.version)

    df, version, note = training_of_champion(spark, settings, "gold.training_store_offer", 1, 0, None)
    assert (version, {r[0] for r in df.select("session_count_7d").distinct().collect()}) == (0, {4.0})
    assert note == "PSI compares with gold.training_store_offer version 0, the data champion v1 was trained on."

    for add in (json.loads(line).get("add") for line in (Path(training) / "_delta_log" / f"{0:020d}.json").open()):
        if add:
            (Path(training) / add["path"]).unlink()  # as VACUUM would, once version 0 is old enough
    strict = conf_with_alerts(
        tmp_path, {"min_samples": 1, "max_live_auc_drop": 0.1, "max_fallback_rate": 0.5, "max_psi": 100.0}
    )
    monkeypatch.setenv("PLAYERPULSE_CONF_DIR", str(strict))
    out = tmp_path / "model.html"
    capsys.readouterr()
    code = main(["report", "model", "store_offer", "--workdir", settings.workdir, "--out", str(out), "--check"])

    page = out.read_text()
    assert code == 1
    assert [line for line in capsys.readouterr().err.splitlines() if line.startswith("ALERT")] == [
        "ALERT model store_offer: live AUC of champion v1 is 0.000 over 6 labelled predictions, 0.900 below its "
        "test AUC 0.900 (threshold 0.100)"
    ]
    # 6 labelled, 2 positive, AUC 0 for scores 1 - label: exactly the labels expected ("late" awaits its own)
    assert "<td>v1 (champion)</td><td>6</td><td>2</td><td>0.000</td><td>0.900</td>" in page
    assert "; 1 more await their label." in page
    assert "version 0, the data champion v1 was trained on, cannot be read" in page
    assert "PSI compares with its latest version 1 instead" in page
