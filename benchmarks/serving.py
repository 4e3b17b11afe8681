"""Prediction latency on three paths, next to a bare booster and a bare profile read in the same run.

    .venv/bin/python benchmarks/serving.py [--players 3000] [--days 30] [--requests 5000]
        [--lambda-requests 2000] [--seconds 10] [--connections 1 8] [--cold-starts 5] [--workdir DIR]
        [--only cold-start]

The work folder (default ``var/bench-serving``) is seeded once and reused while ``--players``,
``--days`` and ``--seed`` stay the same: the simulator's players (``playerpulse.simulation``,
the demo's world: sessions, matches, store views, offers, purchases) are folded event by event
with ``ProfileState.apply`` (as the streaming job folds them, duplicate ids kept, old days
expired) into profiles in the SQLite online store, and an xgboost ``store_offer`` is trained on
them (features as of 24 h ago, label: a purchase since, ``conf/models/store_offer.yaml``'s
booster settings and rounds) and registered as champion in the work folder's MLflow SQLite
store. Every request then asks for a random known player of game ``demo``:

- **in process**: ``Predictor.predict`` (profile read, features as of now, one row scored through
  libxgboost's C API, ``serving.native_booster``);
- **bare baselines**, interleaved with it chunk by chunk so a load spike hits all alike:
  ``store.get``, ``Booster.inplace_predict`` on one numpy row, and the two back to back;
- **HTTP**: ``playerpulse serve`` (one worker, started by ``playerpulse.gateway.Gateway``) with the
  game's serve key, loaded by wrk and a Lua script POSTing random players (an httpx keep-alive
  loop when wrk is missing), once per ``--connections``;
- **Lambda**: the package ``playerpulse models package`` builds, unzipped, its handler called in
  a loop with API Gateway HTTP API events in a separate ``python -I -S -B`` whose ``sys.path``
  is the package (``-B``: ``/var/task`` is read-only, so nothing is written there);
- **cold start**: ``cold_start_ms`` as the handler logs it (imports + model load; its CPU time,
  ``cold_start_cpu_ms``, in the note), each in a fresh such process, over the package as shipped
  (bytecode beside every module) and over a copy without its ``__pycache__`` folders (every
  module compiled at import), alternately.
  ``--only cold-start`` measures just these (after seeding and packaging).

In-process and Lambda rows also give the p99 of each call's CPU time on its thread (``CPU p99``),
HTTP rows the server process's CPU time per request, and cold starts the process's CPU time when
ready: the code's own cost, which a loaded machine's wait for a core does not inflate (much: on
a virtual machine, time stolen by the host still counts). The package's sizes are printed too.

Figures are as measured, with the load average; targets are printed beside them and never
asserted. The first run installs the Lambda requirements (~40 s) and seeds (~1 min).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from features.config import Settings, load_settings
from features.latency import nearest_rank
from features.online import Profile, open_online_store

GAME = "demo"
MODEL = "store_offer"
SERVE_KEY = "pp-demo-serve-key-local-only"
DAY_MS = 86_400_000
SEED_FILE = "bench_seed.json"

BARE_READ = "bare store.get"
BARE_BOOSTER = "bare inplace_predict, 1 row"
BASELINE = "baseline: get + predict"
IN_PROCESS = "Predictor.predict"
LAMBDA = "Lambda handler, warm"
COLD_START = "Lambda cold start"
COLD_START_SOURCE = "cold start, no bytecode shipped"
COLD_ROWS = (COLD_START, COLD_START_SOURCE)


def http_row(connections: int) -> str:
    return f"HTTP gateway, {connections} conn"


def expected_rows(connections: Sequence[int]) -> list[str]:
    """Every row a report has, in print order."""
    return [BARE_READ, BARE_BOOSTER, BASELINE, IN_PROCESS, LAMBDA, *map(http_row, connections), *COLD_ROWS]


@dataclass
class Row:
    name: str
    samples: int
    p50_ms: float
    p99_ms: float
    per_s: float | None = None
    fallbacks: int | None = None
    note: str = ""
    cpu_p99_ms: float | None = None
    """p99 of the CPU time each call took on its thread: what the code costs, without the time
    a loaded machine kept it waiting for a core (wall p99 ≫ CPU p99 means the machine)."""


@dataclass
class Target:
    name: str
    measured: float
    limit: float
    unit: str

    @property
    def met(self) -> bool:
        return self.measured <= self.limit


@dataclass
class Report:
    rows: dict[str, Row]
    targets: list[Target]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    players: int
    profile_bytes_p50: int
    load_generator: str
    meta: dict[str, Any] = field(default_factory=dict)


def latency_row(name: str, ms: Sequence[float], **extra: Any) -> Row:
    return Row(name, len(ms), nearest_rank(ms, 50) or 0.0, nearest_rank(ms, 99) or 0.0, **extra)


# --- the work folder -------------------------------------------------------------------------


def seed_workdir(workdir: Path, players: int, days: int, seed: int) -> tuple[Settings, list[str]]:
    """The work folder's settings and known players; seeded now unless seeded before alike."""
    settings = load_settings("local", workdir)
    marker = workdir / SEED_FILE
    wanted = {"players": players, "days": days, "seed": seed}
    if marker.is_file():
        done = json.loads(marker.read_text())
        if {k: done.get(k) for k in wanted} == wanted:
            return settings, done["player_ids"]
    for stale in ("online", "mlflow"):
        shutil.rmtree(workdir / stale, ignore_errors=True)
    ids = _fold_profiles_and_train(settings, players, days, seed)
    marker.write_text(json.dumps({**wanted, "player_ids": ids, "seeded_at": time.time()}))
    return settings, ids


