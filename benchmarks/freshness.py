"""Event → profile freshness under a steady load, with the streaming profiles job run as a user runs it.

    .venv/bin/python benchmarks/freshness.py [--rate 5000] [--seconds 60] [--players 20000]
        [--batch-events 20] [--connections 8] [--history-days 30] [--trigger-ms MS]
        [--ramp | --no-ramp] [--ramp-steps 2500 5000 7500 10000] [--step-seconds 15] [--quick] [--out FILE]
        [--spark-conf KEY=VALUE ...] [--stream-shards N] [--keep]

In a fresh temporary work folder it starts, each in its own process, the collector
(``playerpulse serve``, ``playerpulse.gateway.Gateway``) and the profiles job (``playerpulse
stream profiles`` on the embedded SQLite stream and online store, configured by a copy of
``conf/`` whose only change is Spark's streaming progress log at INFO, so the job's own
per-batch durations land in its log; ``--spark-conf`` and ``--stream-shards`` change that copy
too, to measure a tuning without touching the defaults). Before the job starts, every player
gets the profile a 30-day simulated player has (``--history-days``; 0 starts every player from nothing), so each
fold reads and rewrites a profile of a live game's size. Once the job has committed its first
micro-batch and a warm-up has passed (``--warmup`` 60 s at up to 500 events/s: the JVM's JIT
compiler takes minutes to settle on two cores), a steady load (``benchmarks.freshness_load``:
one player's ``--batch-events`` gzip'd events per request, players in a shuffled cycle, open
loop on ``--connections`` keep-alive connections, achieved rate reported) runs for
``--seconds``, and:

- **every acknowledged batch is measured**: a poller process (``benchmarks.freshness_probe``)
  reads the player's row of the online store's SQLite file, as ``SqliteOnlineStore.get`` does
  but many players a query and only the hop stamps decoded (not through the HTTP profile API,
  whose serving cost would distort the figure), after every commit to it, until the row shows
  the batch; freshness is the time from the 202 to that read, beside the store's write stamp;
- **the hops** of each measured batch (``features.latency.HOPS`` stamps on the profile, the
  micro-batch that folded it, that batch's start from Spark's progress report, its
  ``foreachBatch`` start from the job's report and its first fold) split received → read into
  the collector, waiting for the micro-batch in flight, Spark's planning, Spark's read and
  shuffle up to the first fold, the folds ahead in the partition, the rest and the put, and
  the read;
- **micro-batches**: Spark's progress durations and the job's own batch reports
  (``{reports}/latency/profiles``), with a fit of batch time against events per batch, whose
  intercept is Spark's fixed cost per micro-batch;
- **backlog**: stream records past the newest committed batch, sampled 4× a second, as a
  sparkline of each second's peak; it grows when the slope of its troughs (the samples just
  after each commit) over a step exceeds 5% of the arrival rate;
- **the ramp** (``--ramp``, by default after the main run; off with ``--quick``): steps at
  rising rates, stopping at the first whose backlog grows; the highest rate before it is the
  sustained rate.

Targets on 2 cores (printed with met / not met, never asserted): p50 ≤ 300 ms and p95 ≤ 1 s
from acknowledgement to a profile read showing the event, 5,000 events/s without backlog
growth; stretch p50 ~200 ms. The load generator, the collector, the poller and the job share
the machine's cores, as they would not in production; the CPU each used (the job's JIT
compiling apart, from ``jstat``), the rest of the machine's and the load average are printed
with the figures. ``--quick``: 1,000 events/s for 15 s, a smoke run.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import msgspec  # noqa: E402
import yaml  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks.collector import cpu_by_process  # noqa: E402
from benchmarks.freshness_load import PhaseResult, PlayerCycle, batch_body, player_id, run_phase  # noqa: E402
from benchmarks.freshness_probe import BacklogSampler, Seen, poll_profiles  # noqa: E402
from benchmarks.freshness_stats import (  # noqa: E402
    RATE_SLACK,
    Quantiles,
    Step,
    Sustained,
    epoch_ms,
    growth_slope,
    linear_fit,
    parse_progress,
    per_second,
    quantiles,
    rate_target_verdict,
    settled_batch_ms,
    shares,
    sparkline,
    sustained_rate,
    verdict,
)
from features.config import CONF_DIR_VAR, Settings, conf_dir, load_settings  # noqa: E402

GAME = "demo"
TARGET_P50_MS = 300.0
TARGET_P95_MS = 1000.0
STRETCH_P50_MS = 200.0
TARGET_RATE = 5000.0
START_TIMEOUT_S = 300.0
"""A busy 2-core machine took over a minute to start the job's JVM and fold a first batch."""
DRAIN_TIMEOUT_S = 60.0
WARMUP_RATE = 500.0
"""The warm-up's rate at most: it is there for micro-batches to run while the JVM compiles Spark's
hot code (at 1,000 events/s a micro-batch's JVM CPU halved between the job's second and fourth
minute here, 0.82 → 0.40 CPU-s, its JIT threads taking about a quarter of a core meanwhile), not
to leave a backlog for the main run to start behind."""
MIN_FIT_BATCHES = 5
"""Fewer micro-batches than this give no fixed-cost fit (two points always fit a line)."""
PROGRESS_LOGGER = "org.apache.spark.sql.execution.streaming.runtime.ProgressReporter"
HOPS: tuple[tuple[str, str], ...] = (
    ("collector", "received_at → stream_at: validation and the durable stream write"),
    ("wait for a batch", "stream_at → start of the micro-batch that read it: the batch in flight"),
    ("Spark plans the batch", "batch start → foreachBatch starts: latest offsets, offset log, query planning"),
    ("Spark reads, shuffles", "foreachBatch start → its first fold: erasure list, source read, shuffle, profile reads"),
    ("folds before its own", "the batch's first fold → processed_at: the players folded before it in its partition"),
    ("the rest, then put", "processed_at → profile_written_at: the partition's remaining folds, then its put"),
    ("read", "profile_written_at → first read showing it: the rest of the put, its commit, the poll"),
)


