"""Erasure: `playerpulse forget` leaves nothing of a player anywhere, and everyone else intact."""

from __future__ import annotations

import gzip
import re
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import pytest

from features.config import Settings
from features.deadletter.base import DeadLetter, player_pattern
from features.streams.base import StreamRecord
from features.streams.codec import decode_batch, encode_batch
from features.streams.sqlite import SqliteStream
from pipelines.erasure_list import player_digest
from pipelines.forget import ErasureReport, _without_player

if TYPE_CHECKING:
    from training.train import TrainResult

GAME = "demo"
INGEST = {"authorization": "Bearer pp-demo-key-local-only", "content-encoding": "gzip"}


# --- the pieces, without Spark -----------------------------------------------------------------


def test_a_player_pattern_matches_the_id_only_as_a_whole_token():
    pattern = re.compile(player_pattern(["p1"]))
    assert pattern.search('{"player_id":"p1","event_type":"x"}')
    assert pattern.search("uid=p1&e=ue")
    assert not pattern.search('{"player_id":"p10"}')
    assert not pattern.search('{"player_id":"xp1"}')


@pytest.fixture(params=["sqlite", "s3"])
def letter_store(request: pytest.FixtureRequest, settings: Settings):
    from features.config import S3DeadLetterConfig
    from features.deadletter import open_dead_letter_store

    config = settings.dead_letter
    if request.param == "s3":
        bucket = f"dead-{uuid.uuid4().hex[:12]}"
        config = S3DeadLetterConfig(
            bucket=bucket, endpoint_url=request.getfixturevalue("aws_endpoint"), create_if_missing=True
        )
    store = open_dead_letter_store(config)
    yield store
    store.close()


def test_dead_letter_erasure_removes_only_that_games_letters_naming_the_player(letter_store):
    store = letter_store
    letters = [
        DeadLetter(received_at=1, reason="bad", raw='{"player_id": "p1", "x": 1}', game_id=GAME),
        DeadLetter(received_at=2, reason="bad", raw='{"player_id": "p1"}', game_id="other"),
        DeadLetter(received_at=3, reason="bad", raw='{"player_id": "p10"}', game_id=GAME),
    ]
    store.put(letters)

    assert store.erase(GAME, ["p1"]) == 1
    assert [(x.game_id, x.raw) for _, x in store.read(None, 10)] == [
        ("other", '{"player_id": "p1"}'),
        (GAME, '{"player_id": "p10"}'),
    ]


def _events(game: str, player: str, n: int) -> list[dict]:
    return [{"event_id": f"{game}-{player}-{i}", "game_id": game, "player_id": player} for i in range(n)]


def test_a_stream_rewrite_drops_the_players_events_and_keeps_positions(settings: Settings):
    stream = SqliteStream(settings.stream)
    stream.put(
        [
            StreamRecord("p1", encode_batch(_events(GAME, "p1", 2), 10)),
            StreamRecord("p1", encode_batch(_events("other", "p1", 1) + _events(GAME, "p1", 1), 11)),
            StreamRecord("p2", encode_batch(_events(GAME, "p2", 1), 12)),
        ]
    )
    before = {r.position for r in stream.read_all()}

    rewritten, deleted = stream.rewrite("p1", lambda data: _without_player(data, GAME, "p1"))

    left = list(stream.read_all())
    assert (rewritten, deleted) == (1, 1)
    assert {r.position for r in left} < before
    events = [e for r in left for e in decode_batch(r.data)[1]]
    assert sorted((e["game_id"], e["player_id"]) for e in events) == [("demo", "p2"), ("other", "p1")]
    stream.put([StreamRecord("p3", encode_batch(_events(GAME, "p3", 1), 13))])
    assert int(max(r.position for r in stream.read_all())) > max(int(p) for p in before)


def test_the_profiles_fold_skips_erased_players(settings: Settings):
    from features.definitions import PLAYER_ACTIVITY_V1
    from features.online import open_online_store
    from pipelines.profile_updates import UpdateContext, update_players

    ctx = UpdateContext(
        online_store=settings.online_store.model_dump_json(),
        feature_sets=(PLAYER_ACTIVITY_V1,),
        state_days=30,
        dedup_ids=100,
        checkpoint="test",
        batch_id=0,
        erased=frozenset({player_digest(GAME, "p1")}),
    )
    row = {
        "event_id": "e1",
        "event_type": "session_start",
        "event_time": 1_700_000_000_000,
        "sent_at": None,
        "received_at": 1_700_000_000_000,
        "stream_at": 1_700_000_000_000,
        "properties": "{}",
        "stream_shard": "0",
        "stream_position": "1",
    }
    with open_online_store(settings.online_store) as store:
        update_players(store, [((GAME, "p1"), [row]), ((GAME, "p2"), [{**row, "event_id": "e2"}])], ctx)
        assert store.get(GAME, "p1") is None
        assert store.get(GAME, "p2") is not None


