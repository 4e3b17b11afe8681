"""Collector throughput and latency under load, against two floors measured in the same run.

    .venv/bin/python benchmarks/collector.py [--seconds 6] [--rounds 3] [--connections 32] [--workers 1 2]
        [--players-per-batch 1]

A separate load process (wrk, from Debian's ``wrk`` package) posts gzip'd batches of 100
events for a fixed time to (a) ``POST /v1/events`` of the real collector — auth, per-event
validation, dead letters, metrics, zstd records, and durable group-committed SQLite writes —
(b) a parse-only endpoint and (c) a no-op endpoint on the same server stack; then the same
100 events in each vendor format the collector takes (Segment ``/v1/batch``, Snowplow ``tp2``,
GameAnalytics ``/v2/{key}/events``, signed), each row also against ``/v1/events`` (``--no-vendors``
skips them). It prints accepted
events/s, p50/p99 request latency, and the ratios to the floors; and, because other processes
on a shared machine move events/s from one row to the next, the events each server CPU-second
handled (its process's CPU time over the run, from /proc) with the same ratio; then it checks
that every acknowledged event really is on the stream. The rows run ``--rounds`` times,
interleaved (every endpoint once, then again), and each figure is the median over the rounds.
Each vendor format runs between two ``/v1/events`` runs and its ratio is to their mean (the
median, lowest and highest over the rounds are printed): on this VM the CPU time an event takes
drifts by up to half over a minute, which a ratio to a run a minute earlier would show as the
code's. With several workers the
kernel may hand most of wrk's connections (opened at once) to one worker, so each row also
gives the busiest worker's share of the CPU: a round near 100% measured one worker, and the
one-worker rows are the ones that compare the code.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import hmac
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console
from rich.table import Table

from features.config import load_settings
from features.contract import now_ms
from features.streams import decode_batch, open_stream
from playerpulse.gateway import free_port

KEY = "pp-demo-key-local-only"
EVENTS_PER_BATCH = 100
NATIVE = "collector (durable)"
LUA = f"""
wrk.method = "POST"
local f = io.open(os.getenv("PP_BODY"), "rb")
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Content-Encoding"] = "gzip"
wrk.headers["Authorization"] = "Bearer {KEY}"
"""


def batch_body(players: int = 1) -> bytes:
    """100 valid events: ``players=1`` is what a game client's SDK sends (one device, one
    player); more players per batch is what a server-side relay sends, and costs the collector
    one compressed stream record per player."""
    t = now_ms()
    events = []
    for i in range(EVENTS_PER_BATCH):
        events.append(
            {
                "event_id": str(uuid.uuid4()),
                "event_type": ("session_start", "match_end", "store_view")[i % 3],
                "player_id": f"bench-{i % players}",
                "game_id": "demo",
                "event_time": t - 1000 + i,
                "sent_at": t,
                "platform": "android",
                "app_version": "1.4.2",
                "country": "DE",
                "session_id": "s-1",
                "properties": {"won": True, "score": 12.5} if i % 3 == 1 else {},
            }
        )
    return gzip.compress(json.dumps({"events": events}).encode())


GA_GAME_KEY = "5c6bcb5402204249437fb5a7a80a4959"
GA_SECRET = "16813a12f718bc5c620f56944e1abc3ea13ccbac"  # GameAnalytics' published sandbox secret
GA_SECRET_ENV = "PLAYERPULSE_BENCH_GA_SECRET"
VENDOR_LUA = """
wrk.method = "POST"
local f = io.open(os.getenv("PP_BODY"), "rb")
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Content-Encoding"] = "gzip"
wrk.headers["Authorization"] = os.getenv("PP_AUTH")
"""


def vendor_bodies(players: int = 1) -> dict[str, tuple[str, bytes, str]]:
    """The same 100 events in each vendor's format: name → (path, gzip body, Authorization)."""
    t = now_ms()
    iso = datetime.fromtimestamp(t / 1000, UTC).isoformat()
    ctx = {"os": {"name": "Android"}, "app": {"version": "1.4.2"}}
    names = ("Session Started", "Level Up", "Store Viewed")
    segment = {
        "batch": [
            {
                "type": "track",
                "event": names[i % 3],
                "userId": f"bench-{i % players}",
                "messageId": str(uuid.uuid4()),
                "timestamp": iso,
                "properties": {"level": 2 + i, "score": 12.5} if i % 3 == 1 else {},
                "context": ctx,
            }
            for i in range(EVENTS_PER_BATCH)
        ],
        "sentAt": iso,
    }
    se = (("session", "start"), ("level", "up"), ("store", "view"))
    snowplow = {
        "schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
        "data": [
            {
                "e": "se",
                "se_ca": se[i % 3][0],
                "se_ac": se[i % 3][1],
                **({"se_va": str(2 + i)} if i % 3 == 1 else {}),
                "eid": str(uuid.uuid4()),
                "aid": KEY,
                "p": "pc",
                "uid": f"bench-{i % players}",
                "dtm": str(t - 1000 + i),
                "stm": str(t),
                "tv": "py-1.1.0",
            }
            for i in range(EVENTS_PER_BATCH)
        ],
    }
    cats = (
        ("user", {}),
        ("progression", {"event_id": "Complete:World01:Stage03"}),
        ("design", {"event_id": "Store:View"}),
    )
    ga = [
        {
            "category": cats[i % 3][0],
            **cats[i % 3][1],
            "v": 2,
            "user_id": f"bench-{i % players}",
            "event_uuid": str(uuid.uuid4()),
            "client_ts": t // 1000 - 1,
            "platform": "android",
            "build": "1.4.2",
            "sdk_version": "rest api v2",
        }
        for i in range(EVENTS_PER_BATCH)
    ]
    ga_body = gzip.compress(json.dumps(ga).encode())
    return {
        "segment /v1/batch": (
            "/v1/batch",
            gzip.compress(json.dumps(segment).encode()),
            "Basic " + base64.b64encode(f"{KEY}:".encode()).decode(),
        ),
        "snowplow tp2": ("/demo/com.snowplowanalytics.snowplow/tp2", gzip.compress(json.dumps(snowplow).encode()), ""),
        "gameanalytics /v2/events": (
            f"/v2/{GA_GAME_KEY}/events",
            ga_body,
            base64.b64encode(hmac.new(GA_SECRET.encode(), ga_body, hashlib.sha256).digest()).decode(),
        ),
    }