# --- setting up -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=None, help="events/s of the main run (default 5000; quick 1000)")
    ap.add_argument("--seconds", type=float, default=None, help="length of the main run (default 60; quick 15)")
    ap.add_argument("--players", type=int, default=20_000, help="players the load cycles through")
    ap.add_argument("--batch-events", type=int, default=20, help="events of one player per request (an SDK flush)")
    ap.add_argument("--connections", type=int, default=8, help="keep-alive connections of the load generator")
    ap.add_argument("--history-days", type=int, default=30, help="days of simulated history in every profile (0: none)")
    ap.add_argument(
        "--warmup",
        type=float,
        default=None,
        help=f"seconds of load at up to {WARMUP_RATE:,.0f} events/s before measuring (default 60; quick 5)",
    )
    ap.add_argument("--trigger-ms", type=int, default=None, help="the job's trigger interval (default: configuration)")
    ap.add_argument(
        "--spark-conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Spark setting for the job (spark.conf in the run's configuration), to measure a tuning",
    )
    ap.add_argument("--stream-shards", type=int, default=None, help="shards of the embedded stream (default: conf)")
    ap.add_argument(
        "--ramp",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="after the main run, step the rate up until the backlog grows (default on; off with --quick)",
    )
    ap.add_argument("--ramp-steps", type=float, nargs="+", default=None, help="events/s of each ramp step")
    ap.add_argument("--step-seconds", type=float, default=None, help="length of each ramp step (default 15)")
    ap.add_argument("--quick", action="store_true", help="1,000 events/s for 15 s, no ramp: a smoke run")
    ap.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary work folder (logs, stream, profiles)")
    args = ap.parse_args(argv)
    quick = args.quick
    args.rate = args.rate if args.rate is not None else (1000.0 if quick else 5000.0)
    args.seconds = args.seconds if args.seconds is not None else (15.0 if quick else 60.0)
    args.warmup = args.warmup if args.warmup is not None else (5.0 if quick else 60.0)
    args.ramp = args.ramp if args.ramp is not None else not quick
    args.ramp_steps = args.ramp_steps or ([1000.0, 2000.0, 3000.0] if quick else [2500.0, 5000.0, 7500.0, 10000.0])
    args.step_seconds = args.step_seconds if args.step_seconds is not None else (8.0 if quick else 15.0)
    for item in args.spark_conf:
        if "=" not in item:
            ap.error(f"--spark-conf takes KEY=VALUE, not {item!r}")
    if args.rate <= 0 or args.seconds <= 0 or args.batch_events < 1 or args.connections < 1 or args.players < 1:
        ap.error("--rate, --seconds, --batch-events, --connections and --players must be positive")
    return args


def bench_conf(tmp: Path, spark_conf: list[str], shards: int | None) -> Path:
    """A copy of ``conf/`` whose Spark log also carries each micro-batch's progress report; with
    ``spark_conf`` (``KEY=VALUE``) and ``shards``, ``local.yaml`` changed only in those."""
    conf = tmp / "conf"
    shutil.copytree(conf_dir(), conf)
    log4j = conf / "log4j2.properties"
    log4j.write_text(
        log4j.read_text()
        + "\n# benchmarks/freshness.py: each micro-batch's progress report (durations, rows, offsets)\n"
        + f"logger.progress.name = {PROGRESS_LOGGER}\nlogger.progress.level = info\n"
    )
    if spark_conf or shards is not None:
        local = yaml.safe_load((conf / "local.yaml").read_text())
        if spark_conf:
            extra = dict(item.split("=", 1) for item in spark_conf)
            local.setdefault("spark", {})["conf"] = {**(local["spark"].get("conf") or {}), **extra}
        if shards is not None:
            local["stream"]["shards"] = shards
        (conf / "local.yaml").write_text(yaml.safe_dump(local, sort_keys=False))
    return conf