def _prediction_sample(player_id: str, served_at: int) -> str:
    from serving.logsafe import digest_for_log

    return msgspec.json.encode(
        {
            "served_at": served_at,
            "model": "store_offer",
            "version": 1,
            "game_id": GAME,
            "player_key": digest_for_log(player_id),
            "score": 0.5,
            "fallback": False,
            "features": {"sessions_7d": 1.0},
            "timestamps": {"served_at": served_at},
        }
    ).decode()


def test_forget_redacts_the_player_in_report_files_on_s3(settings: Settings, aws_endpoint: str):
    import boto3

    from pipelines.forget import ERASED_TOKEN, erase_files
    from pipelines.lake_files import read_text, write_text
    from serving.logsafe import digest_for_log

    bucket = f"reports-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=aws_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    lake = settings.lake.model_copy(update={"reports": f"s3a://{bucket}/reports", "endpoint_url": aws_endpoint})
    on_s3 = settings.model_copy(update={"lake": lake})
    sample = f"s3a://{bucket}/reports/predictions/0-batch.jsonl"
    quality = f"s3a://{bucket}/reports/quality/silver_player_events_1.json"
    untouched = f"s3a://{bucket}/reports/latency/profiles/0-batch1.jsonl"
    write_text(on_s3, sample, _prediction_sample("p1", 1) + "\n" + _prediction_sample("p2", 1) + "\n")
    write_text(on_s3, quality, '{"partial_unexpected_list": ["p1", "p10"]}')
    write_text(on_s3, untouched, '{"batch_id": 1}\n')

    assert erase_files(on_s3, GAME, ["p1"]) == 2

    assert digest_for_log("p1") not in read_text(on_s3, sample)
    assert digest_for_log("p2") in read_text(on_s3, sample)
    assert read_text(on_s3, quality) == f'{{"partial_unexpected_list": ["{ERASED_TOKEN}", "p10"]}}'
    assert read_text(on_s3, untouched) == '{"batch_id": 1}\n'


@pytest.mark.spark
def test_forget_removes_the_players_prediction_samples_landed_or_not(spark, settings: Settings):
    from pipelines import forget, monitoring
    from serving.logsafe import digest_for_log

    folder = Path(monitoring.predictions_dir(settings))
    folder.mkdir(parents=True)
    served = 1_700_000_000_000
    (folder / "0-landed.jsonl").write_text(_prediction_sample("p1", served) + "\n" + _prediction_sample("p2", served))
    monitoring.run(spark, settings)
    (folder / "1-not-landed.jsonl").write_text(_prediction_sample("p1", served + 1) + "\n")

    forget.run(spark, settings, GAME, ["p1"], now=True)

    table = spark.read.format("delta").load(monitoring.table_path(settings, monitoring.PREDICTIONS_TABLE))
    assert [r.player_key for r in table.select("player_key").collect()] == [digest_for_log("p2")]
    assert not any(digest_for_log("p1") in f.read_text() for f in folder.glob("*.jsonl"))


def test_forget_refuses_an_unknown_game_before_starting_spark(tmp_path: Path, capsys):
    from playerpulse.cli import main

    assert main(["forget", "p1", "--game", "no-such-game", "--workdir", str(tmp_path)]) == 1
    assert "unknown game 'no-such-game'" in capsys.readouterr().err


def test_forget_refuses_a_file_line_that_is_not_a_player_id(tmp_path: Path, capsys):
    from playerpulse.cli import main

    ids = tmp_path / "ids.txt"
    ids.write_text("p1\nnot an id\n")
    assert main(["forget", "--file", str(ids), "--workdir", str(tmp_path)]) == 1
    assert "1 of the ids are not player ids" in capsys.readouterr().err


# --- the proof: a real pipeline run, then a search of everything -------------------------------
#
# One tiny world (a dozen players, two weeks) goes the whole way: the simulator's deliveries
# through the collector core onto the stream (dead letters included), bronze → silver → gold, a
# training set and a registered store_offer model, the profiles stream; then `forget --now` of
# one player, and a replay of the stream under a fresh checkpoint. The game pseudonymises, so the
# search looks for both the id the game knows and the pseudonym every store holds.