def _fold_profiles_and_train(settings: Settings, players: int, days: int, seed: int) -> list[str]:
    """Simulate, fold each player's events into a profile, train and register the champion."""
    import numpy as np

    from features.contract import now_ms
    from features.model_config import load_model_config
    from features.profile_state import ProfileState
    from playerpulse.simulation import simulate

    cfg = load_model_config(settings, MODEL)
    fs = cfg.fs
    now = now_ms()
    cutoff = now - DAY_MS
    # simulated days end at tomorrow's midnight; what has not happened yet is dropped
    tomorrow = datetime.fromtimestamp((now // DAY_MS + 1) * DAY_MS / 1000, tz=UTC)
    sim = simulate(players, days, seed, end=tomorrow)
    events = sim.events[sim.events["time_ms"] <= now - 60_000].sort_values(["player_id", "time_ms"])
    profiles, rows, labels = [], [], []
    for player_id, group in events.groupby("player_id", sort=False):
        state, snapshot, bought = ProfileState(), None, False
        for event_id, etype, props, t in zip(
            group["event_id"], group["event_type"], group["properties"], group["time_ms"], strict=True
        ):
            if t > cutoff and snapshot is None:
                snapshot = state.features(fs, cutoff)
            bought = bought or (t > cutoff and etype == cfg.label.event_type)
            event = {"event_id": event_id, "event_type": etype, "properties": props or {}, "received_at": int(t)}
            state.apply(fs, event, int(t), settings.streaming.dedup_ids)
        snapshot = snapshot if snapshot is not None else state.features(fs, cutoff)
        rows.append([np.nan if snapshot.get(n) is None else snapshot[n] for n in cfg.feature_names])
        labels.append(int(bought))
        state.expire(now, settings.streaming.state_days)
        last = int(group["time_ms"].iloc[-1])
        profiles.append(
            Profile(
                game_id=GAME,
                player_id=str(player_id),
                version=now,
                as_of=now,
                features=state.features(fs, now),
                state=state.to_dict(),
                timestamps={"event_time": last, "received_at": last, "stream_at": last, "processed_at": now},
                feature_set=fs.full_name,
            )
        )
    store = open_online_store(settings.online_store)
    for i in range(0, len(profiles), 500):
        store.put(profiles[i : i + 500])
    store.close()
    _register_champion(settings, cfg, np.asarray(rows, dtype=np.float32), np.asarray(labels))
    return [p.player_id for p in profiles]


def _register_champion(settings: Settings, cfg: Any, X: Any, y: Any) -> None:
    import mlflow
    import mlflow.xgboost
    import xgboost as xgb

    from training.registry import ensure_experiment, tracking_client

    params = {"objective": "binary:logistic", "eval_metric": "logloss", **cfg.training.xgboost.model_dump()}
    params["seed"] = cfg.training.seed
    booster = xgb.train(params, xgb.DMatrix(X, label=y, feature_names=cfg.feature_names), cfg.training.num_boost_round)
    client = tracking_client(settings)
    with mlflow.start_run(experiment_id=ensure_experiment(settings, client), run_name="bench-serving"):
        info = mlflow.xgboost.log_model(
            booster,
            name="model",
            registered_model_name=MODEL,
            metadata={"feature_names": cfg.feature_names, "feature_set": cfg.feature_set, "model": MODEL},
            pip_requirements=["xgboost-cpu"],
        )
    client.set_registered_model_alias(MODEL, "champion", str(info.registered_model_version))


# --- in process ------------------------------------------------------------------------------


def _timed(fn: Callable[[str], Any], players: Sequence[str]) -> tuple[list[float], list[float]]:
    """Wall and thread-CPU milliseconds of each call."""
    wall, cpu = [], []
    for p in players:
        t = time.perf_counter_ns()
        c = time.thread_time_ns()
        fn(p)
        c = time.thread_time_ns() - c  # the CPU interval inside the wall one
        wall.append((time.perf_counter_ns() - t) / 1e6)
        cpu.append(c / 1e6)
    return wall, cpu


def bench_in_process(settings: Settings, player_ids: Sequence[str], requests: int, rng: random.Random) -> list[Row]:
    """``Predictor.predict`` and the three bare baselines, interleaved in chunks of 250 calls."""
    from serving.models import ChampionCache
    from serving.predict import Predictor

    # the predictor's store has the serving read budget (a slow read is its fallback); the bare
    # reads have none, so a read slowed by the machine is timed, not raised
    store = open_online_store(settings.online_store, settings.serving.store_timeout_ms)
    bare_store = open_online_store(settings.online_store)
    champions = ChampionCache(settings)
    predictor = Predictor(settings, store, champions)
    champion = champions.get(MODEL)
    fs = predictor.config(MODEL).fs
    now = int(time.time() * 1000)
    rows_by_player = {}
    for p in player_ids:
        profile = bare_store.get(GAME, p)
        assert profile is not None, f"seeded player {p} has no profile"
        rows_by_player[p] = champion.row(_features(profile, fs, now))
    booster = xgboost_booster(champion)
    fallbacks = 0

    def predict(p: str) -> None:
        nonlocal fallbacks
        fallbacks += predictor.predict(MODEL, GAME, p, {})["fallback"]

    paths: dict[str, Callable[[str], Any]] = {
        BARE_READ: lambda p: bare_store.get(GAME, p),
        BARE_BOOSTER: lambda p: booster.inplace_predict(rows_by_player[p]),
        BASELINE: lambda p: (bare_store.get(GAME, p), booster.inplace_predict(rows_by_player[p])),
        IN_PROCESS: predict,
    }
    for fn in paths.values():  # warm caches and the booster's first-call setup
        _timed(fn, rng.choices(player_ids, k=50))
    fallbacks = 0
    samples: dict[str, list[float]] = {name: [] for name in paths}
    cpu: dict[str, list[float]] = {name: [] for name in paths}
    for start in range(0, requests, 250):
        chunk = rng.choices(player_ids, k=min(250, requests - start))
        for name, fn in paths.items():
            wall, used = _timed(fn, chunk)
            samples[name] += wall
            cpu[name] += used
    store.close()
    bare_store.close()
    return [
        latency_row(
            name, ms, fallbacks=fallbacks if name == IN_PROCESS else None, cpu_p99_ms=nearest_rank(cpu[name], 99)
        )
        for name, ms in samples.items()
    ]


def xgboost_booster(champion: Any) -> Any:
    """The champion's trees as an ``xgboost.Booster`` (one thread): the bare baseline is
    xgboost's own Python API, whatever the predictor scores through (``serving.native_booster``)."""
    import xgboost as xgb

    with tempfile.TemporaryDirectory(prefix="pp-bench-booster-") as tmp:
        path = str(Path(tmp) / "model.ubj")
        champion.booster.save_model(path)
        booster = xgb.Booster()
        booster.load_model(path)
    booster.set_param({"nthread": 1})
    return booster


def _features(profile: Profile, fs: Any, as_of: int) -> dict[str, Any]:
    from features.profile_state import ProfileState

    return ProfileState.from_dict(profile.state).features(fs, as_of)


# --- HTTP ------------------------------------------------------------------------------------

WRK_LUA = """
local ids = {}
for line in io.lines(os.getenv("PP_PLAYERS")) do ids[#ids + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("PP_KEY")
local counter = 0
function setup(thread) counter = counter + 1; thread:set("seed", counter) end
function init(args) math.randomseed(tonumber(seed or 1) * 7919) end
function request()
  local body = '{"player_id": "' .. ids[math.random(#ids)] .. '", "context": {"screen": "store"}}'
  return wrk.format(nil, nil, nil, body)
end
"""


def run_wrk(url: str, seconds: int, connections: int, players_file: Path, script: Path) -> Row:
    """wrk with the Lua script above; its latency percentiles include waiting for a connection."""
    threads = min(2, connections)  # wrk needs at least one connection per thread
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        env={**os.environ, "PP_PLAYERS": str(players_file), "PP_KEY": SERVE_KEY},
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def latency(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)] if m else float("nan")

    def number(pattern: str) -> str:
        m = re.search(pattern, out)
        return m.group(1) if m else "0"

    errors = re.search(r"Socket errors: (.*)", out)
    non_2xx = number(r"Non-2xx or 3xx responses: (\d+)")
    note = f"wrk, non-2xx {non_2xx}" + (f", socket errors {errors.group(1)}" if errors else "")
    return Row(
        http_row(connections),
        int(number(r"(\d+) requests in")),
        latency("50"),
        latency("99"),
        float(number(r"Requests/sec:\s+([\d.]+)")),
        note=note,
    )


def _httpx_loop(url: str, seconds: int, connections: int, players: Sequence[str], rng: random.Random) -> Row:
    """One keep-alive client per connection, taking turns (no wrk): latency, not peak throughput."""
    clients = [httpx.Client(headers={"Authorization": f"Bearer {SERVE_KEY}"}) for _ in range(connections)]
    ms, bad = [], 0
    deadline = time.monotonic() + seconds
    started = time.perf_counter()
    try:
        while time.monotonic() < deadline:
            for c in clients:
                body = {"player_id": rng.choice(players), "context": {"screen": "store"}}
                t = time.perf_counter_ns()
                bad += c.post(url, json=body).status_code != 200
                ms.append((time.perf_counter_ns() - t) / 1e6)
    finally:
        for c in clients:
            c.close()
    per_s = len(ms) / (time.perf_counter() - started)
    return latency_row(http_row(connections), ms, per_s=per_s, note=f"httpx loop (no wrk), non-200 {bad}")


def process_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds process ``pid`` has used (``/proc``; 0 where there is none):
    the server's own cost per request, apart from the time a loaded machine kept it waiting."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_http(
    settings: Settings, player_ids: Sequence[str], seconds: int, connections: Sequence[int], rng: random.Random
) -> tuple[list[Row], str]:
    from playerpulse.gateway import Gateway

    url_path = f"/v1/models/{MODEL}/predict"
    tmp = Path(tempfile.mkdtemp(prefix="pp-bench-serving-"))
    players_file, script = tmp / "players.txt", tmp / "predict.lua"
    players_file.write_text("\n".join(player_ids) + "\n")
    script.write_text(WRK_LUA)
    generator = "wrk" if shutil.which("wrk") else "httpx"
    rows = []
    with Gateway(settings) as gw:
        url = gw.url + url_path
        with httpx.Client(headers={"Authorization": f"Bearer {SERVE_KEY}"}, timeout=120) as c:  # loads the champion
            answers = [c.post(url, json={"player_id": p, "context": {}}) for p in rng.choices(player_ids, k=20)]
        fallbacks = sum(a.status_code != 200 or a.json()["fallback"] for a in answers)
        for n in connections:
            before = process_cpu_s(gw.pid)
            if generator == "wrk":
                row = run_wrk(url, seconds, n, players_file, script)
            else:
                row = _httpx_loop(url, seconds, n, player_ids, rng)
            used = process_cpu_s(gw.pid) - before
            if row.samples:
                row.note += f"; server CPU {used * 1000 / row.samples:.2f} ms a request"
            row.fallbacks = fallbacks
            rows.append(row)
    shutil.rmtree(tmp, ignore_errors=True)
    return rows, generator


