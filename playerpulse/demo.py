"""``playerpulse demo``: every stage of the platform, real and connected, on one machine.

Simulate a game → send its history through the collector over HTTP → bronze/silver/gold in
Delta → train and register ``store_offer`` → stream profiles into the online store → send live
events and watch profiles change → ask the model for offers → land the latency samples and the
prediction log, render the latency and model reports → summarise. Each stage runs under
its own name, so a failure says which stage broke and why.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from features.config import DEVELOPMENT_KEYS, Settings
from features.definitions import FEATURE_SETS
from features.errors import PlayerPulseError, StageFailed
from features.latency import nearest_rank
from playerpulse.gateway import Gateway

if TYPE_CHECKING:
    from training.promote import AliasMove
    from training.train import TrainResult
    from training.validate import ValidationResult

DEMO_API_KEY = DEVELOPMENT_KEYS["ingest"]
DEMO_SERVE_KEY = DEVELOPMENT_KEYS["serve"]
DEMO_MODEL = "store_offer"
"""The model whose predictions the demo times over HTTP; it trains and serves every declared one."""
DEMO_MODELS = ("store_offer", "churn_risk")
"""The shipped declarations (``conf/models/``): the demo trains, validates, promotes and asks each."""
LAKE_TABLES = (
    "bronze.player_events",
    "bronze.dead_letter",
    "silver.player_events",
    "silver.quarantine",
    "gold.player_daily",
    *(fs.table for fs in FEATURE_SETS.values()),  # each set names its table (gold.player_features_v1)
    *(f"gold.training_{name}" for name in DEMO_MODELS),
)
MODEL_FIGURES = (
    ("version", "version"),
    ("test_auc", "AUC"),
    ("auc_ceiling", "ceiling AUC"),
    ("auc_gap_to_ceiling", "gap to ceiling"),
    ("calibration_error", "calibration error"),
    ("test_top_decile_lift", "top-decile lift"),
    ("base_rate", "base rate"),
)
"""What the summary shows of each model (the gap to the ceiling as a difference, not a ratio)."""


@dataclass
class DemoSummary:
    workdir: str
    url: str = ""
    api_key: str = DEMO_API_KEY
    sent: dict[str, Any] = field(default_factory=dict)
    table_rows: dict[str, int] = field(default_factory=dict)
    online_profiles: int = 0
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each trained model's version, aliases, holdout metrics and gate decision."""
    profile_changes: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)
    event_to_profile_ms: list[float] = field(default_factory=list)
    predict_ms: list[float] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    reports: dict[str, Any] = field(default_factory=dict)
    """Stage 8: rows the monitoring job landed, the report pages written, their alert lines."""

    def print(self, console: Console) -> None:
        console.rule("[bold]PlayerPulse demo — summary")
        rows = Table("table", "rows", title="Lakehouse")
        for name, n in self.table_rows.items():
            rows.add_row(name, f"{n:,}")
        rows.add_row("online profiles", f"{self.online_profiles:,}")
        console.print(rows)

        m = Table("model", *(label for _, label in MODEL_FIGURES), title="Models (time-based holdout)")
        for name, figures in self.models.items():
            cells = [figures.get(key) for key, _ in MODEL_FIGURES]
            m.add_row(name, *("-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in cells))
        console.print(m)
        for name, figures in self.models.items():
            console.print(f"{name} gate: {figures.get('gate', '-')}", highlight=False)

        if self.profile_changes:
            t = Table("player", "feature", "before", "after", title="Profiles after live events")
            for ch in self.profile_changes:
                for feat, (a, b) in ch["changed"].items():
                    t.add_row(ch["player_id"], feat, str(a), str(b))
            console.print(t)
        if self.predictions:
            t = Table("model", "player", "score", "content", "fallback", title="POST /v1/models/MODEL/predict")
            for p in self.predictions:
                pred = dict(p["prediction"])
                score = pred.pop("score", None)
                t.add_row(
                    p["model"],
                    p["player_id"],
                    f"{score:.3f}" if isinstance(score, float) else "-",
                    json.dumps(pred),
                    str(p["fallback"]),
                )
            console.print(t)

        lat = Table("path", "p50 ms", "p95 ms", "p99 ms", "samples", title="Latency (measured)")
        for label, values in (("event → profile", self.event_to_profile_ms), ("predict (HTTP)", self.predict_ms)):
            cells = [nearest_rank(values, q) for q in (50, 95, 99)]
            lat.add_row(label, *[f"{c:.1f}" if c is not None else "-" for c in cells], str(len(values)))
        console.print(lat)
        for name, page in self.reports.get("pages", {}).items():
            console.print(f"report {name}: {page}")
        for line in self.reports.get("breaches", []):
            console.print(f"[yellow]ALERT[/] {line}", highlight=False)
        s = Table("stage", "seconds", title="Stages")
        for name, sec in self.stage_seconds.items():
            s.add_row(name, f"{sec:.1f}")
        console.print(s)
        console.print(
            f"state: {self.workdir}    API: {self.url or '(stopped)'}\n"
            f"ingest key: {self.api_key}    serve key: {DEMO_SERVE_KEY}"
        )


class _Stages:
    def __init__(self, progress: Progress, summary: DemoSummary):
        self.progress = progress
        self.summary = summary

    @contextmanager
    def stage(self, name: str) -> Iterator[int]:
        task = self.progress.add_task(name, total=None)
        started = time.perf_counter()
        try:
            yield task
        except StageFailed:
            raise
        except BaseException as exc:
            self.progress.update(task, description=f"[red]{name} (failed)")
            raise StageFailed(name, f"{type(exc).__name__}: {exc}") from exc
        finally:
            self.summary.stage_seconds[name] = time.perf_counter() - started
        self.progress.update(task, description=f"[green]{name}", total=1, completed=1)


def simulate_and_send(
    settings: Settings,
    url: str,
    api_key: str,
    players: int,
    days: int,
    seed: int,
    console: Console,
    progress: Progress | None = None,
    task: int | None = None,
):
    """Simulate, keep the ground truth under the work folder, and send the history over HTTP."""
    from playerpulse.simulation import send_deliveries, simulate, write_ground_truth

    sim = simulate(players=players, days=days, seed=seed)
    gt = ground_truth_path(settings)
    gt.parent.mkdir(parents=True, exist_ok=True)
    write_ground_truth(sim, gt)
    if progress is not None and task is not None:
        progress.update(task, total=len(sim.deliveries), completed=0)

    def advance(n: int) -> None:
        if progress is not None and task is not None:
            progress.advance(task, n)

    report = send_deliveries(url, api_key, sim.deliveries, on_progress=advance)
    if report.errors and report.accepted == 0:
        raise PlayerPulseError(f"the collector accepted nothing: {report.errors[:3]}")
    if progress is None:
        console.print(
            f"sent {report.requests} requests: {report.accepted} accepted, {report.rejected} rejected "
            f"in {report.seconds:.1f}s; ground truth in {gt}"
        )
    return sim, report


def ground_truth_path(settings: Settings) -> Path:
    return Path(settings.workdir) / "simulation" / "ground_truth.parquet"


def run_demo(
    settings: Settings,
    players: int = 2000,
    days: int = 30,
    seed: int = 7,
    port: int = 0,
    console: Console | None = None,
    spark=None,
    live_players: int = 3,
    latency_rounds: int = 40,
    predict_calls: int = 300,
) -> DemoSummary:
    """Run every stage; raise ``StageFailed`` naming the stage that broke. ``spark`` may be an
    existing session (tests share one); otherwise one is built from ``settings``."""
    console = console or Console()
    summary = DemoSummary(workdir=settings.workdir, api_key=DEMO_API_KEY)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    stages = _Stages(progress, summary)
    with progress, Gateway(settings, port) as gw:
        summary.url = gw.url
        headers = {"Authorization": f"Bearer {DEMO_SERVE_KEY}"}  # reads take the serve key
        with stages.stage("1-2. simulate and send history through the collector") as task:
            sim, report = simulate_and_send(
                settings, gw.url, DEMO_API_KEY, players, days, seed, console, progress, task
            )
            summary.sent = {
                "requests": report.requests,
                "accepted": report.accepted,
                "rejected": report.rejected,
                "seconds": round(report.seconds, 2),
                **{f"sim_{k}": v for k, v in sim.stats.items()},
            }

        with stages.stage("3. bronze → silver → gold (Spark, Delta, Great Expectations)"):
            from pipelines.jobs import run_all
            from pipelines.session import get_spark

            spark = spark or get_spark(settings, app_name="playerpulse-demo")
            run_all(spark, settings)

        with stages.stage(f"4. train, validate and promote {' and '.join(DEMO_MODELS)} (xgboost, MLflow)"):
            for name in DEMO_MODELS:
                summary.models[name] = train_validate_promote(spark, settings, name)

        with stages.stage("5. stream profiles into the online store, then send live events"):
            from features.online import open_online_store
            from pipelines.profiles_stream import start_profiles_stream, stop_profiles_stream

            query = start_profiles_stream(spark, settings, trigger_ms=0)
            try:
                _wait_caught_up(settings, query)
                live_from = datetime.now(UTC)  # the backlog's own hops took minutes, by design
                with open_online_store(settings.online_store) as store:
                    chosen = _pick_players(store, sim, live_players, seed)
                with httpx.Client(base_url=gw.url, headers=headers, timeout=10) as client:
                    summary.profile_changes = _live_changes(client, gw.url, chosen, seed)
                    summary.event_to_profile_ms = _latency_rounds(client, gw.url, sim, latency_rounds, seed)
            finally:
                stop_profiles_stream(query)

        with stages.stage(f"6. ask each champion ({', '.join(DEMO_MODELS)}) over HTTP"):
            from features.online import open_online_store

            with httpx.Client(base_url=gw.url, headers=headers, timeout=10) as client:
                # Readiness loads every champion (MLflow and xgboost imports, the artifact
                # download): done once here, so no prediction below waits for it.
                ready = client.get("/readyz", timeout=180)
                if ready.status_code != 200:
                    raise PlayerPulseError(f"the gateway is not ready to serve (see {gw.log_path})")
                for name in DEMO_MODELS:
                    for pid in [c["player_id"] for c in summary.profile_changes]:
                        r = client.post(f"/v1/models/{name}/predict", json={"player_id": pid, "context": {}})
                        r.raise_for_status()
                        summary.predictions.append(r.json())
                # a different player each call: the logged sample then looks like the population,
                # which the model report compares with the training set
                with open_online_store(settings.online_store) as store:
                    population = _pick_players(store, sim, predict_calls, seed + 1)
                summary.predict_ms = _predict_latency(client, population, predict_calls)
            for name in DEMO_MODELS:
                answers = [p for p in summary.predictions if p["model"] == name]
                if all(p["fallback"] for p in answers):
                    raise PlayerPulseError(f"every prediction of {name} fell back: {answers[:1]}")

        with stages.stage("7. count what landed"):
            from features.online import open_online_store
            from pipelines.session import register_tables

            register_tables(spark, settings)
            for name in LAKE_TABLES:
                summary.table_rows[name] = spark.table(name).count() if spark.catalog.tableExists(name) else 0
            with open_online_store(settings.online_store) as store:
                summary.online_profiles = store.count()
            gw.stop()  # its prediction-log sample is written on shutdown: stage 8 reads it

        with stages.stage("8. land the latency samples and the prediction log; render the reports"):
            summary.reports = render_reports(spark, settings, live_from)
        report_path = Path(settings.workdir) / "reports" / "demo_summary.json"
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(asdict(summary), indent=2, default=str))
    return summary


def render_reports(spark, settings: Settings, live_from: datetime | None = None) -> dict[str, Any]:
    """Run the monitoring job, then write ``report latency --since live_from`` and ``report
    model`` as their commands would: where each page went and the alert lines its figures break."""
    from pipelines import monitoring
    from playerpulse.report_command import latency_page, model_page, write_report

    landed = monitoring.run(spark, settings)
    latency = latency_page(spark, settings, live_from)
    models = {name: model_page(spark, settings, name) for name in DEMO_MODELS}
    pages = {
        "latency": write_report(latency, None, settings, "latency.html"),
        **{name: write_report(page, None, settings, f"model-{name}.html") for name, page in models.items()},
    }
    return {
        **landed,
        "pages": {k: str(v) for k, v in pages.items()},
        "breaches": [*latency.breaches, *(b for page in models.values() for b in page.breaches)],
    }


def train_validate_promote(spark, settings: Settings, name: str) -> dict[str, Any]:
    """Train ``name`` on the lake, validate it against its gate and make it champion: the
    figures the summary shows. A version the gate refuses stops the demo, naming the check."""
    from training.promote import promote
    from training.train import train_model
    from training.validate import validate

    result = train_model(spark, settings, name, ground_truth_path=str(ground_truth_path(settings)))
    validation = validate(settings, name, result.version)
    if not validation.passed:
        raise PlayerPulseError(
            f"version {result.version} of {name} did not pass validation, so it was not promoted: {validation.reason}"
        )
    move = promote(settings, name, result.version)
    return _model_summary(result, validation, move)


def _model_summary(result: TrainResult, validation: ValidationResult, move: AliasMove) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": result.name,
        "version": result.version,
        "aliases": sorted({*validation.aliases, "champion"}),  # promote(result.version) returned: it is champion
        "gate": validation.reason,
        "calibration_error": validation.metrics["calibration_error"],
        "validation_run_id": validation.run_id,
        "promotion_run_id": move.record_run_id,
    }
    out.update({k: v for k, v in result.metrics.items() if isinstance(v, int | float)})
    return out