SECRET = "erasure-proof-secret-0123456789"
PLAYERS, DAYS, SEED = 12, 14, 3
"""Small, yet with purchases in both the training and the test days of store_offer."""


def _pseudonymised(settings: Settings) -> Settings:
    from features.config import GameConfig

    demo = settings.games[GAME].model_dump(exclude_none=True)
    game = GameConfig.model_validate({**demo, "pseudonymise": {"secrets": [SECRET]}})
    return settings.model_copy(update={"games": {**settings.games, GAME: game}})


def _send_simulation(settings: Settings) -> list[str]:
    from features.contract import now_ms
    from features.deadletter import open_dead_letter_store
    from features.streams.factory import open_stream
    from playerpulse.simulation import simulate
    from playerpulse.simulation.sender import stamped_body
    from serving.collector import Collector

    sim = simulate(players=PLAYERS, days=DAYS, seed=SEED)
    collector = Collector.from_settings(settings)
    stream, letters = open_stream(settings.stream), open_dead_letter_store(settings.dead_letter)
    try:
        for delivery in sim.deliveries:
            body = stamped_body(delivery, now_ms() + delivery.skew_ms)  # as the sender stamps it
            prepared = collector.prepare(INGEST, body)
            assert prepared is not None and prepared.status in (202, 400), prepared
            stream.put(prepared.records)
            letters.put(prepared.dead_letters)
    finally:
        stream.close()
        letters.close()
    return sim.player_ids


def _tokens(needles: list[str]) -> re.Pattern[bytes]:
    return re.compile(player_pattern(needles).encode())


def _named_in(data: bytes, name: str, token: re.Pattern[bytes]) -> bool:
    """Whether a file's bytes (gunzipped where gzip) or, for Parquet, its values name a needle."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if token.search(data):
        return True
    if name.endswith(".parquet"):
        return bool(token.search(str(pq.read_table(pa.BufferReader(data)).to_pylist()).encode()))
    return False


def _found_in_local_files(settings: Settings, needles: list[str]) -> list[str]:
    token = _tokens(needles)
    workdir = Path(settings.workdir)
    return [str(f) for f in sorted(workdir.rglob("*")) if f.is_file() and _named_in(f.read_bytes(), f.name, token)]


def _found_in_bucket(settings: Settings, needles: list[str]) -> list[str]:
    """Objects of the lake's bucket (listed and read with boto3) naming a needle, and local files."""
    import boto3

    token = _tokens(needles)
    s3 = boto3.client("s3", endpoint_url=settings.lake.endpoint_url, region_name="us-east-1")
    bucket = settings.lake.root.split("/")[2]
    hits = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            data = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            if _named_in(data, obj["Key"], token):
                hits.append(f"s3://{bucket}/{obj['Key']}")
    return hits + _found_in_local_files(settings, needles)


def _found_in_delta_history(spark, settings: Settings, needles: list[str]) -> list[str]:
    """Every version of every lake table that can still be read and holds a needle (``table@v``)."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from pipelines.session import lake_tables

    found = []
    for name, path in lake_tables(spark, settings).items():
        latest = int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])
        for v in range(latest + 1):
            try:
                df = spark.read.format("delta").option("versionAsOf", v).load(path)
                string_columns = [f.name for f in df.schema.fields if f.dataType.simpleString() == "string"]
                if not string_columns:
                    continue
                named = F.lit(False)
                for column in string_columns:
                    named = named | F.col(column).rlike(player_pattern(needles))
                if df.where(named).limit(1).count():
                    found.append(f"{name}@{v}")
            except Exception as exc:  # a version whose log entries or files are gone is unreadable
                if not _unreadable_version(exc):
                    raise
    return found


def _unreadable_version(exc: Exception) -> bool:
    text = str(exc)
    return any(s in text for s in ("FileNotFound", "VersionNotFound", "DELTA_", "not found", "No such file"))


def _stream_events(settings: Settings) -> list[dict]:
    from features.streams.factory import open_stream

    with open_stream(settings.stream) as stream:
        return [e for r in stream.read_all() for e in decode_batch(r.data)[1]]


@dataclass(frozen=True)
class ErasedRun:
    """One full run of the line, then the erasure of one player."""

    settings: Settings
    erased: str
    """The player's id as the game knows it."""
    erased_stored: str
    """Its pseudonym: what every store holds."""
    kept_stored: str
    """Another player's pseudonym, who must still be everywhere."""
    report: ErasureReport
    trained: TrainResult
    before: list[str]
    """Where the file search found the player before the erasure."""

    @property
    def needles(self) -> list[str]:
        return [self.erased, self.erased_stored]


