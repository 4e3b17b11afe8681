"""The streaming profiles job: every player's online profile within about a second of the event.

    PYSPARK_PYTHON=.venv/bin/python .venv/bin/spark-submit --jars "$(ls jvm/jars/*.jar | paste -sd, -)" \\
        pipelines/profiles_stream.py --env local --workdir ./var [--trigger-ms 0] [--available-now]

(``--jars``: under spark-submit the JVM is up before ``get_spark`` runs, so the Delta catalog
that the session names must already be on its class path.)

It reads the event stream (``playerpulse_stream``) in micro-batches and, in ``foreachBatch``,
folds each partition's events into the online store on the executors, player by player,
``(game_id, player_id)`` (``pipelines.profile_updates``): the driver only sees one small row of
counts per partition. There is no shuffle: the stream is keyed by player and the source reads
whole shard families per partition, so a player's events of one batch are in one partition;
the partitions are packed to the session's cores, one wave of tasks per batch.
Each profile folds the inputs of every online feature set (``features.definitions.online_union``),
so serving can compute any of them; ``load_settings`` has already refused a ``streaming.state_days``
shorter than their longest window.
Nothing is written to Delta on this path: waiting for a Delta commit before the online write is
what loses sub-second freshness (shared/NOTES.md); the bronze job keeps the lake's copy of the
same stream.

Replays are harmless: a profile remembers the stream position of the newest record folded into
it, so a re-run micro-batch, or a whole replay under a fresh checkpoint, counts nothing twice.
Each micro-batch writes its counts and event→profile latencies as one small file under
``{lake reports}/latency/profiles/`` (a folder or S3: object stores cannot append, and the
driver's disk is gone after a cluster run); ``read_latency_samples`` reads them back for reports.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from functools import partial
from typing import TYPE_CHECKING

from features.config import Settings, load_settings
from features.contract import now_ms
from features.definitions import FeatureSet, online_union, retention_problem
from features.errors import ConfigError, PlayerPulseError
from features.latency import nearest_rank
from pipelines.erasure_list import ErasedPlayers, erasure_log_path
from pipelines.lake_files import list_files, read_text, write_text
from pipelines.profile_updates import (
    EVENT_FIELDS,
    PLAYER_COLUMNS,
    STATS_DDL,
    UpdateContext,
    UpdateStats,
    stats_line,
    update_partition,
)
from pipelines.stream_source import read_event_stream
from pipelines.stream_stop import (
    BatchGate,
    is_interruption,
    park_until_stopped,
    register_gate,
    stop_query,
    stop_signals,
    trimmed_interruption,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery

log = logging.getLogger("playerpulse.profiles")

QUERY_NAME = "profiles"


def latency_dir(settings: Settings) -> str:
    """Where every micro-batch leaves its latency report (``lake.reports``/latency/profiles)."""
    return f"{settings.reports_location}/latency/profiles"


class ProfileBatchWriter:
    """The ``foreachBatch`` body: runs on the driver, sends the work to the executors."""

    def __init__(self, settings: Settings, checkpoint: str, feature_sets: tuple[FeatureSet, ...] | None = None):
        self.online_store = settings.online_store.model_dump_json()
        self.streaming = settings.streaming
        self.late_after_days = settings.silver.late_after_days
        self.checkpoint = checkpoint
        # every online set unless told (a test's own sets); the union is checked here, on the driver
        self.feature_sets = online_union(feature_sets).sets
        problem = retention_problem(settings.streaming.state_days, self.feature_sets)
        if problem is not None:  # settings checked the defined sets; given ones are checked here
            raise ConfigError(f"streaming.state_days {problem}")
        self.settings = settings
        self.reports = latency_dir(settings)
        self.erased = ErasedPlayers(settings, erasure_log_path(settings))
        self.gate = BatchGate()

    def context(self, batch_id: int, erased: frozenset[str] = frozenset()) -> UpdateContext:
        return UpdateContext(
            online_store=self.online_store,
            feature_sets=self.feature_sets,
            state_days=self.streaming.state_days,
            dedup_ids=self.streaming.dedup_ids,
            checkpoint=self.checkpoint,
            batch_id=batch_id,
            late_after_days=self.late_after_days,
            erased=erased,
        )

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        """Fold the batch, unless a stop came first (``pipelines.stream_stop``): then hold it,
        uncommitted, for the stop's interrupt."""
        if not self.gate.enter():
            park_until_stopped(batch.sparkSession.sparkContext._jvm)
        try:
            self.fold(batch, batch_id)
        except Exception as err:
            if is_interruption(err):
                raise trimmed_interruption(err) from None
            raise
        finally:
            self.gate.leave()

    def fold(self, batch: DataFrame, batch_id: int) -> None:
        started = time.perf_counter()
        # checked every batch: a player erased a moment ago is never folded in again
        erased = self.erased.current(batch.sparkSession)
        # no shuffle: a partition holds every event of its players (whole shard families of a
        # stream keyed by player), so one task owns each player's read-modify-write
        rows = (
            batch.select(*PLAYER_COLUMNS, *EVENT_FIELDS)
            .mapInArrow(partial(update_partition, self.context(batch_id, erased)), STATS_DDL)
            .collect()
        )
        stats = UpdateStats.combine(r.asDict() for r in rows)
        elapsed = (time.perf_counter() - started) * 1000
        # one file per batch, named by the time it ended so that names sort oldest first
        ended = now_ms()
        location = f"{self.reports}/{ended:013d}-batch{batch_id}.jsonl"
        write_text(self.settings, location, stats_line(batch_id, stats, elapsed, ended) + "\n")
        worst = f"{max(stats.latency_ms):.0f} ms" if stats.latency_ms else "-"
        log.info(
            "batch %d: %d profiles written, %d events applied, %d duplicates, %d quarantined, "
            "%d replayed; slowest event→profile %s; batch took %.0f ms",
            batch_id,
            stats.players,
            stats.events_applied,
            stats.duplicates,
            stats.quarantined,
            stats.replayed,
            worst,
            elapsed,
        )