def seed_history(settings: Settings, players: int, days: int) -> int:
    """Give every player the profile a simulated player with ``days`` of history has (the
    median player of a small simulated world, folded by the job's own ``fold_player``), minus
    its stream watermark: the job then reads and rewrites profiles of a live game's size.
    Returns the profile's encoded size in bytes (0 when ``days`` is 0)."""
    if days <= 0:
        return 0
    from features.contract import now_ms
    from features.definitions import FeatureUnion, online_union
    from features.online import open_online_store
    from features.online.base import encode_profile
    from pipelines.profile_updates import APPLIED_KEY, UpdateContext, fold_player
    from playerpulse.simulation import simulate

    now = now_ms()
    tomorrow = datetime.fromtimestamp((now // 86_400_000 + 1) * 86_400_000 / 1000, tz=UTC)
    sim = simulate(12, days, 7, end=tomorrow)
    events = sim.events[sim.events["time_ms"] <= now - 60_000]
    counts = events.groupby("player_id").size().sort_values()
    median_player = counts.index[len(counts) // 2]
    mine = events[events["player_id"] == median_player].sort_values("time_ms")
    rows = [
        {
            "event_id": eid,
            "event_type": etype,
            "event_time": int(t),
            "sent_at": None,
            "received_at": int(t),
            "stream_at": int(t),
            "properties": props or {},
            "stream_shard": "0",
            "stream_position": str(i + 1),
        }
        for i, (eid, etype, props, t) in enumerate(
            zip(mine["event_id"], mine["event_type"], mine["properties"], mine["time_ms"], strict=True)
        )
    ]
    sets = online_union(None).sets
    ctx = UpdateContext(
        online_store="{}",
        feature_sets=sets,
        state_days=settings.streaming.state_days,
        dedup_ids=settings.streaming.dedup_ids,
        checkpoint="benchmarks/freshness seed",
        batch_id=0,
        late_after_days=settings.silver.late_after_days,
    )
    template, _ = fold_player((GAME, "template"), None, rows, FeatureUnion(sets), ctx, now)
    assert template is not None
    template.state.pop(APPLIED_KEY, None)  # else the job would skip its first stream positions
    with open_online_store(settings.online_store) as store:
        chunk = 2000
        for first in range(0, players, chunk):
            store.put(
                [
                    msgspec.structs.replace(template, player_id=player_id(i), timestamps=dict(template.timestamps))
                    for i in range(first, min(players, first + chunk))
                ]
            )
    return len(encode_profile(template))


@dataclass
class JobProcess:
    """``playerpulse stream profiles`` in its own process (and session), output in ``log``."""

    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout_s: float = 90.0) -> int | None:
        """Ctrl-C, as a user stops it (between micro-batches); SIGKILL to its own process group
        if it has not exited within ``timeout_s``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


def start_job(conf: Path, workdir: Path, trigger_ms: int | None) -> JobProcess:
    log = workdir / "logs" / "profiles-job.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "playerpulse", "stream", "profiles", "--env", "local", "--workdir", str(workdir)]
    if trigger_ms is not None:
        cmd += ["--trigger-ms", str(trigger_ms)]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        CONF_DIR_VAR: str(conf),
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return JobProcess(process, log)


def wait_for_first_batch(url: str, sampler: BacklogSampler, job: JobProcess, console: Console) -> float:
    """Send a probe batch every two seconds until the job has committed a micro-batch; the
    seconds that took (the job's start-up)."""
    began = time.monotonic()
    probes = 0
    with httpx.Client(base_url=url, timeout=30) as client:
        while not sampler.committed_ms:
            if job.process.poll() is not None:
                raise SystemExit(f"the profiles job exited ({job.process.returncode}):\n{job.output()[-3000:]}")
            if time.monotonic() - began > START_TIMEOUT_S:
                raise SystemExit(f"the profiles job committed no batch within {START_TIMEOUT_S:.0f} s; see {job.log}")
            if probes <= (time.monotonic() - began) / 2:
                body = batch_body(f"probe-{probes}", 1, time.time_ns() // 1_000_000)
                client.post(
                    "/v1/events",
                    content=body,
                    headers={
                        "Authorization": "Bearer pp-demo-key-local-only",
                        "Content-Type": "application/json",
                        "Content-Encoding": "gzip",
                    },
                ).raise_for_status()
                probes += 1
            time.sleep(0.1)
    took = time.monotonic() - began
    console.print(f"the profiles job committed its first micro-batch {took:.0f} s after the collector was up")
    return took


def wait_drained(sampler: BacklogSampler, timeout_s: float, since_ms: float) -> bool:
    """Wait until a backlog sample taken after ``since_ms`` is empty."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        last = sampler.latest()
        if last is not None and last.at_ms > since_ms and last.records == 0:
            return True
        time.sleep(0.1)
    return False


def jvm_of(pid: int) -> int | None:
    """The pid of the ``java`` process ``pid`` started (the Spark driver of the job), if any."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        if name == "java" and int(rest[1]) == pid:
            return int(entry)
    return None


def jit_compile_s(pid: int | None) -> float | None:
    """Seconds the JVM ``pid`` has spent JIT-compiling so far (``jstat -compiler``, from the
    JDK); ``None`` without a JVM or jstat."""
    jstat = shutil.which("jstat")
    if pid is None or jstat is None:
        return None
    try:
        out = subprocess.run([jstat, "-compiler", str(pid)], capture_output=True, text=True, timeout=30).stdout
        return float(out.splitlines()[1].split()[3])
    except (OSError, subprocess.SubprocessError, IndexError, ValueError):
        return None


def machine_busy_s() -> float:
    """CPU-seconds the whole machine has been busy since boot (``/proc/stat``), for the share
    that processes other than the benchmark's took during a run."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(v) for v in fields[:8]]
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Run:
    """Everything measured, before it is summarised."""

    args: dict[str, Any]
    settings: dict[str, Any]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    startup_s: float = math.nan
    profile_bytes: int = 0
    phases: list[PhaseResult] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    unresolved: int = 0
    poll_reads: int = 0
    poll_read_s: float = 0.0
    backlog: list[tuple[float, int]] = field(default_factory=list)
    """``(epoch ms, records)`` samples."""
    planned_ms: dict[int, float] = field(default_factory=dict)
    committed_ms: dict[int, float] = field(default_factory=dict)
    progress: list[dict] = field(default_factory=list)
    reports: list[dict] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)
    """CPU-seconds each process used during the main run (and the machine's other processes)."""
    job_exit: int | None = None
    ramp_stopped: str = ""
    jit_s: float | None = None
    """Seconds the job's JVM spent JIT-compiling during the main run (``jstat``)."""


def run_benchmark(args: argparse.Namespace, console: Console) -> Run:
    tmp = Path(tempfile.mkdtemp(prefix="pp-fresh-"))
    conf = bench_conf(tmp, args.spark_conf, args.stream_shards)
    os.environ[CONF_DIR_VAR] = str(conf)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    workdir = tmp / "var"
    settings = load_settings("local", workdir)
    trigger = args.trigger_ms if args.trigger_ms is not None else settings.streaming.trigger_ms
    run = Run(
        args={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        settings={
            "trigger_ms": trigger,
            "max_records_per_batch": settings.streaming.max_records_per_batch,
            "shards": getattr(settings.stream, "shards", None),
            "spark_master": settings.spark.master,
            "spark_conf": dict(settings.spark.conf),
            "workdir": str(workdir),
        },
        load_before=os.getloadavg(),
    )
    from playerpulse.gateway import Gateway

    console.print(f"work folder {workdir}; load average {_load(run.load_before)}")
    run.profile_bytes = seed_history(settings, args.players, args.history_days)
    if run.profile_bytes:
        console.print(
            f"seeded {args.players:,} profiles of {args.history_days} simulated days ({run.profile_bytes:,} bytes each)"
        )
    checkpoint = Path(settings.lake.checkpoints) / "profiles"
    gateway = Gateway(settings)
    job: JobProcess | None = None
    ctx = mp.get_context("spawn")
    inbox, outbox, pending, stop = ctx.Queue(), ctx.Queue(), ctx.Value("i", 0), ctx.Event()
    poller = ctx.Process(
        target=poll_profiles,
        args=(settings.online_store.path, str(checkpoint), inbox, outbox, pending, stop),
        daemon=True,
    )
    sampler = BacklogSampler(settings.stream.path, settings.stream.shards, checkpoint)
    try:
        gateway.start()
        job = start_job(conf, workdir, args.trigger_ms)
        sampler.start()
        poller.start()
        run.startup_s = wait_for_first_batch(gateway.url, sampler, job, console)
        cycle = PlayerCycle(args.players)
        if args.warmup > 0:
            rate = min(args.rate, WARMUP_RATE)
            console.print(f"warm-up: {rate:,.0f} events/s for {args.warmup:g} s (the JVM compiles Spark's hot code)")
            warm = run_phase("warm-up", gateway.url, rate, args.warmup, args.batch_events, args.connections, cycle)
            run.phases.append(warm)
            wait_drained(sampler, DRAIN_TIMEOUT_S, warm.ended_ms)

        def tagged(player: str, sent_ms: int, acked_ms: float) -> None:
            inbox.put((player, sent_ms, acked_ms))

        procs = {"collector": gateway.pid, "profiles job (JVM, Python workers)": job.process.pid, "poller": poller.pid}
        cpu_before = {name: sum(cpu_by_process(pid).values()) for name, pid in procs.items() if pid}
        jvm = jvm_of(job.process.pid)
        jit_before = jit_compile_s(jvm)
        self_before, busy_before = time.process_time(), machine_busy_s()
        console.print(f"main run: {args.rate:,.0f} events/s for {args.seconds:g} s, every batch measured")
        main = run_phase(
            "main", gateway.url, args.rate, args.seconds, args.batch_events, args.connections, cycle, tagged
        )
        run.phases.append(main)
        cpu_after = {name: sum(cpu_by_process(pid).values()) for name, pid in procs.items() if pid}
        run.cpu_s = {name: cpu_after.get(name, 0.0) - before for name, before in cpu_before.items()}
        run.cpu_s["load generator and sampler (this process)"] = time.process_time() - self_before
        run.cpu_s["everything else on the machine"] = (machine_busy_s() - busy_before) - sum(run.cpu_s.values())
        run.cpu_s["wall seconds"] = max(args.seconds, (main.ended_ms - main.started_ms) / 1000)
        jit_after = jit_compile_s(jvm)
        if jit_before is not None and jit_after is not None:
            run.jit_s = jit_after - jit_before
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while pending.value > 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        wait_drained(sampler, DRAIN_TIMEOUT_S, main.ended_ms)
        if args.ramp:
            run.ramp_stopped = ramp(args, gateway.url, cycle, sampler, run, console)
    finally:
        stop.set()
        if poller.is_alive():
            try:
                seen, run.unresolved, run.poll_reads, run.poll_read_s = outbox.get(timeout=30)
                run.seen = [Seen(*s) for s in seen]
            except Exception as exc:  # the poller died: the figures then say that nothing was seen
                console.print(f"[red]the poller returned nothing[/]: {exc!r}")
            poller.join(10)
        sampler.stop()
        if job is not None:
            run.job_exit = job.stop()
        gateway.stop()
    run.load_after = os.getloadavg()
    run.backlog = [(s.at_ms, s.records) for s in sampler.samples]
    run.planned_ms, run.committed_ms = sampler.planned_ms, sampler.committed_ms
    run.progress = parse_progress(job.output()) if job is not None else []
    from pipelines.profiles_stream import read_latency_reports

    run.reports = read_latency_reports(settings)
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        console.print(f"kept {tmp}")
    return run


def ramp(
    args: argparse.Namespace, url: str, cycle: PlayerCycle, sampler: BacklogSampler, run: Run, console: Console
) -> str:
    """Step the rate up; stop at the first step whose backlog grew. Returns why it stopped."""
    for rate in args.ramp_steps:
        step = run_phase(
            f"ramp {rate:,.0f}/s", url, rate, args.step_seconds, args.batch_events, args.connections, cycle
        )
        run.phases.append(step)
        backlog = [(s.at_ms, s.records) for s in sampler.samples]
        measured = phase_step(step, backlog, list(sampler.committed_ms.values()), args.batch_events)
        console.print(
            f"ramp step {rate:,.0f} events/s: achieved {step.achieved_rate:,.0f}, backlog slope "
            f"{measured.slope:+,.0f} events/s" + (" — growing" if measured.grows else "")
        )
        if measured.grows:
            return f"stopped at {rate:,.0f} events/s: the backlog grew"
        if step.achieved_rate < RATE_SLACK * rate:
            return f"stopped at {rate:,.0f} events/s: the load reached only {step.achieved_rate:,.0f} events/s"
    return "every step ran"


# --- summaries --------------------------------------------------------------------------------


def phase_samples(phase: PhaseResult, backlog: list[tuple[float, int]], batch_events: int) -> list[tuple[float, float]]:
    """``(seconds into the phase, backlog events)`` of the samples taken during ``phase``
    (every record on this stream is one batch of ``batch_events`` events)."""
    return [
        ((t - phase.started_ms) / 1000, float(n * batch_events))
        for t, n in backlog
        if phase.started_ms <= t <= phase.started_ms + phase.seconds * 1000
    ]


def phase_step(
    phase: PhaseResult, backlog: list[tuple[float, int]], commits_ms: list[float], batch_events: int
) -> Step:
    """The phase as a ramp step: its rates and its backlog's growth (``growth_slope``)."""
    commits = [(c - phase.started_ms) / 1000 for c in commits_ms if in_phase(c, phase)]
    slope = growth_slope(phase_samples(phase, backlog, batch_events), commits)
    return Step(phase.offered_rate, phase.achieved_rate, slope)


def in_phase(at_ms: float, phase: PhaseResult) -> bool:
    return phase.started_ms <= at_ms <= phase.started_ms + phase.seconds * 1000


def batch_starts(run: Run) -> tuple[dict[int, float], str]:
    """Each micro-batch's start (epoch ms): Spark's progress ``timestamp`` (the trigger), else
    the mtime of its offsets file (after planning and the offset-log write)."""
    starts = {int(p["batchId"]): epoch_ms(p["timestamp"]) for p in run.progress if "timestamp" in p}
    if starts:
        return starts, "Spark's progress timestamp"
    return dict(run.planned_ms), "offsets file written (progress log not found)"


def hop_values(run: Run) -> dict[str, list[float]]:
    """Each hop's latency (ms) of every measured batch whose stamps and micro-batch are known.

    A micro-batch's first fold is the earliest ``processed_at`` among the batches it folded
    (every main-run batch is measured, so that is its first player's, or near it): it splits
    Spark's work before any fold from the folds of the players ahead in the same partition."""
    starts, _ = batch_starts(run)
    fold_starts = {int(r["batch"]): r["at"] - r["batch_ms"] for r in run.reports if "at" in r and "batch_ms" in r}
    first_fold: dict[int, float] = {}
    for s in run.seen:
        processed = s.timestamps.get("processed_at")
        if s.batch is not None and processed is not None:
            first_fold[s.batch] = min(first_fold.get(s.batch, processed), processed)
    out: dict[str, list[float]] = {name: [] for name, _ in HOPS}
    for s in run.seen:
        ts = s.timestamps
        received, stream, processed = ts.get("received_at"), ts.get("stream_at"), ts.get("processed_at")
        written = ts.get("profile_written_at")
        start, fold_start, first = (
            (starts.get(s.batch), fold_starts.get(s.batch), first_fold.get(s.batch))
            if s.batch is not None
            else (None, None, None)
        )
        if None in (received, stream, processed, written, start, fold_start, first):
            continue
        out["collector"].append(stream - received)
        out["wait for a batch"].append(start - stream)
        out["Spark plans the batch"].append(fold_start - start)
        out["Spark reads, shuffles"].append(first - fold_start)
        out["folds before its own"].append(processed - first)
        out["the rest, then put"].append(written - processed)
        out["read"].append(s.seen_ms - written)
    return out


@dataclass
class Summary:
    freshness: dict[str, Quantiles]
    hops: dict[str, Quantiles]
    hop_shares: dict[str, float]
    batch_source: str
    durations: dict[str, Quantiles]
    batch_events: Quantiles
    fixed_ms: float
    per_event_us: float
    batches_in_main: int
    fitted: int
    sweep: Quantiles
    steps: list[tuple[PhaseResult, Step, Quantiles]]
    main_step: Step
    sustained: Sustained
    backlog_lines: list[tuple[str, list[float]]]
    targets: list[tuple[str, str, str]]
    dominates: list[str]


def summarise(run: Run) -> Summary:
    args = argparse.Namespace(**run.args)
    main = next(p for p in run.phases if p.name == "main")
    seen = run.seen
    freshness = {
        "202 → a profile read shows it (poller)": quantiles(s.seen_ms - s.acked_ms for s in seen),
        "202 → profile written (store's stamp)": quantiles(
            s.timestamps["profile_written_at"] - s.acked_ms for s in seen if "profile_written_at" in s.timestamps
        ),
        "received_at → profile written (job's own report)": quantiles(
            v for r in run.reports if r.get("batch") in {s.batch for s in seen} for v in r.get("latency_ms", [])
        ),
    }
    sweep = quantiles(s.seen_ms - s.noticed_ms for s in seen)
    hops = hop_values(run)
    hop_q = {name: quantiles(v) for name, v in hops.items()}
    hop_shares = shares({name: q.mean for name, q in hop_q.items()})
    _, source = batch_starts(run)

    # the micro-batches that folded the main run's batches: the ones its freshness waited on
    main_batches = {s.batch for s in seen if s.batch is not None}
    main_progress = [p for p in run.progress if p.get("batchId") in main_batches and "timestamp" in p]
    keys: list[str] = []
    for p in main_progress:
        keys += [k for k in p.get("durationMs", {}) if k not in keys]
    order = ["triggerExecution", "latestOffset", "walCommit", "queryPlanning", "getBatch", "addBatch", "commitOffsets"]
    keys.sort(key=lambda k: order.index(k) if k in order else len(order))
    durations = {k: quantiles(p["durationMs"][k] for p in main_progress if k in p.get("durationMs", {})) for k in keys}
    main_reports = [r for r in run.reports if r.get("batch") in main_batches]
    durations["foreachBatch (job's report)"] = quantiles(r["batch_ms"] for r in main_reports)
    by_id = {int(p["batchId"]): epoch_ms(p["timestamp"]) for p in run.progress if "timestamp" in p}
    cadence = [by_id[b + 1] - by_id[b] for b in sorted(main_batches) if b in by_id and b + 1 in by_id]
    if cadence:
        durations["start to next start"] = quantiles(cadence)
    rows_per_batch = [float(p.get("numInputRows", 0)) for p in main_progress] or [
        float(r.get("events_applied", 0)) for r in main_reports
    ]
    # the fit takes every batch from the main run on (the ramp's add sizes); the start-up and
    # warm-up batches (JVM, Python workers still warming) are left out
    fit_points = [
        (float(p.get("numInputRows", 0)), float(p["durationMs"]["triggerExecution"]))
        for p in run.progress
        if "triggerExecution" in p.get("durationMs", {})
        and "timestamp" in p
        and epoch_ms(p["timestamp"]) >= main.started_ms
    ]
    fixed_ms, per_event_ms = linear_fit(fit_points) if len(fit_points) >= MIN_FIT_BATCHES else (math.nan, math.nan)

    ramp_phases = [p for p in run.phases if p.name.startswith("ramp")]
    steps = [
        (
            p,
            phase_step(p, run.backlog, list(run.committed_ms.values()), args.batch_events),
            quantiles(v for r in run.reports if in_phase(r.get("at", 0), p) for v in r.get("latency_ms", [])),
        )
        for p in ramp_phases
    ]
    main_step = phase_step(main, run.backlog, list(run.committed_ms.values()), args.batch_events)
    sustained = sustained_rate([s for _, s, _ in steps])
    backlog_lines = [
        (p.name, per_second(phase_samples(p, run.backlog, args.batch_events), 0.0))
        for p in run.phases
        if p.name != "warm-up"
    ]

    observed = freshness["202 → a profile read shows it (poller)"]
    rate_verdict = rate_target_verdict(main_step, sustained, TARGET_RATE)
    if rate_verdict == "not tested":
        rate_verdict = f"not tested (main run at {main.achieved_rate:,.0f} events/s)"
    elif rate_verdict == "mixed":
        rate_verdict = "mixed: at its limit (one window held the rate, another fell behind)"
    sustained_text = f"main run {main.achieved_rate:,.0f} events/s: backlog slope {main_step.slope:+,.0f} events/s" + (
        (f"; ramp sustained {sustained.rate:,.0f}" if sustained.rate is not None else "")
        + (f", grew at {sustained.first_growing:,.0f}" if sustained.first_growing is not None else "")
    )
    targets = [
        (f"p50 ≤ {TARGET_P50_MS:.0f} ms (202 → read)", f"{_ms(observed.p50)} ms", verdict(observed.p50, TARGET_P50_MS)),
        (
            f"p95 ≤ {TARGET_P95_MS:,.0f} ms (202 → read)",
            f"{_ms(observed.p95)} ms",
            verdict(observed.p95, TARGET_P95_MS),
        ),
        (f"{TARGET_RATE:,.0f} events/s without backlog growth", sustained_text, rate_verdict),
        (f"stretch: p50 ≤ {STRETCH_P50_MS:.0f} ms", f"{_ms(observed.p50)} ms", verdict(observed.p50, STRETCH_P50_MS)),
    ]
    return Summary(
        freshness=freshness,
        hops=hop_q,
        hop_shares=hop_shares,
        batch_source=source,
        durations=durations,
        batch_events=quantiles(rows_per_batch),
        fixed_ms=fixed_ms,
        per_event_us=per_event_ms * 1000,
        batches_in_main=len(main_progress) or len(main_reports),
        fitted=len(fit_points),
        sweep=sweep,
        steps=steps,
        main_step=main_step,
        sustained=sustained,
        backlog_lines=backlog_lines,
        targets=targets,
        dominates=dominance(run, hop_q, hop_shares, durations, fixed_ms, len(fit_points))
        + busy_share_lines(main.achieved_rate, fixed_ms, per_event_ms, durations.get("triggerExecution")),
    )


def busy_share_lines(rate: float, fixed_ms: float, per_event_ms: float, batch: Quantiles | None) -> list[str]:
    """The fit's reading of the batch length (``settled_batch_ms``), beside the measured one."""
    settled = settled_batch_ms(fixed_ms, per_event_ms, rate)
    if math.isnan(settled) or batch is None or not batch.n:
        return []
    busy = rate * per_event_ms / 1000
    if math.isinf(settled):
        return [f"at {rate:,.0f} events/s the fitted per-event cost alone fills each second ({busy:.0%}): behind"]
    return [
        f"at {rate:,.0f} events/s the per-event cost ({per_event_ms * 1000:,.0f} µs) keeps the job busy {busy:.0%} "
        f"of each second, so a batch settles near {fixed_ms:,.0f} / (1 - {busy:.2f}) = {settled:,.0f} ms "
        f"(measured p50 {batch.p50:,.0f} ms), and an event waits for about one and a half of them"
    ]


def dominance(
    run: Run,
    hops: dict[str, Quantiles],
    hop_shares: dict[str, float],
    durations: dict[str, Quantiles],
    fixed_ms: float,
    fitted: int,
) -> list[str]:
    """What the measured figures say takes the time, in sentences built from them."""
    if not hop_shares:
        return ["no measured batch carried every hop stamp: nothing to attribute"]
    top = max(hop_shares, key=hop_shares.__getitem__)
    lines = [
        f"largest hop: {top}, {hop_shares[top]:.0%} of received → read on average "
        f"(mean {hops[top].mean:,.0f} ms; "
        + ", ".join(f"{name} {share:.0%}" for name, share in hop_shares.items() if name != top)
        + ")"
    ]
    groups = {
        "waiting for the micro-batch in flight": ("wait for a batch",),
        "Spark's planning, read and shuffle": ("Spark plans the batch", "Spark reads, shuffles"),
        "the folds and the write": ("folds before its own", "the rest, then put"),
        "the collector and the read": ("collector", "read"),
    }
    lines.append(
        "grouped: "
        + ", ".join(f"{group} {sum(hop_shares.get(h, 0.0) for h in hops_of):.0%}" for group, hops_of in groups.items())
    )
    batch = durations.get("triggerExecution")
    if batch is not None and batch.n and not math.isnan(fixed_ms):
        lines.append(
            f"a micro-batch took {batch.p50:,.0f} ms at p50 (Spark's triggerExecution); fitted over {fitted} batches, "
            f"{fixed_ms:,.0f} ms of it is fixed per batch whatever its size, i.e. "
            f"{min(1.0, max(0.0, fixed_ms / batch.p50)) if batch.p50 else math.nan:.0%} of a median batch"
        )
    spark = [k for k in ("latestOffset", "walCommit", "queryPlanning", "getBatch", "commitOffsets") if k in durations]
    if batch is not None and batch.n and spark:
        overhead = sum(durations[k].mean for k in spark)
        add = durations.get("addBatch")
        lines.append(
            f"per batch (means): {' + '.join(f'{k} {durations[k].mean:,.0f}' for k in spark)} = {overhead:,.0f} ms "
            f"of bookkeeping around addBatch {add.mean if add else math.nan:,.0f} ms (the read, shuffle and fold)"
        )
    trigger = run.settings["trigger_ms"]
    if trigger:
        lines.append(f"trigger interval {trigger} ms: a batch waits for the next trigger, up to {trigger} ms")
    else:
        lines.append("trigger interval 0 ms: the next batch starts as soon as the last one ends, so it adds no wait")
    return lines


# --- output -----------------------------------------------------------------------------------


def _load(avg: tuple[float, float, float]) -> str:
    return " / ".join(f"{v:.2f}" for v in avg)


def _ms(v: float) -> str:
    return "-" if math.isnan(v) else f"{v:,.0f}"


def render(run: Run, summary: Summary, console: Console) -> None:
    args = argparse.Namespace(**run.args)
    console.print(
        f"\n[bold]Freshness[/] on {os.cpu_count()} cores, load average {_load(run.load_before)} before and "
        f"{_load(run.load_after)} after; trigger {run.settings['trigger_ms']} ms, at most "
        f"{run.settings['max_records_per_batch']:,} records a micro-batch, {run.settings['shards']} stream shards; "
        f"{args.players:,} players, {args.batch_events} events a request, {args.connections} connections; "
        + (f"profiles seeded with {args.history_days} days ({run.profile_bytes:,} bytes)" if run.profile_bytes else "")
        + f"; job start-up {run.startup_s:.0f} s"
        + (f"; Spark settings {run.settings['spark_conf']}" if run.settings.get("spark_conf") else "")
    )
    load = Table(
        "phase", "asked events/s", "achieved events/s", "requests", "failed", "send lag p99 ms", "request p50 / p99 ms"
    )
    load.title = "Load (open loop; achieved = events the collector acknowledged, over the phase)"
    for p in run.phases:
        lag, req = quantiles(p.send_lag_ms), quantiles(p.request_ms)
        load.add_row(
            p.name,
            f"{p.offered_rate:,.0f}",
            f"{p.achieved_rate:,.0f}",
            f"{p.batches:,}",
            f"{p.failed_requests:,}",
            _ms(lag.p99),
            f"{req.p50:,.1f} / {req.p99:,.1f}",
        )
    console.print(load)

    fresh = Table("measure", "n", "p50 ms", "p95 ms", "p99 ms", "max ms")
    fresh.title = "Freshness over the main run (every acknowledged batch)"
    for name, q in summary.freshness.items():
        fresh.add_row(name, f"{q.n:,}", _ms(q.p50), _ms(q.p95), _ms(q.p99), _ms(q.max))
    console.print(fresh)
    reads = f"{run.poll_reads:,} reads, {run.poll_read_s / max(1, run.poll_reads) * 1e3:.2f} ms each"
    console.print(
        f"poller: the pending players' profiles re-read after every commit to the store ({reads}); from noticing "
        f"a commit to the read that showed a batch {_ms(summary.sweep.p50)} ms at p50, {_ms(summary.sweep.p95)} ms "
        f"at p95 (part of the read hop); {run.unresolved} batch(es) never shown"
    )

    hops = Table("hop", "what", "p50 ms", "p95 ms", "mean ms", "share of mean")
    hops.title = f"Hops of each measured batch (batch start: {summary.batch_source})"
    for name, what in HOPS:
        q = summary.hops[name]
        hops.add_row(name, what, _ms(q.p50), _ms(q.p95), _ms(q.mean), f"{summary.hop_shares.get(name, math.nan):.0%}")
    console.print(hops)

    batches = Table("per micro-batch", "p50 ms", "p95 ms", "max ms", "mean ms")
    batches.title = (
        f"The {summary.batches_in_main} micro-batches that folded the main run: {summary.batch_events.p50:,.0f} "
        f"events at p50 ({summary.batch_events.max:,.0f} max); fixed cost {_ms(summary.fixed_ms)} ms + "
        f"{summary.per_event_us:,.1f} µs an event (triggerExecution fitted on events over {summary.fitted} batches "
        "from the main run on)"
    )
    for name, q in summary.durations.items():
        batches.add_row(name, _ms(q.p50), _ms(q.p95), _ms(q.max), _ms(q.mean))
    console.print(batches)

    backlog = Table("phase", "backlog, peak of each second (events)", "peak", "slope events/s", "grows")
    backlog.title = "Backlog: stream records past the newest committed micro-batch × events a record"
    steps = {p.name: s for p, s, _ in summary.steps}
    steps["main"] = summary.main_step
    for name, series in summary.backlog_lines:
        step = steps.get(name)
        backlog.add_row(
            name,
            sparkline(series),
            f"{max(series, default=0):,.0f}",
            f"{step.slope:+,.0f}" if step else "",
            ("yes" if step.grows else "no") if step else "",
        )
    console.print(backlog)

    if summary.steps:
        ramp_table = Table(
            "step", "asked", "achieved", "backlog slope events/s", "grows", "job's received → written p50"
        )
        ramp_table.title = f"Ramp ({run.ramp_stopped})"
        for p, s, q in summary.steps:
            ramp_table.add_row(
                p.name,
                f"{s.offered:,.0f}",
                f"{s.achieved:,.0f}",
                f"{s.slope:+,.0f}",
                "yes" if s.grows else "no",
                _ms(q.p50),
            )
        console.print(ramp_table)
        sus = summary.sustained
        if sus.rate is None:
            console.print("sustained rate: the backlog grew at the first step")
        elif sus.first_growing is None:
            console.print(f"sustained rate: at least {sus.rate:,.0f} events/s (no step's backlog grew)")
        else:
            console.print(
                f"sustained rate: {sus.rate:,.0f} events/s (the backlog grew at {sus.first_growing:,.0f} events/s)"
            )

    cpu = Table("process", "CPU-s", "cores busy", "CPU µs an event")
    wall = run.cpu_s.get("wall seconds", math.nan)
    acked = next((p.acked_events for p in run.phases if p.name == "main"), 0)
    cpu.title = f"CPU during the main run ({wall:.0f} s, {acked:,} events)"
    for name, used in run.cpu_s.items():
        if name != "wall seconds":
            mine = not name.startswith("everything else")
            per_event = f"{used / acked * 1e6:,.0f}" if acked and mine else ""
            cpu.add_row(name, f"{used:,.1f}", f"{used / wall:.2f}", per_event)
            if name.startswith("profiles job") and run.jit_s is not None:
                cpu.add_row("  its JIT compilers busy (jstat, s)", f"{run.jit_s:,.1f}", f"{run.jit_s / wall:.2f}", "")
    console.print(cpu)

    targets = Table("target (2 cores)", "measured", "verdict")
    for row in summary.targets:
        targets.add_row(*row)
    console.print(targets)
    for line in summary.dominates:
        console.print(f"• {line}")
    if run.job_exit not in (0, None):
        console.print(f"[red]the profiles job exited with {run.job_exit}[/]")


def to_json(run: Run, summary: Summary) -> dict[str, Any]:
    return {
        "args": run.args,
        "settings": run.settings,
        "load_before": run.load_before,
        "load_after": run.load_after,
        "startup_s": run.startup_s,
        "phases": [
            {"name": p.name, "offered": p.offered_rate, "achieved": p.achieved_rate, "failed": p.failed_requests}
            for p in run.phases
        ],
        "freshness_ms": {k: asdict(v) for k, v in summary.freshness.items()},
        "hops_ms": {k: asdict(v) for k, v in summary.hops.items()},
        "micro_batch_ms": {k: asdict(v) for k, v in summary.durations.items()},
        "fixed_ms_per_batch": summary.fixed_ms,
        "per_event_us": summary.per_event_us,
        "main_backlog_slope": summary.main_step.slope,
        "ramp": [{"offered": s.offered, "achieved": s.achieved, "slope": s.slope} for _, s, _ in summary.steps],
        "sustained": asdict(summary.sustained),
        "cpu_s": run.cpu_s,
        "jit_s": run.jit_s,
        "targets": summary.targets,
        "dominates": summary.dominates,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 200)
    run = run_benchmark(args, console)
    summary = summarise(run)
    render(run, summary, console)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(to_json(run, summary), indent=2, default=float))
        console.print(f"figures written to {args.out}")
    return 0 if run.job_exit in (0, None) else 1


if __name__ == "__main__":
    sys.exit(main())