def _run_then_forget(spark, settings: Settings, search: Callable[[Settings, list[str]], list[str]]) -> ErasedRun:
    from features.pseudonyms import pseudonym
    from pipelines import forget
    from pipelines.jobs import run_all
    from pipelines.profiles_stream import start_profiles_stream
    from training.train import train_model

    players = _send_simulation(settings)
    stored = {pseudonym(SECRET.encode(), p): p for p in players}
    letters = _dead_letters(settings)
    named = [s for s in stored if any(re.search(player_pattern([s]), raw) for raw in letters)]
    assert named, "the simulated mess must leave some player's dead letter"
    erased_stored = named[0]
    on_stream = {e["player_id"] for e in _stream_events(settings)}
    kept_stored = next(s for s in sorted(on_stream) if s != erased_stored)

    run_all(spark, settings)
    trained = train_model(spark, settings, "store_offer")
    start_profiles_stream(spark, settings, available_now=True).awaitTermination()
    before = search(settings, [stored[erased_stored], erased_stored])

    report = forget.run(spark, settings, GAME, [stored[erased_stored]], now=True)
    # a replay from the start under a fresh checkpoint must not bring the profile back
    replay = f"{settings.lake.checkpoints.rstrip('/')}/replay"
    start_profiles_stream(spark, settings, available_now=True, checkpoint=replay).awaitTermination()
    return ErasedRun(settings, stored[erased_stored], erased_stored, kept_stored, report, trained, before)


def _dead_letters(settings: Settings) -> list[str]:
    from features.deadletter import open_dead_letter_store

    store = open_dead_letter_store(settings.dead_letter)
    try:
        return [x.raw for _, x in store.read(None, 100_000)]
    finally:
        store.close()


@pytest.fixture(scope="module")
def local_run(spark, tmp_path_factory) -> ErasedRun:
    """The whole line on local disk (Delta, SQLite stream and stores, MLflow on SQLite)."""
    from features.config import load_settings

    settings = _pseudonymised(load_settings("local", tmp_path_factory.mktemp("forget") / "var"))
    return _run_then_forget(spark, settings, _found_in_local_files)


# the local-disk proof


@pytest.mark.spark
@pytest.mark.erasure_proof
def test_the_player_was_stored_before_the_erasure(local_run):
    assert any("/lake/bronze/player_events/" in f for f in local_run.before), local_run.before
    assert not any(re.search(player_pattern([local_run.erased]), f) for f in local_run.before), (
        "the raw id is never stored"
    )


@pytest.mark.spark
@pytest.mark.erasure_proof
def test_no_readable_delta_version_holds_the_erased_player(spark, local_run):
    assert _found_in_delta_history(spark, local_run.settings, local_run.needles) == []


@pytest.mark.spark
@pytest.mark.erasure_proof
def test_no_file_under_the_work_folder_names_the_erased_player(local_run):
    assert _found_in_local_files(local_run.settings, local_run.needles) == []


@pytest.mark.spark
@pytest.mark.erasure_proof
def test_the_stream_and_the_dead_letters_no_longer_hold_the_erased_player(local_run):
    token = re.compile(player_pattern(local_run.needles))
    assert not [e for e in _stream_events(local_run.settings) if token.search(msgspec.json.encode(e).decode())]
    assert not [raw for raw in _dead_letters(local_run.settings) if token.search(raw)]


@pytest.mark.spark
@pytest.mark.erasure_proof
def test_a_replay_from_the_start_does_not_bring_the_profile_back(local_run):
    from features.online import open_online_store

    with open_online_store(local_run.settings.online_store) as store:
        assert store.get(GAME, local_run.erased_stored) is None
        assert store.get(GAME, local_run.erased) is None


@pytest.mark.spark
@pytest.mark.erasure_proof
def test_everyone_elses_data_is_still_there(spark, local_run):
    from features.online import open_online_store
    from pipelines.session import table_path

    settings, kept = local_run.settings, local_run.kept_stored
    assert kept in {e["player_id"] for e in _stream_events(settings)}
    with open_online_store(settings.online_store) as store:
        assert store.get(GAME, kept) is not None
    for table in ("bronze.player_events", "silver.player_events", "gold.player_daily"):
        df = spark.read.format("delta").load(table_path(settings, table))
        assert df.where(f"player_id = '{kept}'").count() > 0, table