# --- Lambda ----------------------------------------------------------------------------------

LAMBDA_CHILD = r"""
import json, random, sys, time, types
package, players_file, event_file, n, seed, out = sys.argv[1:]
sys.path.insert(0, package)
import serving.model_function as mf
ctx = types.SimpleNamespace(function_name="playerpulse-model-store_offer", memory_limit_in_mb=1024,
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:playerpulse-model-store_offer",
    aws_request_id="bench")
players = open(players_file).read().split()
template = json.load(open(event_file))
rng = random.Random(int(seed))
ms, cpu, statuses, fallbacks = [], [], {}, 0
for i in range(int(n)):
    event = dict(template, body=json.dumps({"player_id": rng.choice(players), "context": {"screen": "store"}}))
    t = time.perf_counter_ns()
    c = time.thread_time_ns()
    answer = mf.handler(event, ctx)
    c = time.thread_time_ns() - c
    ms.append((time.perf_counter_ns() - t) / 1e6)
    cpu.append(c / 1e6)
    statuses[answer["statusCode"]] = statuses.get(answer["statusCode"], 0) + 1
    fallbacks += json.loads(answer["body"]).get("fallback", True)
json.dump({"ms": ms, "cpu_ms": cpu, "statuses": statuses, "fallbacks": fallbacks,
           "version": mf.runtime().champion.version}, open(out, "w"))
"""