def vendor_conf_dir(tmp: Path) -> Path:
    """A copy of ``conf/`` whose game ``demo`` also takes the vendor formats."""
    conf = tmp / "conf"
    shutil.copytree(Path(__file__).resolve().parent.parent / "conf", conf)
    local = yaml.safe_load((conf / "local.yaml").read_text())
    local["games"]["demo"]["vendors"] = {
        "gameanalytics_game_key": GA_GAME_KEY,
        "gameanalytics_secret_env": GA_SECRET_ENV,
    }
    (conf / "local.yaml").write_text(yaml.safe_dump(local))
    return conf


def start_server(app_ref: str, port: int, workers: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        app_ref,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server {app_ref} did not start; see {log}")


def run_wrk(url: str, seconds: int, connections: int, body: Path, script: Path, auth: str = "") -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        env={**os.environ, "PP_BODY": str(body), "PP_AUTH": auth},
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def latency(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    reqs = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests_per_s": reqs,
        "requests": total,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "socket_errors": errors.group(1) if errors else "",
    }


def cpu_by_process(pid: int) -> dict[int, float]:
    """User + system CPU seconds so far of a process and each of its live descendants
    (uvicorn's workers), read from Linux's /proc; empty where there is none.

    On a machine other processes load, a row's events/s says as much about them as about the
    collector; events per server CPU-second do not, so rows are compared by both. Per process,
    because with several workers the kernel may hand most connections to one of them."""
    try:
        tick = os.sysconf("SC_CLK_TCK")
        procs: dict[int, tuple[int, int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                text = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2 :].split()  # from field 3 (state) on
            procs[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))  # ppid, utime + stime
    except (OSError, ValueError):
        return {}
    family, grew = {pid}, True
    while grew:
        more = {p for p, (ppid, _) in procs.items() if ppid in family} - family
        family |= more
        grew = bool(more)
    return {p: procs[p][1] / tick for p in family if p in procs}


def busiest_share(before: dict[int, float], after: dict[int, float], parent: int) -> float:
    """The busiest worker's share of the workers' CPU over a run (1.0 with one worker)."""
    used = [cpu - before.get(p, 0.0) for p, cpu in after.items() if p != parent or len(after) == 1]
    total = sum(used)
    return max(used) / total if total > 0 else float("nan")


def events_on_stream(settings) -> int:
    with open_stream(settings.stream) as stream:
        return sum(len(decode_batch(r.data)[1]) for r in stream.read_all())


def run_endpoint(
    args: argparse.Namespace, tmp: Path, conf: Path, workers: int, round_no: int, run: tuple[str, str, str]
) -> dict[str, Any]:
    """One endpoint's wrk run in one round, on a fresh server and work folder: its figures."""
    name, app_ref, path = run
    body, script, vendor_script = tmp / "body.gz", tmp / "post.lua", tmp / "vendor.lua"
    vendor = vendor_bodies(args.players_per_batch).get(path)
    slug = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")
    workdir = tmp / f"w{workers}-r{round_no}-{slug}-{uuid.uuid4().hex[:6]}"  # /v1/events runs more than once
    settings = load_settings("local", workdir)
    env = {
        **os.environ,
        "PLAYERPULSE_ENV": "local",
        "PLAYERPULSE_WORKDIR": str(workdir),
        "PLAYERPULSE_CONF_DIR": str(conf),
        GA_SECRET_ENV: GA_SECRET,
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    port = free_port()
    proc = start_server(app_ref, port, workers, env, tmp / "server.log")
    try:
        cpu_before = cpu_by_process(proc.pid)
        if vendor is not None:  # fresh event times for each run
            url_path, data, auth = vendor
            body.write_bytes(data)
            r = run_wrk(f"http://127.0.0.1:{port}{url_path}", args.seconds, args.connections, body, vendor_script, auth)
        else:
            body.write_bytes(batch_body(args.players_per_batch))
            r = run_wrk(f"http://127.0.0.1:{port}{path}", args.seconds, args.connections, body, script)
        cpu_after = cpu_by_process(proc.pid)
        server_cpu = sum(cpu_after.values()) - sum(cpu_before.values()) if cpu_after else float("nan")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    ok = r["requests"] - r["non_2xx"]
    out: dict[str, Any] = {
        **r,
        "name": name,
        "workers": workers,
        "round": round_no,
        "events_per_s": ok * EVENTS_PER_BATCH / args.seconds,
        "events_per_cpu_s": ok * EVENTS_PER_BATCH / server_cpu if server_cpu > 0 else float("nan"),
        "busiest": busiest_share(cpu_before, cpu_after, proc.pid),
    }
    if app_ref == "serving.asgi:app":
        out["on_stream"] = events_on_stream(settings)
        out["acked"] = ok * EVENTS_PER_BATCH
    return out


def summary_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> Table:
    """Per workers and endpoint: medians over the rounds, and the spread of the per-round ratios."""
    table = Table(
        "workers",
        "endpoint",
        "events/s",
        "p50 ms",
        "p99 ms",
        "vs parse-only",
        "vs no-op",
        "vs collector, median (min-max)",
        "events/CPU-s",
        "CPU vs collector, median (min-max)",
        "busiest worker's CPU share (min-max)",
        title=f"Collector, {args.connections} connections, {EVENTS_PER_BATCH}-event gzip batches of "
        f"{args.players_per_batch} player(s), {args.seconds}s a run; medians of {args.rounds} interleaved round(s)",
    )

    def per_round(name: str, workers: int, key: str) -> list[float]:
        """Each run of ``name`` over the mean of the ``/v1/events`` runs just before and after it."""
        out = []
        for r in rows:
            if r["name"] == name and r["workers"] == workers:
                same_round = [n for n in rows if n["workers"] == workers and n["round"] == r["round"]]
                natives = [n for n in same_round if n["name"] == NATIVE]
                flanking = [n for n in natives if abs(n["seq"] - r["seq"]) == 1] or natives
                out.append(r[key] / statistics.fmean(n[key] for n in flanking))
        return out

    def ratio(name: str, workers: int, key: str) -> str:
        if name == NATIVE:
            return "1.00"
        ratios = per_round(name, workers, key)
        return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"

    for workers in args.workers:
        names = list(dict.fromkeys(r["name"] for r in rows if r["workers"] == workers))
        med = {
            n: {
                k: statistics.median(r[k] for r in rows if r["name"] == n and r["workers"] == workers)
                for k in ("events_per_s", "events_per_cpu_s", "p50_ms", "p99_ms")
            }
            for n in names
        }
        shares = {n: [r["busiest"] for r in rows if r["name"] == n and r["workers"] == workers] for n in names}
        for n in names:
            m = med[n]
            table.add_row(
                str(workers),
                n,
                f"{m['events_per_s']:,.0f}",
                f"{m['p50_ms']:.2f}",
                f"{m['p99_ms']:.2f}",
                f"{m['events_per_s'] / med['parse-only floor']['events_per_s']:.2f}",
                f"{m['events_per_s'] / med['no-op floor']['events_per_s']:.2f}",
                ratio(n, workers, "events_per_s"),
                f"{m['events_per_cpu_s']:,.0f}",
                ratio(n, workers, "events_per_cpu_s"),
                f"{min(shares[n]):.0%}-{max(shares[n]):.0%}" if workers > 1 else "",
            )
    return table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=6, help="length of each endpoint's run in a round")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; figures are their medians")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--players-per-batch", type=int, default=1, help="1 = a device SDK's batch; 10 = a relay's")
    ap.add_argument(
        "--no-vendors",
        dest="vendors",
        action="store_false",
        help="skip the Segment, Snowplow and GameAnalytics rows (the same 100 events in each format)",
    )
    args = ap.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 180)  # a log keeps the table readable
    if shutil.which("wrk") is None:
        console.print("[red]wrk is not installed[/]: apt-get install wrk (or `make bench-collector`)")
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="pp-bench-"))
    (tmp / "post.lua").write_text(LUA)
    (tmp / "vendor.lua").write_text(VENDOR_LUA)
    conf = vendor_conf_dir(tmp)
    runs = [
        ("no-op floor", "benchmarks.floor_app:app", "/noop"),
        ("parse-only floor", "benchmarks.floor_app:app", "/parse"),
        (NATIVE, "serving.asgi:app", "/v1/events"),
    ]
    if args.vendors:
        runs += [(name, "serving.asgi:app", name) for name in vendor_bodies()]
    native = runs[2]
    # each vendor format between two /v1/events runs: its ratio is to its neighbours, so a drift
    # of the machine's speed over a round (this VM's CPU time per event moves by half) cancels
    order = runs[:3] + [run for vendor in runs[3:] for run in (vendor, native)]
    rows = []
    for workers in args.workers:
        for round_no in range(1, args.rounds + 1):
            for seq, run in enumerate(order):
                r = run_endpoint(args, tmp, conf, workers, round_no, run)
                r["seq"] = seq
                rows.append(r)
                console.print(
                    f"round {round_no}, {r['name']}, {workers} worker(s): {r['events_per_s']:,.0f} events/s, "
                    f"{r['events_per_cpu_s']:,.0f} events per server CPU-s, "
                    f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, non-2xx {r['non_2xx']}"
                    + (f", busiest worker {r['busiest']:.0%} of the CPU" if workers > 1 else "")
                )
    console.print(summary_table(rows, args))
    for r in rows:
        if "on_stream" in r:
            verdict = "all on the stream" if r["on_stream"] >= r["acked"] else "[red]MISSING events[/]"
            console.print(
                f"round {r['round']}, {r['name']}, {r['workers']} worker(s): acknowledged {r['acked']:,} events, "
                f"{r['on_stream']:,} on the stream — {verdict}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
