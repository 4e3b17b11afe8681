"""The profiles job as a user runs it (its own process): stopped with Ctrl-C, and killed with -9.

Each test starts ``python -m pipelines.profiles_stream`` in a subprocess (its own driver and JVM,
output captured to a file), feeds the embedded stream from here and watches the job's
checkpoint. Only the kill test also uses this run's Spark session, for its reference run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from features.config import Settings, conf_dir, load_settings, repo_root
from features.contract import now_ms
from features.definitions import PLAYER_ACTIVITY_V1
from features.online import open_online_store
from features.profile_state import ProfileState
from features.streams import StreamRecord, encode_batch, open_stream
from pipelines.profiles_stream import start_profiles_stream

pytestmark = pytest.mark.spark
START_S = 90.0
"""How long a job gets to start its JVM and run a first micro-batch on a busy 2-core machine."""


@dataclass
class JobProcess:
    """One run of the profiles job in its own process, its output (driver and JVM) in ``log``."""

    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout_s: float) -> int:
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"the job did not exit within {timeout_s:.0f} s:\n{self.output()[-3000:]}") from None


def job_conf(tmp_path: Path, **streaming: Any) -> Path:
    """A configuration folder: ``conf/local.yaml`` with ``streaming`` keys changed."""
    folder = tmp_path / "conf"
    folder.mkdir(exist_ok=True)
    raw = yaml.safe_load((conf_dir() / "local.yaml").read_text())
    raw["streaming"] = {**raw["streaming"], **streaming}
    (folder / "local.yaml").write_text(yaml.safe_dump(raw))
    (folder / "log4j2.properties").write_text((conf_dir() / "log4j2.properties").read_text())
    return folder


def start_job(conf: Path, workdir: Path, *args: str) -> JobProcess:
    """``python -m pipelines.profiles_stream --workdir …`` from the repository, as a user starts it."""
    log = workdir.parent / f"job-{time.monotonic_ns()}.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(repo_root()),
        "PLAYERPULSE_CONF_DIR": str(conf),
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.profiles_stream", "--env", "local", "--workdir", str(workdir), *args],
            cwd=repo_root(),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return JobProcess(process, log)


def event(player: str, n: int) -> dict[str, Any]:
    received = now_ms()
    return {
        "event_id": str(uuid.uuid4()),
        "schema_version": 1,
        "event_type": ("session_start", "match_end", "purchase", "store_view")[n % 4],
        "player_id": player,
        "game_id": "demo",
        "event_time": received - 60_000 - n,
        "sent_at": received - 20,
        "received_at": received,
        "platform": "ios",
        "app_version": "1.0",
        "country": "FR",
        "session_id": None,
        "properties": {"sku": "gems", "price_usd": 1.5} if n % 4 == 2 else {"won": n % 3 == 0},
    }


def records(count: int, players: int, first: int = 0) -> list[StreamRecord]:
    """``count`` stream records of 5 events each, spread over ``players`` players."""
    out = []
    for r in range(first, first + count):
        player = f"p{r % players}"
        out.append(StreamRecord(player, encode_batch([event(player, r * 5 + i) for i in range(5)], now_ms())))
    return out


def put(settings: Settings, batch: list[StreamRecord]) -> None:
    with open_stream(settings.stream) as stream:
        stream.put(batch)


@dataclass
class Feeder:
    """A steady supply of events on the stream, from a thread, until stopped."""

    settings: Settings
    stop: threading.Event
    thread: threading.Thread | None = None

    def run(self) -> None:
        sent = 0
        while not self.stop.is_set():
            put(self.settings, records(10, players=50, first=sent))
            sent += 10
            time.sleep(0.02)


@pytest.fixture
def feeder(settings: Settings) -> Iterator[Feeder]:
    f = Feeder(settings, threading.Event())
    f.thread = threading.Thread(target=f.run, daemon=True)
    f.thread.start()
    yield f
    f.stop.set()
    f.thread.join(10)


def wait_for(condition, timeout_s: float, job: JobProcess, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if job.process.poll() is not None:
            raise AssertionError(f"the job exited ({job.process.returncode}) before {what}:\n{job.output()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout_s:.0f} s:\n{job.output()[-3000:]}")
        time.sleep(0.01)


def checkpoint_batches(checkpoint: Path, log: str) -> set[int]:
    folder = checkpoint / log
    return {int(p.name) for p in folder.glob("[0-9]*")} if folder.is_dir() else set()


def batch_in_flight(checkpoint: Path, after_commits: int) -> bool:
    """Whether a micro-batch is planned (in ``offsets/``) but not committed, after ``after_commits`` were."""
    committed = checkpoint_batches(checkpoint, "commits")
    return len(committed) >= after_commits and bool(checkpoint_batches(checkpoint, "offsets") - committed)


def test_ctrl_c_stops_the_running_job_promptly_without_a_java_stack_overflow(settings, feeder, tmp_path):
    job = start_job(job_conf(tmp_path, max_records_per_batch=40), Path(settings.workdir), "--trigger-ms", "0")
    checkpoint = Path(settings.lake.checkpoints) / "profiles"
    try:
        wait_for(lambda: batch_in_flight(checkpoint, 2), START_S, job, "micro-batch in flight after two committed")
        time.sleep(0.5)  # into the batch's foreachBatch (about 1.5 s here)
        job.process.send_signal(signal.SIGINT)  # Ctrl-C
        asked = time.monotonic()
        returncode = job.wait(60)
        took = time.monotonic() - asked
    finally:
        if job.process.poll() is None:
            job.process.kill()
    output = job.output()

    assert "StackOverflowError" not in output, output[-5000:]
    assert "terminated with error" not in output, output[-5000:]
    assert returncode == 0, output[-3000:]
    assert "stopping the profiles stream" in output
    assert took < 30, f"the job took {took:.1f} s to stop"


def features_by_player(settings: Settings, players: int, as_of: int) -> dict[str, dict[str, Any]]:
    """Every player's features as serving computes them at ``as_of`` (from the folded state)."""
    keys = [("demo", f"p{i}") for i in range(players)]
    with open_online_store(settings.online_store) as store:
        found = store.get_many(keys)
    return {pid: ProfileState.from_dict(p.state).features(PLAYER_ACTIVITY_V1, as_of) for (_, pid), p in found.items()}