def _wait_caught_up(settings: Settings, query, timeout_s: float = 300.0) -> None:
    """Block until the profiles query has processed everything on the stream when it started."""
    from features.streams import open_stream

    with open_stream(settings.stream) as stream:
        target = {k: v for k, v in stream.latest_positions().items() if v is not None}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if query.exception() is not None:
            raise PlayerPulseError(f"the profiles stream failed: {query.exception()}")
        progress = query.lastProgress
        if progress and progress.get("sources"):
            end = progress["sources"][0].get("endOffset")
            end = json.loads(end) if isinstance(end, str) else (end or {})
            if all(end.get(s) is not None and int(end[s]) >= int(p) for s, p in target.items()):
                return
        time.sleep(0.2)
    raise PlayerPulseError(f"the profiles stream did not catch up with the stream within {timeout_s:.0f}s")


def _pick_players(store, sim, n: int, seed: int) -> list[str]:
    from playerpulse.simulation import GAME_ID

    ids = sorted({d.player_id for d in sim.deliveries})
    random.Random(seed).shuffle(ids)
    chosen = [pid for pid in ids if store.get(GAME_ID, pid) is not None][:n]
    if not chosen:
        raise PlayerPulseError("no simulated player has an online profile after the backlog was processed")
    return chosen


def _get_profile(client: httpx.Client, pid: str) -> dict[str, Any] | None:
    r = client.get(f"/v1/players/{pid}/profile")
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return r.json()