@pytest.mark.spark
@pytest.mark.erasure_proof
def test_the_model_trained_on_the_player_is_listed_and_tagged_for_retraining(local_run):
    from training.registry import tracking_client

    report, trained = local_run.report, local_run.trained
    assert [(m["model"], m["version"]) for m in report.retrain] == [("store_offer", trained.version)]
    version = tracking_client(local_run.settings).get_model_version("store_offer", str(trained.version))
    assert version.tags["erasure.retrain_required"] == "true"


@pytest.mark.spark
@pytest.mark.erasure_proof
def test_the_erasure_log_names_the_player_by_digest_only(spark, local_run):
    from pipelines.erasure_list import erasure_log_path

    rows = spark.read.format("delta").load(erasure_log_path(local_run.settings)).collect()
    assert {r.player_digest for r in rows} == {player_digest(GAME, local_run.erased_stored)}
    assert {r.place for r in rows} >= {"bronze.player_events", "silver.player_events", "online_store", "stream"}
    assert local_run.report.removed["bronze.player_events"] > 0
    assert not re.search(player_pattern(local_run.needles), msgspec.json.encode([r.asDict() for r in rows]).decode())


# --- the same proof with the lake on S3 (moto_server over HTTP) --------------------------------


def _on_s3(settings: Settings, endpoint: str) -> Settings:
    """The lake, checkpoints, reports, dead letters and MLflow artifacts in one new bucket."""
    import boto3

    from features.config import LakeConfig, MlflowConfig, S3DeadLetterConfig

    bucket = f"pp-erasure-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    lake = LakeConfig(
        root=f"s3a://{bucket}/lake",
        checkpoints=f"s3a://{bucket}/checkpoints",
        reports=f"s3a://{bucket}/reports",
        endpoint_url=endpoint,
        region="us-east-1",
    )
    mlflow = MlflowConfig.model_validate(
        {**settings.mlflow.model_dump(), "artifact_root": f"s3://{bucket}/mlflow", "s3_endpoint_url": endpoint}
    )
    letters = S3DeadLetterConfig(bucket=bucket, endpoint_url=endpoint)
    return settings.model_copy(update={"lake": lake, "mlflow": mlflow, "dead_letter": letters})


@pytest.fixture(scope="module")
def s3_run(spark, aws_endpoint, tmp_path_factory) -> ErasedRun:
    """The whole line with every lake path on ``s3a://`` (stream and online store stay SQLite)."""
    from features.config import load_settings
    from pipelines.session import apply_s3a

    local = load_settings("local", tmp_path_factory.mktemp("forget-s3") / "var")
    settings = _on_s3(_pseudonymised(local), aws_endpoint)
    apply_s3a(spark, settings)
    return _run_then_forget(spark, settings, _found_in_bucket)


@pytest.mark.spark
@pytest.mark.erasure_proof
def test_on_s3_the_player_was_in_the_bucket_before_the_erasure(s3_run):
    assert any("/lake/bronze/player_events/" in f for f in s3_run.before), s3_run.before


@pytest.mark.spark
@pytest.mark.erasure_proof
def test_on_s3_no_readable_delta_version_holds_the_erased_player(spark, s3_run):
    assert _found_in_delta_history(spark, s3_run.settings, s3_run.needles) == []


@pytest.mark.spark
@pytest.mark.erasure_proof
def test_on_s3_no_object_in_the_bucket_nor_local_file_names_the_erased_player(s3_run):
    assert _found_in_bucket(s3_run.settings, s3_run.needles) == []


@pytest.mark.spark
@pytest.mark.erasure_proof
def test_on_s3_the_stream_dead_letters_and_profile_no_longer_hold_the_erased_player(s3_run):
    from features.online import open_online_store

    token = re.compile(player_pattern(s3_run.needles))
    assert not [e for e in _stream_events(s3_run.settings) if token.search(msgspec.json.encode(e).decode())]
    assert not [raw for raw in _dead_letters(s3_run.settings) if token.search(raw)]
    with open_online_store(s3_run.settings.online_store) as store:
        assert store.get(GAME, s3_run.erased_stored) is None


@pytest.mark.spark
@pytest.mark.erasure_proof
def test_on_s3_the_model_is_listed_for_retraining(s3_run):
    assert [(m["model"], m["version"]) for m in s3_run.report.retrain] == [("store_offer", s3_run.trained.version)]


def test_sqlite_scrub_leaves_no_deleted_bytes(tmp_path: Path):
    from pipelines.forget import scrub_sqlite

    path = tmp_path / "x.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (v TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [("secret-player-42",), ("keep-me",)])
    conn.execute("DELETE FROM t WHERE v = 'secret-player-42'")
    conn.close()

    scrub_sqlite(str(path))

    data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"secret-player-42" not in data and b"keep-me" in data
