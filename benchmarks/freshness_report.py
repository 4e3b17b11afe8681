"""What ``benchmarks/freshness.py`` measured, summarised and printed: freshness, hops,
micro-batches, backlog, the ramp, CPU and the targets, as rich tables and sentences built from
the figures (none is written in advance)."""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.freshness_load import PhaseResult
from benchmarks.freshness_probe import Seen
from benchmarks.freshness_stats import (
    Quantiles,
    Step,
    Sustained,
    epoch_ms,
    growth_slope,
    linear_fit,
    per_second,
    quantiles,
    rate_target_verdict,
    settled_batch_ms,
    shares,
    sparkline,
    sustained_rate,
    verdict,
)

TARGET_P50_MS = 300.0
TARGET_P95_MS = 1000.0
STRETCH_P50_MS = 200.0
TARGET_RATE = 5000.0
MIN_FIT_BATCHES = 5
"""Fewer micro-batches than this give no fixed-cost fit (two points always fit a line)."""
HOPS: tuple[tuple[str, str], ...] = (
    ("collector", "received_at → stream_at: validation and the durable stream write"),
    ("wait for a batch", "stream_at → start of the micro-batch that read it: the batch in flight"),
    ("Spark plans the batch", "batch start → foreachBatch starts: latest offsets, offset log, query planning"),
    ("Spark reads the batch", "foreachBatch start → its first fold: erasure list, source read, grouping, reads"),
    ("folds before its own", "the batch's first fold → processed_at: the players folded before it in its partition"),
    ("the rest, then put", "processed_at → profile_written_at: the partition's remaining folds, then its put"),
    ("read", "profile_written_at → first read showing it: the rest of the put, its commit, the poll"),
)


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
        out["Spark reads the batch"].append(first - fold_start)
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
        "Spark's planning and read": ("Spark plans the batch", "Spark reads the batch"),
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
            f"of bookkeeping around addBatch {add.mean if add else math.nan:,.0f} ms (the read and the fold)"
        )
    trigger = run.settings["trigger_ms"]
    if trigger:
        lines.append(f"trigger interval {trigger} ms: a batch waits for the next trigger, up to {trigger} ms")
    else:
        lines.append("trigger interval 0 ms: the next batch starts as soon as the last one ends, so it adds no wait")
    return lines


# --- output -----------------------------------------------------------------------------------


def load_text(avg: tuple[float, float, float]) -> str:
    return " / ".join(f"{v:.2f}" for v in avg)


def _ms(v: float) -> str:
    return "-" if math.isnan(v) else f"{v:,.0f}"


def render(run: Run, summary: Summary, console: Console) -> None:
    args = argparse.Namespace(**run.args)
    console.print(
        f"\n[bold]Freshness[/] on {os.cpu_count()} cores, load average {load_text(run.load_before)} before and "
        f"{load_text(run.load_after)} after; trigger {run.settings['trigger_ms']} ms, at most "
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
