"""Erasure: `playerpulse forget` leaves nothing of a player anywhere, and everyone else intact."""

from __future__ import annotations

import gzip
import re
import sqlite3
import uuid
from pathlib import Path

import msgspec
import pytest

from features.config import Settings
from features.deadletter.base import DeadLetter, player_pattern
from features.deadletter.sqlite import SqliteDeadLetterStore
from features.streams.base import StreamRecord
from features.streams.codec import decode_batch, encode_batch
from features.streams.sqlite import SqliteStream
from pipelines.erasure_list import player_digest
from pipelines.forget import _without_player

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
        feature_set=PLAYER_ACTIVITY_V1.full_name,
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


def _send_simulation(settings: Settings, players: int, days: int) -> list[str]:
    from features.contract import now_ms
    from features.deadletter import open_dead_letter_store
    from features.streams.factory import open_stream
    from playerpulse.simulation import simulate
    from playerpulse.simulation.sender import stamped_body
    from serving.collector import Collector

    sim = simulate(players=players, days=days, seed=11)
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


def _token(player_id: str) -> re.Pattern[bytes]:
    return re.compile(player_pattern([player_id]).encode())


def _found_in_delta_history(spark, settings: Settings, game: str, player_id: str) -> list[str]:
    """Every table version still readable that holds the player, as ``table@version``."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    found = []
    for database in ("bronze", "silver", "gold"):
        for path in sorted((Path(settings.lake.root) / database).glob("*")):
            if not DeltaTable.isDeltaTable(spark, str(path)):
                continue
            versions = [r[0] for r in DeltaTable.forPath(spark, str(path)).history().select("version").collect()]
            for v in versions:
                try:
                    df = spark.read.format("delta").option("versionAsOf", v).load(str(path))
                    if "player_id" in df.columns:
                        hit = df.where((F.col("game_id") == game) & (F.col("player_id") == player_id))
                    elif "raw" in df.columns:
                        hit = df.where(F.col("raw").rlike(player_pattern([player_id])))
                    else:
                        continue
                    if hit.limit(1).count():
                        found.append(f"{database}.{path.name}@{v}")
                except Exception as exc:  # a version whose files VACUUM removed is unreachable
                    if "FileNotFound" not in str(exc) and "not found" not in str(exc).lower():
                        raise
    return found


def _found_in_files(workdir: Path, player_id: str) -> list[str]:
    """Files whose bytes (gunzipped where gzip) or Parquet values name the player."""
    import pyarrow.parquet as pq

    token = _token(player_id)
    hits = []
    for file in sorted(p for p in workdir.rglob("*") if p.is_file()):
        data = file.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        values = str(pq.read_table(file).to_pylist()).encode() if file.suffix == ".parquet" else b""
        if token.search(data) or token.search(values):
            hits.append(str(file))
    return hits


def _stream_players(settings: Settings) -> set[tuple[str, str]]:
    with SqliteStream(settings.stream) as stream:
        return {(e["game_id"], e["player_id"]) for r in stream.read_all() for e in decode_batch(r.data)[1]}


@pytest.fixture(scope="module")
def erased_run(spark, tmp_path_factory):
    """Simulate → collector → stream; bronze → silver → gold; a trained model; profiles; then forget."""
    from features.config import load_settings
    from pipelines import forget
    from pipelines.jobs import run_all
    from pipelines.profiles_stream import start_profiles_stream
    from training.train import train_model

    settings = load_settings("local", tmp_path_factory.mktemp("forget") / "var")
    players = _send_simulation(settings, players=40, days=21)
    letters = SqliteDeadLetterStore(settings.dead_letter).read(None, 100_000)
    named = [p for p in players if any(re.search(player_pattern([p]), x.raw) for _, x in letters)]
    erased = (named or players)[0]
    kept = next(p for p in players if p != erased and (GAME, p) in _stream_players(settings))
    run_all(spark, settings)
    trained = train_model(spark, settings, "store_offer")
    start_profiles_stream(spark, settings, available_now=True).awaitTermination()
    assert _found_in_files(Path(settings.workdir), erased), "the player must be somewhere before the erasure"

    report = forget.run(spark, settings, GAME, [erased], now=True)
    # a replay from the start under a fresh checkpoint must not bring the profile back
    replay = str(Path(settings.workdir) / "replay-checkpoint")
    start_profiles_stream(spark, settings, available_now=True, checkpoint=replay).awaitTermination()
    return settings, erased, kept, report, trained


@pytest.mark.spark
@pytest.mark.erasure_proof
def test_no_readable_delta_version_holds_the_erased_player(spark, erased_run):
    settings, erased, _, _, _ = erased_run
    assert _found_in_delta_history(spark, settings, GAME, erased) == []


@pytest.mark.spark
@pytest.mark.erasure_proof
def test_no_file_under_the_work_folder_names_the_erased_player(erased_run):
    settings, erased, _, _, _ = erased_run
    assert _found_in_files(Path(settings.workdir), erased) == []


@pytest.mark.spark
@pytest.mark.erasure_proof
def test_the_stream_stores_and_profile_no_longer_hold_the_erased_player(erased_run):
    from features.online import open_online_store

    settings, erased, _, _, _ = erased_run
    assert (GAME, erased) not in _stream_players(settings)
    letters = SqliteDeadLetterStore(settings.dead_letter).read(None, 100_000)
    assert not [x for _, x in letters if re.search(player_pattern([erased]), x.raw)]
    with open_online_store(settings.online_store) as store:
        assert store.get(GAME, erased) is None


@pytest.mark.spark
@pytest.mark.erasure_proof
def test_everyone_elses_data_is_still_there(spark, erased_run):
    from features.online import open_online_store
    from pipelines.session import table_path

    settings, _, kept, _, _ = erased_run
    assert (GAME, kept) in _stream_players(settings)
    with open_online_store(settings.online_store) as store:
        assert store.get(GAME, kept) is not None
    for table in ("bronze.player_events", "silver.player_events", "gold.player_daily"):
        df = spark.read.format("delta").load(table_path(settings, table))
        assert df.where(f"player_id = '{kept}'").count() > 0, table


@pytest.mark.spark
@pytest.mark.erasure_proof
def test_the_model_trained_on_the_player_is_listed_for_retraining(erased_run):
    _, _, _, report, trained = erased_run
    assert [(m["model"], m["version"]) for m in report.retrain] == [("store_offer", trained.version)]


@pytest.mark.spark
@pytest.mark.erasure_proof
def test_the_erasure_log_names_the_player_by_digest_only(spark, erased_run):
    from pipelines.erasure_list import erasure_log_path

    settings, erased, _, report, _ = erased_run
    rows = spark.read.format("delta").load(erasure_log_path(settings)).collect()
    assert {r.player_digest for r in rows} == {player_digest(GAME, erased)}
    assert {r.place for r in rows} >= {"bronze.player_events", "silver.player_events", "online_store", "stream"}
    assert report.removed["bronze.player_events"] > 0
    assert erased not in msgspec.json.encode([r.asDict() for r in rows]).decode()


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
