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
  grouping up to the first fold, the folds ahead in the partition, the rest and the put, and
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
The summaries and tables are ``benchmarks.freshness_report``; the arithmetic, unit-tested,
``benchmarks.freshness_stats``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import msgspec  # noqa: E402
import yaml  # noqa: E402
from rich.console import Console  # noqa: E402

from benchmarks.collector import cpu_by_process  # noqa: E402
from benchmarks.freshness_load import PlayerCycle, batch_body, player_id, run_phase  # noqa: E402
from benchmarks.freshness_probe import BacklogSampler, Seen, poll_profiles  # noqa: E402
from benchmarks.freshness_report import Run, load_text, phase_step, render, summarise, to_json  # noqa: E402
from benchmarks.freshness_stats import (  # noqa: E402
    RATE_SLACK,
    parse_progress,
)
from features.config import CONF_DIR_VAR, Settings, conf_dir, load_settings  # noqa: E402

GAME = "demo"
START_TIMEOUT_S = 300.0
"""A busy 2-core machine took over a minute to start the job's JVM and fold a first batch."""
DRAIN_TIMEOUT_S = 60.0
WARMUP_RATE = 500.0
"""The warm-up's rate at most: it is there for micro-batches to run while the JVM compiles Spark's
hot code (at 1,000 events/s a micro-batch's JVM CPU halved between the job's second and fourth
minute here, 0.82 → 0.40 CPU-s, its JIT threads taking about a quarter of a core meanwhile), not
to leave a backlog for the main run to start behind."""
PROGRESS_LOGGER = "org.apache.spark.sql.execution.streaming.runtime.ProgressReporter"


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

    console.print(f"work folder {workdir}; load average {load_text(run.load_before)}")
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