def _wait_newer(client: httpx.Client, pid: str, version: int, timeout_s: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        p = _get_profile(client, pid)
        if p is not None and p["version"] > version:
            return p
        time.sleep(0.05)
    raise PlayerPulseError(f"player {pid}'s profile did not change within {timeout_s:.0f}s of a live event")


def _live_changes(client: httpx.Client, url: str, players: list[str], seed: int) -> list[dict[str, Any]]:
    from features.contract import now_ms
    from playerpulse.simulation import live_events, send_deliveries

    before = {pid: _get_profile(client, pid) for pid in players}
    report = send_deliveries(url, DEMO_API_KEY, live_events(players, now_ms(), seed))
    if report.accepted == 0:
        raise PlayerPulseError(f"the live events were not accepted: {report.errors[:3]}")
    changes = []
    for pid in players:
        old = before[pid] or {"version": -1, "features": {}}
        new = _wait_newer(client, pid, old["version"])
        changed = {
            k: (old["features"].get(k), v)
            for k, v in new["features"].items()
            if old["features"].get(k) != v and not k.startswith("days_since")
        }
        changes.append({"player_id": pid, "changed": changed, "timestamps": new["timestamps"]})
    return changes


def _latency_rounds(client: httpx.Client, url: str, sim, rounds: int, seed: int) -> list[float]:
    """Send one live delivery at a time and measure collector receipt → profile written."""
    from features.contract import now_ms
    from playerpulse.simulation import live_events, send_deliveries

    rng = random.Random(seed + 1)
    ids = sorted({d.player_id for d in sim.deliveries})
    samples = []
    for _ in range(rounds):
        pid = rng.choice(ids)
        old = _get_profile(client, pid)
        send_deliveries(url, DEMO_API_KEY, live_events([pid], now_ms(), rng.randrange(1 << 30)))
        new = _wait_newer(client, pid, old["version"] if old else -1)
        ts = new["timestamps"]
        if "profile_written_at" in ts and "received_at" in ts:
            samples.append(float(ts["profile_written_at"] - ts["received_at"]))
    return samples


def _predict_latency(client: httpx.Client, players: list[str], calls: int) -> list[float]:
    samples = []
    for i in range(calls):
        pid = players[i % len(players)]
        started = time.perf_counter()
        r = client.post(f"/v1/models/{DEMO_MODEL}/predict", json={"player_id": pid, "context": {}})
        samples.append((time.perf_counter() - started) * 1000)
        r.raise_for_status()
    return samples