def http_api_event() -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) ``POST /v1/models/store_offer/predict`` event."""
    path = f"/v1/models/{MODEL}/predict"
    return {
        "version": "2.0",
        "routeKey": "POST /v1/models/{model}/predict",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"authorization": f"Bearer {SERVE_KEY}", "content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "bench.execute-api.us-east-1.amazonaws.com",
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1"},
            "requestId": "bench",
            "routeKey": "POST /v1/models/{model}/predict",
            "stage": "$default",
            "timeEpoch": int(time.time() * 1000),
        },
        "pathParameters": {"model": MODEL},
        "body": "",
        "isBase64Encoded": False,
    }


PACKAGE_SIZES: dict[str, int] = {}
"""The last package built: ``{"zipped_bytes", "unzipped_bytes"}``, printed with the figures."""


def unpacked_package(settings: Settings) -> Path:
    """The model's Lambda package, built by ``serving.deploy.package``, unzipped under the work folder."""
    from serving.deploy.package import package_model

    report = package_model(settings, MODEL, Path(settings.workdir) / "lambda" / "bench")
    PACKAGE_SIZES.update(zipped_bytes=report.zipped_bytes, unzipped_bytes=report.unzipped_bytes)
    folder = Path(settings.workdir) / "lambda" / "var-task"
    shutil.rmtree(folder, ignore_errors=True)
    with zipfile.ZipFile(report.path) as zf:
        zf.extractall(folder)
    return folder