def start_profiles_stream(
    spark: SparkSession,
    settings: Settings,
    trigger_ms: int | None = None,
    available_now: bool = False,
    checkpoint: str | None = None,
) -> StreamingQuery:
    """Start the query; with ``available_now`` it stops once what is on the stream is folded in."""
    trigger_ms = settings.streaming.trigger_ms if trigger_ms is None else trigger_ms
    if trigger_ms < 0:
        raise ValueError(f"trigger_ms must be >= 0, got {trigger_ms}")
    location = checkpoint or settings.lake.checkpoints.rstrip("/") + "/profiles"
    events = read_event_stream(spark, settings, max_partitions=fold_partitions(spark))
    batch_writer = ProfileBatchWriter(settings, location)
    writer = events.writeStream.queryName(QUERY_NAME).foreachBatch(batch_writer).option("checkpointLocation", location)
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{trigger_ms} milliseconds")
    query = writer.start()
    register_gate(query, batch_writer.gate)
    return query


def fold_partitions(spark: SparkSession) -> int | None:
    """Partitions of a micro-batch: the session's task slots, so that every core folds and no
    task waits for a second wave (``None`` where the session has no SparkContext to ask)."""
    try:
        return int(spark.sparkContext.defaultParallelism)
    except Exception:  # Spark Connect / serverless: one partition per shard family
        return None


def stop_profiles_stream(query: StreamingQuery) -> bool:
    """Stop the query between micro-batches (``pipelines.stream_stop.stop_query``); ``False``
    when a batch outlasted the wait and was interrupted (its events are folded at the next start)."""
    stopped_cleanly = stop_query(query)
    if not stopped_cleanly:
        log.warning("the profiles stream was stopped in the middle of a micro-batch; it is run again at the next start")
    return stopped_cleanly


def run_until_interrupted(query: StreamingQuery) -> None:
    """Wait for the query to end; Ctrl-C (or SIGTERM) stops it between micro-batches."""
    with stop_signals() as requested:
        while not requested.is_set():
            if query.awaitTermination(0.5):
                return
    log.info("interrupted: stopping the profiles stream after the micro-batch in flight")
    stop_profiles_stream(query)


def read_latency_reports(settings: Settings) -> list[dict]:
    """Every micro-batch's report (counts, latencies), oldest batch first; empty before any batch."""
    reports: list[dict] = []
    for location in list_files(settings, latency_dir(settings), suffix=".jsonl"):
        reports.extend(json.loads(line) for line in read_text(settings, location).splitlines() if line.strip())
    return reports


def read_latency_samples(settings: Settings) -> list[float]:
    """Every recorded event→profile latency (ms), oldest batch first; empty before any batch."""
    return [float(v) for report in read_latency_reports(settings) for v in report.get("latency_ms", [])]


def summarise_latency(samples: list[float]) -> dict[str, float]:
    """``n``, ``p50``, ``p95``, ``max`` (nearest-rank percentiles, ms); NaN where there are none."""
    if not samples:
        return {"n": 0, "p50": math.nan, "p95": math.nan, "max": math.nan}
    return {"n": len(samples), "p50": nearest_rank(samples, 50), "p95": nearest_rank(samples, 95), "max": max(samples)}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="profiles_stream", description=__doc__.splitlines()[0])
    p.add_argument("--env", default=None, help="configuration conf/<env>.yaml (default: PLAYERPULSE_ENV or local)")
    p.add_argument("--workdir", default=None, help="work folder overriding the configuration's")
    p.add_argument("--trigger-ms", type=int, default=None, help="micro-batch interval (default: configuration)")
    p.add_argument("--available-now", action="store_true", help="fold what is on the stream, then stop")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: lake.checkpoints/profiles)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(args.env, args.workdir)
    except PlayerPulseError as exc:
        log.error("%s", exc)
        return 2
    from pipelines.session import get_spark

    spark = get_spark(settings, app_name="playerpulse-profiles")
    query = None
    try:
        query = start_profiles_stream(spark, settings, args.trigger_ms, args.available_now, args.checkpoint)
        log.info(
            "profiles stream %s started (%s); Ctrl-C to stop",
            query.id,
            "available now" if args.available_now else "continuous",
        )
        run_until_interrupted(query)
        if query.exception() is not None:
            log.error("profiles stream failed: %s", query.exception())
            return 1
    except KeyboardInterrupt:  # while the query was starting
        log.info("interrupted: stopping the profiles stream")
        if query is not None:
            stop_profiles_stream(query)
    finally:
        summary = summarise_latency(read_latency_samples(settings))
        log.info(
            "event→profile latency over %d profiles: p50 %.0f ms, p95 %.0f ms",
            summary["n"],
            summary["p50"],
            summary["p95"],
        )
        spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