def run_clean(spark, settings: Settings) -> None:
    """The reference: the same job, uninterrupted, in this test run's Spark session."""
    query = start_profiles_stream(spark, settings, available_now=True)
    try:
        assert query.awaitTermination(120), "the clean run did not finish"
    finally:
        query.stop()


def test_a_job_killed_with_sigkill_mid_batch_and_restarted_ends_with_the_profiles_of_a_clean_run(
    spark, settings, tmp_path
):
    conf = job_conf(tmp_path, max_records_per_batch=60)
    supply = records(240, players=60)  # four micro-batches of 15 records a shard
    clean = load_settings("local", tmp_path / "clean")
    put(settings, supply)
    put(clean, supply)
    run_clean(spark, clean)
    checkpoint = Path(settings.lake.checkpoints) / "profiles"

    crashed = start_job(conf, Path(settings.workdir), "--trigger-ms", "0")
    try:
        wait_for(lambda: batch_in_flight(checkpoint, 1), START_S, crashed, "micro-batch in flight after one committed")
        crashed.process.send_signal(signal.SIGKILL)
        crashed.process.wait(30)
    finally:
        if crashed.process.poll() is None:
            crashed.process.kill()
    in_flight = checkpoint_batches(checkpoint, "offsets") - checkpoint_batches(checkpoint, "commits")
    assert in_flight, "the kill did not land in a micro-batch"

    restarted = start_job(conf, Path(settings.workdir), "--available-now")  # runs until it has caught up
    assert restarted.wait(START_S) == 0, restarted.output()[-3000:]

    as_of = now_ms()
    after_crash, clean_run = features_by_player(settings, 60, as_of), features_by_player(clean, 60, as_of)
    assert len(clean_run) == 60
    assert after_crash == clean_run