def package_line(sizes: dict[str, int]) -> str:
    """The package's sizes as the packager prints them, against Lambda's limits."""
    from serving.deploy.package import LAMBDA_LIMITS, mib

    return (
        f"Lambda package: {mib(sizes['zipped_bytes'])} zipped (limit {mib(LAMBDA_LIMITS.zipped_bytes)}), "
        f"{mib(sizes['unzipped_bytes'])} unzipped (limit {mib(LAMBDA_LIMITS.unzipped_bytes)})"
    )


@dataclass(frozen=True)
class ColdStart:
    wall_ms: float
    """``cold_start_ms`` as logged: imports and model load, as the function's caller waits for them."""
    cpu_ms: float
    """``cold_start_cpu_ms``: the process's CPU time when ready, which waiting for a core on a
    loaded machine does not inflate (wall ≫ CPU means the machine, not the code)."""


def _run_handler(
    package: Path, settings: Settings, players_file: Path, n: int, seed: int
) -> tuple[dict[str, Any], ColdStart]:
    """One fresh ``python -I -S -B`` calling the handler ``n`` times: its result and the cold
    start it logged."""
    with tempfile.TemporaryDirectory(prefix="pp-bench-lambda-") as tmp:
        event_file, out, log = Path(tmp) / "event.json", Path(tmp) / "out.json", Path(tmp) / "stdout.log"
        event_file.write_text(json.dumps(http_api_event()))
        env = {
            "PLAYERPULSE_MODEL": MODEL,
            "PLAYERPULSE_ENV": "local",
            "PLAYERPULSE_WORKDIR": settings.workdir,
            "POWERTOOLS_METRICS_NAMESPACE": "PlayerPulse",
        }
        args = [str(package), str(players_file), str(event_file), str(n), str(seed), str(out)]
        with log.open("wb") as stdout:
            done = subprocess.run(
                [sys.executable, "-I", "-S", "-B", "-c", LAMBDA_CHILD, *args],
                env=env,
                stdout=stdout,
                stderr=subprocess.PIPE,
                timeout=600,
                check=False,
            )
        if done.returncode != 0:
            raise SystemExit(f"the packaged handler failed:\n{done.stderr.decode(errors='replace')[-3000:]}")
        ready = next(json.loads(line) for line in log.read_text().splitlines() if '"cold_start_ms"' in line)
        return json.loads(out.read_text()), ColdStart(float(ready["cold_start_ms"]), float(ready["cold_start_cpu_ms"]))


def _cold_row(name: str, colds: list[ColdStart], how: str) -> Row:
    wall = [c.wall_ms for c in colds]
    listed = ", ".join(f"{c:.0f}" for c in wall)
    cpu = statistics.median(c.cpu_ms for c in colds)
    note = f"{how}; median | max of {listed} ms; CPU time median {cpu:.0f} ms"
    return Row(name, len(colds), statistics.median(wall), max(wall), note=note)


def _players_file(settings: Settings, player_ids: Sequence[str]) -> Path:
    players_file = Path(settings.workdir) / "lambda" / "players.txt"
    players_file.write_text("\n".join(player_ids) + "\n")
    return players_file


def without_bytecode(package: Path) -> Path:
    """A copy of the unpacked package without any ``__pycache__``: a package as built before
    bytecode shipped, whose every cold start compiles what it imports."""
    folder = package.with_name(package.name + "-no-bytecode")
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(package, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def bench_cold_starts(settings: Settings, package: Path, players_file: Path, cold_starts: int, seed: int) -> list[Row]:
    """Cold starts over the package as shipped and over a copy without bytecode, alternately
    (so a load spike on the shared machine hits both alike); nothing is written into either."""
    source_only = without_bytecode(package)
    shipped, compiled = [], []
    for _ in range(cold_starts):
        shipped.append(_run_handler(package, settings, players_file, 1, seed)[1])
        compiled.append(_run_handler(source_only, settings, players_file, 1, seed)[1])
    shutil.rmtree(source_only, ignore_errors=True)
    return [
        _cold_row(COLD_START, shipped, "fresh python -I -S -B each, the package as shipped (bytecode by each module)"),
        _cold_row(COLD_START_SOURCE, compiled, "the same without its __pycache__: every module compiled at import"),
    ]


def bench_lambda(
    settings: Settings, player_ids: Sequence[str], requests: int, cold_starts: int, seed: int
) -> list[Row]:
    """The warm loop, then cold starts with and without the shipped bytecode."""
    package = unpacked_package(settings)
    players_file = _players_file(settings, player_ids)
    result, _ = _run_handler(package, settings, players_file, requests, seed)
    skip = min(50, len(result["ms"]) // 10)  # the first calls warm Powertools' routes
    warm, cpu = result["ms"][skip:], result["cpu_ms"][skip:]
    statuses = ", ".join(f"HTTP {k}: {v}" for k, v in sorted(result["statuses"].items()))
    warm_row = latency_row(LAMBDA, warm, fallbacks=result["fallbacks"], note=statuses, cpu_p99_ms=nearest_rank(cpu, 99))
    return [warm_row, *bench_cold_starts(settings, package, players_file, cold_starts, seed)]


def run_cold_starts_only(args: argparse.Namespace, console: Console) -> list[Row]:
    """``--only cold-start``: seed (or reuse) the work folder, package, time the cold starts and
    print them with the load average, skipping the latency paths."""
    load_before = os.getloadavg()
    settings, player_ids = seed_workdir(Path(args.workdir).resolve(), args.players, args.days, args.seed)
    package = unpacked_package(settings)
    rows = bench_cold_starts(settings, package, _players_file(settings, player_ids), args.cold_starts, args.seed)
    load_after = os.getloadavg()
    table = Table("path", "n", "median ms", "max ms", title="Lambda cold starts (cold_start_ms as logged)")
    for r in rows:
        table.add_row(r.name, str(r.samples), f"{r.p50_ms:.0f}", f"{r.p99_ms:.0f}")
    console.print(table)
    for r in rows:
        console.print(f"  {r.name}: {r.note}", markup=False)
    console.print(package_line(PACKAGE_SIZES), markup=False)
    verdict = "met" if rows[0].p50_ms <= 1500.0 else "not met"
    console.print(f"target: cold start median ≤ 1500 ms: {verdict}", markup=False)
    console.print(
        f"load average (1/5/15 min) before {load_before[0]:.1f}/{load_before[1]:.1f}/{load_before[2]:.1f}, "
        f"after {load_after[0]:.1f}/{load_after[1]:.1f}/{load_after[2]:.1f} on {os.cpu_count()} CPUs",
        markup=False,
    )
    return rows


# --- report ----------------------------------------------------------------------------------


def targets(rows: dict[str, Row], first_connections: int) -> list[Target]:
    http = rows[http_row(first_connections)]
    return [
        Target("in-process p99", rows[IN_PROCESS].p99_ms, 1.0, "ms"),
        Target("in-process p99 / baseline p99", rows[IN_PROCESS].p99_ms / rows[BASELINE].p99_ms, 3.0, "×"),
        Target(f"HTTP p99, {first_connections} conn (Feast's ~7 ms)", http.p99_ms, 5.0, "ms"),
        Target("cold start, median", rows[COLD_START].p50_ms, 1500.0, "ms"),
    ]


def run_benchmark(args: argparse.Namespace) -> Report:
    rng = random.Random(args.seed)
    load_before = os.getloadavg()
    settings, player_ids = seed_workdir(Path(args.workdir).resolve(), args.players, args.days, args.seed)
    rows: dict[str, Row] = {r.name: r for r in bench_in_process(settings, player_ids, args.requests, rng)}
    lambda_rows = bench_lambda(settings, player_ids, args.lambda_requests, args.cold_starts, args.seed)
    http_rows, generator = bench_http(settings, player_ids, args.seconds, args.connections, rng)
    rows.update({r.name: r for r in http_rows})
    rows.update({r.name: r for r in lambda_rows})
    ordered = {name: rows[name] for name in expected_rows(args.connections)}
    store = open_online_store(settings.online_store)
    sampled = [store.get(GAME, p) for p in rng.sample(player_ids, min(200, len(player_ids)))]
    sizes = sorted(len(json.dumps(p.state)) for p in sampled if p is not None)
    store.close()
    return Report(
        rows=ordered,
        targets=targets(ordered, args.connections[0]),
        load_before=load_before,
        load_after=os.getloadavg(),
        players=len(player_ids),
        profile_bytes_p50=sizes[len(sizes) // 2],
        load_generator=generator,
        meta={
            "args": {k: v for k, v in vars(args).items() if k != "json"},
            "cpus": os.cpu_count(),
            "package": dict(PACKAGE_SIZES),
        },
    )


def render(report: Report, console: Console) -> None:
    base = report.rows[BASELINE]
    table = Table(
        "path",
        "n",
        "p50 ms",
        "p99 ms",
        "CPU p99 ms",
        "req/s",
        "p50/base",
        "p99/base",
        "fallbacks",
        title=f"Predictions for random known players ({report.players:,} profiles, "
        f"folded state ~{report.profile_bytes_p50:,} bytes of JSON each)",
    )
    for r in report.rows.values():
        ratio = r.name not in COLD_ROWS
        table.add_row(
            r.name,
            f"{r.samples:,}",
            f"{r.p50_ms:.3f}",
            f"{r.p99_ms:.3f}",
            "" if r.cpu_p99_ms is None else f"{r.cpu_p99_ms:.3f}",
            f"{r.per_s:,.0f}" if r.per_s else "",
            f"{r.p50_ms / base.p50_ms:.1f}×" if ratio else "",
            f"{r.p99_ms / base.p99_ms:.1f}×" if ratio else "",
            "" if r.fallbacks is None else str(r.fallbacks),
        )
    console.print(table)
    for r in report.rows.values():
        if r.note:
            console.print(f"  {r.name}: {r.note}", markup=False)
    console.print("  cold starts: the p50 column is the median, the p99 column the slowest", markup=False)
    console.print(
        "  CPU p99: each call's CPU time on its thread; far below the wall p99, the wall time was waiting for a core",
        markup=False,
    )
    if report.meta.get("package"):
        console.print(f"  {package_line(report.meta['package'])}", markup=False)
    checks = Table("target", "measured", "limit", "", title="Targets")
    for t in report.targets:
        verdict = "[green]met[/]" if t.met else "[red]not met[/]"
        checks.add_row(t.name, f"{t.measured:.2f} {t.unit}", f"≤ {t.limit:g} {t.unit}", verdict)
    console.print(checks)
    lb, la = report.load_before, report.load_after
    console.print(
        f"load average (1/5/15 min) before {lb[0]:.1f}/{lb[1]:.1f}/{lb[2]:.1f}, after {la[0]:.1f}/{la[1]:.1f}/"
        f"{la[2]:.1f} on {report.meta['cpus']} CPUs; HTTP load from {report.load_generator}. "
        "A shared, loaded machine makes every figure noisy: compare rows of one run, not runs."
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--players", type=int, default=3000, help="simulated players, one profile each")
    ap.add_argument("--days", type=int, default=30, help="simulated days of history behind each profile")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--requests", type=int, default=5000, help="in-process calls per path")
    ap.add_argument("--lambda-requests", type=int, default=2000, help="handler calls in the warm loop")
    ap.add_argument("--seconds", type=int, default=10, help="HTTP load per --connections value")
    ap.add_argument("--connections", type=int, nargs="+", default=[1, 8], help="the first one is the target's")
    ap.add_argument("--cold-starts", type=int, default=5, help="fresh handler processes timed")
    ap.add_argument("--workdir", default=str(Path(__file__).resolve().parent.parent / "var" / "bench-serving"))
    ap.add_argument("--json", type=Path, help="also write the report as JSON here")
    ap.add_argument("--only", choices=["cold-start"], help="measure only this part (cold-start: Lambda cold starts)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 160)  # a log keeps the table readable
    started = time.monotonic()
    if args.only == "cold-start":
        rows = run_cold_starts_only(args, console)
        console.print(f"took {time.monotonic() - started:.0f} s (work folder {args.workdir})")
        if args.json:
            args.json.write_text(json.dumps({"rows": [asdict(r) for r in rows], "load": os.getloadavg()}))
        return 0
    report = run_benchmark(args)
    render(report, console)
    console.print(f"took {time.monotonic() - started:.0f} s (work folder {args.workdir})")
    if args.json:
        args.json.write_text(json.dumps(asdict(report) | {"targets_met": {t.name: t.met for t in report.targets}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
