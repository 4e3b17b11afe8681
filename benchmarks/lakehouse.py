"""The lakehouse at scale: bronze → silver → gold wall time, storage, compaction, increments, DuckDB.

```bash
.venv/bin/python benchmarks/lakehouse.py              # 1M and 10M events (a quiet 2-core machine: ~tens of minutes)
.venv/bin/python benchmarks/lakehouse.py --quick      # 100k and 1M events: checks the script and the scaling
.venv/bin/python benchmarks/lakehouse.py --events 300k --out var/bench/lakehouse.json
```

Events are written straight to the embedded SQLite stream of a fresh work folder per size (no
HTTP: the collector has its own benchmark): a vectorised generator makes players, times and
event types with numpy, builds the contract's ``Event`` values, groups each player's events
into client-sized batches and encodes each batch with ``features.streams.codec.encode_events``,
exactly the per-player records the collector puts on the stream. Then the real jobs run on
Spark ``local[2]`` (``pipelines.bronze``, ``silver``, ``gold``, ``maintain.optimize``) and the
script prints, against baselines measured in the same run:

- wall time and events/s per stage, and how time grows with the events (10× events → ?× time);
- bytes per event in bronze (its Parquet files) against the same events as raw JSON and as
  gzipped NDJSON;
- files per ``event_date`` partition of bronze and silver before and after OPTIMIZE (Z-order);
- an incremental run (1% new events on the last two days) against the full run, with how
  many files silver's MERGE read of the files it could have read (date pruning shows here);
- events per player per day and event type computed by Spark and by DuckDB over the same
  silver Parquet files (the Delta snapshot's own file list), with the ratio.

It prints the targets for 2 cores and whether each was met; it never asserts. Figures depend on
the machine's load: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import msgspec
import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from features.config import Settings, load_settings
from features.contract import Event
from features.streams import StreamRecord, open_stream
from features.streams.codec import encode_events

DAY_MS = 86_400_000
EVENTS_PER_BATCH = 20
"""Events of one player per client flush, hence per stream record (the collector's split)."""
PUT_RECORDS = 5000
RAW_SAMPLE_EVERY = 10
"""Raw and gzipped JSON sizes are per-event averages over every 10th batch (gzip of all of 10M
events would take longer than the stage it is compared with)."""
INCREMENT_SHARE = 0.01
INCREMENT_DAYS = 2
TARGET_FULL_S = 600.0
TARGET_10M = 10_000_000
TARGET_INCREMENT_SHARE = 0.10
TARGET_BRONZE_SHARE_OF_JSON = 1 / 8

# event type → (weight, properties); the properties satisfy silver's expectations.
EVENT_MIX: dict[str, tuple[float, dict[str, Any]]] = {
    "session_start": (0.14, {}),
    "session_end": (0.14, {"duration_s": 612.0}),
    "match_end": (0.30, {"won": True, "score": 1250.0}),
    "level_up": (0.06, {"level": 12}),
    "store_view": (0.10, {"placement": "main_menu"}),
    "offer_shown": (0.06, {"offer_id": "starter_pack"}),
    "purchase": (0.02, {"sku": "gems_500", "price_usd": 4.99}),
    "currency_earn": (0.09, {"amount": 50.0}),
    "currency_spend": (0.05, {"amount": 20.0}),
    "ad_view": (0.04, {"placement": "rewarded"}),
}
PLATFORMS = ("ios", "android", "pc", "console", "web")
COUNTRIES = ("DE", "US", "BR", "JP", "FR", "GB", "IN", "KR")


def parse_count(text: str) -> int:
    """``100k``, ``1M``, ``10M`` or a plain number of events."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmM]?)", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"not an event count: {text!r} (use e.g. 100k, 1M, 10M)")
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


def label(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1e3:g}k"


@dataclass
class RawSize:
    """Bytes of the sampled events as raw JSON (one object per event, as sent) and gzipped NDJSON."""

    events: int = 0
    json_bytes: int = 0
    gzip_bytes: int = 0
    _gz: Any = field(default_factory=lambda: zlib.compressobj(6, zlib.DEFLATED, 31))

    def add(self, encoded: list[bytes]) -> None:
        chunk = b"\n".join(encoded) + b"\n"
        self.events += len(encoded)
        self.json_bytes += len(chunk) - len(encoded)
        self.gzip_bytes += len(self._gz.compress(chunk))

    def finish(self) -> None:
        self.gzip_bytes += len(self._gz.flush())


def generate(
    rng: np.random.Generator, players: int, events: int, start_ms: int, span_ms: int, first_player: int = 0
) -> Iterator[tuple[str, list[Event], int]]:
    """``(player_id, events, received_at)`` per client batch: a player's events in time order,
    ``EVENTS_PER_BATCH`` at a time, received a moment after the batch's last event."""
    types = list(EVENT_MIX)
    weights = np.array([EVENT_MIX[t][0] for t in types])
    activity = rng.gamma(1.2, size=players)
    per_player = rng.multinomial(events, activity / activity.sum())
    chunk = 2000
    for lo in range(0, players, chunk):
        counts = per_player[lo : lo + chunk]
        n = int(counts.sum())
        owner = np.repeat(np.arange(lo, lo + len(counts)), counts)
        times = start_ms + rng.integers(0, span_ms, n)
        order = np.lexsort((times, owner))
        owner, times = owner[order], times[order]
        kinds = rng.choice(len(types), size=n, p=weights).tolist()
        ids = rng.bytes(16 * n)
        t = times.tolist()
        platform = rng.integers(0, len(PLATFORMS), len(counts)).tolist()
        country = rng.integers(0, len(COUNTRIES), len(counts)).tolist()
        at = 0
        for offset, count in enumerate(counts.tolist()):
            pid = f"p{first_player + lo + offset:07d}"
            plat, ctry = PLATFORMS[platform[offset]], COUNTRIES[country[offset]]
            for b in range(at, at + count, EVENTS_PER_BATCH):
                end = min(b + EVENTS_PER_BATCH, at + count)
                received = t[end - 1] + 1500
                batch = [
                    Event(
                        event_id=uuid.UUID(bytes=ids[16 * i : 16 * i + 16]),
                        event_type=types[kinds[i]],
                        player_id=pid,
                        game_id="demo",
                        event_time=t[i],
                        platform=plat,
                        app_version="2.3.1",
                        sent_at=received - 60,
                        country=ctry,
                        session_id=f"s{t[i] // 1_800_000}",
                        properties=EVENT_MIX[types[kinds[i]]][1],
                    )
                    for i in range(b, end)
                ]
                yield pid, batch, received
            at += count


def put_on_stream(settings: Settings, batches: Iterator[tuple[str, list[Event], int]], raw: RawSize | None) -> int:
    """Encode each batch as the collector does and put the records on the stream; events put."""
    encode = msgspec.json.encode
    put = 0
    with open_stream(settings.stream) as stream:
        records: list[StreamRecord] = []
        for pid, batch, received in batches:
            records.append(StreamRecord(pid, encode_events(batch, received, received + 5)))
            if raw is not None and len(records) % RAW_SAMPLE_EVERY == 0:
                raw.add([encode(e) for e in batch])
            put += len(batch)
            if len(records) >= PUT_RECORDS:
                stream.put(records)
                records = []
        if records:
            stream.put(records)
    if raw is not None:
        raw.finish()
    return put


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def files_per_partition(spark: Any, path: str) -> tuple[int, int]:
    """``(active files, event_date partitions)`` of a Delta table."""
    from delta.tables import DeltaTable

    files = int(DeltaTable.forPath(spark, path).detail().select("numFiles").first()[0])
    partitions = spark.read.format("delta").load(path).select("event_date").distinct().count()
    return files, int(partitions)


def merge_files_read(spark: Any, path: str, after_version: int) -> tuple[int, int]:
    """``(files the MERGEs after a version read, files they could have read)``, from Delta's metrics."""
    from delta.tables import DeltaTable

    history = DeltaTable.forPath(spark, path).history().where(f"version > {after_version} AND operation = 'MERGE'")
    read = total = 0
    for row in history.select("operationMetrics").collect():
        m = row[0] or {}
        total += int(m.get("numTargetFilesBeforeSkipping", 0))
        read += int(m.get("numTargetFilesAfterSkipping", 0))
    return read, total


def daily_counts_spark(spark: Any, path: str, out: str) -> int:
    frame = spark.read.format("delta").load(path).groupBy("game_id", "player_id", "event_date", "event_type").count()
    frame.write.mode("overwrite").parquet(out)
    return int(spark.read.parquet(out).agg({"count": "sum"}).first()[0] or 0)


def daily_counts_duckdb(files: list[str], out: str, threads: int) -> int:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute(
        "COPY (SELECT game_id, player_id, event_date, event_type, count(*) AS n "
        "FROM read_parquet(?, hive_partitioning = true) GROUP BY ALL) TO '" + out.replace("'", "''") + "' "
        "(FORMAT parquet)",
        [files],
    )
    total = con.execute(f"SELECT sum(n) FROM read_parquet('{out}')").fetchone()[0]
    con.close()
    return int(total or 0)


def active_files(spark: Any, path: str) -> list[str]:
    """The Parquet files of the table's current snapshot (older files stay on disk until VACUUM)."""
    return [unquote(urlparse(f).path) for f in spark.read.format("delta").load(path).inputFiles()]


def run_size(spark: Any, events: int, args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """One size end to end in its own work folder; every figure of it."""
    from pipelines import bronze, gold, maintain, silver
    from pipelines.lake import table_version
    from pipelines.session import table_path

    work = Path(tempfile.mkdtemp(prefix=f"pp-lake-{label(events)}-", dir=args.workdir))
    settings = load_settings("local", work / "var")
    rng = np.random.default_rng(args.seed)
    players = max(10, events // args.events_per_player)
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start_ms = int((end - timedelta(days=args.days)).timestamp() * 1000)
    raw = RawSize()
    console.print(f"[bold]{label(events)} events[/]: {players:,} players over {args.days} days in {work}")
    gen_s, put = timed(put_on_stream, settings, generate(rng, players, events, start_ms, args.days * DAY_MS), raw)
    console.print(f"  generated and put on the stream in {gen_s:.1f} s")

    figures: dict[str, Any] = {"events": put, "players": players, "days": args.days, "workdir": str(work)}
    stages: dict[str, float] = {}
    stages["bronze"], _ = timed(bronze.run, spark, settings)
    console.print(f"  bronze {stages['bronze']:.1f} s")
    stages["silver"], silver_metrics = timed(silver.run, spark, settings, validate=not args.no_gx)
    console.print(f"  silver {stages['silver']:.1f} s")
    stages["gold"], _ = timed(gold.run, spark, settings)
    console.print(f"  gold {stages['gold']:.1f} s")
    figures["stages_s"] = stages
    figures["silver_rows"] = silver_metrics[silver.EVENTS_TABLE]
    figures["quarantined"] = silver_metrics[silver.QUARANTINE_TABLE]

    bronze_path, silver_path = table_path(settings, bronze.EVENTS_TABLE), table_path(settings, silver.EVENTS_TABLE)
    bronze_bytes = sum(p.stat().st_size for p in map(Path, active_files(spark, bronze_path)))
    figures["bytes_per_event"] = {
        "raw_json": raw.json_bytes / raw.events,
        "gzip_ndjson": raw.gzip_bytes / raw.events,
        "bronze_parquet": bronze_bytes / put,
    }

    layout: dict[str, dict[str, float]] = {}
    for name, path in ((bronze.EVENTS_TABLE, bronze_path), (silver.EVENTS_TABLE, silver_path)):
        files_before, partitions = files_per_partition(spark, path)
        seconds, _ = timed(maintain.optimize, spark, path)
        files_after, _ = files_per_partition(spark, path)
        layout[name] = {
            "partitions": partitions,
            "files_before": files_before,
            "files_after": files_after,
            "optimize_s": seconds,
        }
    figures["optimize"] = layout
    console.print("  optimized")

    silver_version = table_version(spark, silver_path)
    extra = max(1, int(put * INCREMENT_SHARE))
    recent_ms = int((end - timedelta(days=INCREMENT_DAYS)).timestamp() * 1000)
    put_on_stream(settings, generate(rng, players, extra, recent_ms, INCREMENT_DAYS * DAY_MS), None)
    incr: dict[str, float] = {}
    incr["bronze"], _ = timed(bronze.run, spark, settings)
    incr["silver"], _ = timed(silver.run, spark, settings, validate=not args.no_gx)
    files_read, files_total = merge_files_read(spark, silver_path, silver_version)
    figures["increment"] = {
        "events": extra,
        "stages_s": incr,
        "merge_files_read": files_read,
        "merge_files": files_total,
    }
    console.print(f"  increment of {extra:,} events: bronze {incr['bronze']:.1f} s, silver {incr['silver']:.1f} s")

    files = active_files(spark, silver_path)
    spark_s, spark_total = timed(daily_counts_spark, spark, silver_path, str(work / "daily_spark"))
    duck_s, duck_total = timed(daily_counts_duckdb, files, str(work / "daily_duckdb.parquet"), args.duckdb_threads)
    figures["daily_counts"] = {
        "spark_s": spark_s,
        "duckdb_s": duck_s,
        "spark_events": spark_total,
        "duckdb_events": duck_total,
        "silver_files": len(files),
    }
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return figures


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}" if seconds > 0 else "-"


def report(results: list[dict[str, Any]], console: Console, load: dict[str, Any]) -> list[dict[str, Any]]:
    """Print every table; the targets with met / not met."""
    stages = Table(title="Wall time per stage (Spark local[2])")
    for col in ("events", "stage", "seconds", "events/s"):
        stages.add_column(col, justify="right" if col != "stage" else "left")
    for r in results:
        total = sum(r["stages_s"].values())
        for name, seconds in [*r["stages_s"].items(), ("bronze + silver + gold", total)]:
            stages.add_row(label(r["events"]), name, f"{seconds:.1f}", _rate(r["events"], seconds))
    console.print(stages)

    scaling = Table(title="Growth: time ratio against events ratio (1.0 = linear)")
    for col in ("from → to", "events ×", "bronze ×", "silver ×", "gold ×", "total ×"):
        scaling.add_column(col, justify="right")
    for small, big in itertools.pairwise(results):
        ratio = big["events"] / small["events"]
        cells = [big["stages_s"][s] / small["stages_s"][s] for s in ("bronze", "silver", "gold")]
        total = sum(big["stages_s"].values()) / sum(small["stages_s"].values())
        scaling.add_row(
            f"{label(small['events'])} → {label(big['events'])}",
            f"{ratio:.1f}",
            *(f"{c:.1f}" for c in cells),
            f"{total:.1f}",
        )
    console.print(scaling)

    storage = Table(title="Bytes per event: bronze against the same events as JSON")
    for col in ("events", "raw JSON", "gzip NDJSON", "bronze Parquet (zstd)", "bronze / JSON", "bronze / gzip"):
        storage.add_column(col, justify="right")
    for r in results:
        b = r["bytes_per_event"]
        storage.add_row(
            label(r["events"]),
            f"{b['raw_json']:.1f}",
            f"{b['gzip_ndjson']:.1f}",
            f"{b['bronze_parquet']:.1f}",
            f"1/{b['raw_json'] / b['bronze_parquet']:.1f}",
            f"{b['bronze_parquet'] / b['gzip_ndjson']:.2f}",
        )
    console.print(storage)

    layout = Table(title="Files per event_date partition, before and after OPTIMIZE (Z-order by player_id)")
    for col in ("events", "table", "partitions", "files/partition before", "after", "OPTIMIZE s"):
        layout.add_column(col, justify="right" if col != "table" else "left")
    for r in results:
        for name, f in r["optimize"].items():
            parts = max(1, f["partitions"])
            layout.add_row(
                label(r["events"]),
                name,
                str(f["partitions"]),
                f"{f['files_before'] / parts:.1f}",
                f"{f['files_after'] / parts:.1f}",
                f"{f['optimize_s']:.1f}",
            )
    console.print(layout)

    incr = Table(title=f"Incremental run: {INCREMENT_SHARE:.0%} new events on the last {INCREMENT_DAYS} days")
    for col in ("events", "bronze s (full)", "silver s (full)", "share of full", "MERGE files read / in table"):
        incr.add_column(col, justify="right")
    for r in results:
        i, s = r["increment"]["stages_s"], r["stages_s"]
        share = (i["bronze"] + i["silver"]) / (s["bronze"] + s["silver"])
        incr.add_row(
            f"{r['increment']['events']:,}",
            f"{i['bronze']:.1f} ({s['bronze']:.1f})",
            f"{i['silver']:.1f} ({s['silver']:.1f})",
            f"{share:.1%}",
            f"{r['increment']['merge_files_read']} / {r['increment']['merge_files']}",
        )
    console.print(incr)

    duck = Table(title="Events per player, day and event type over silver's Parquet files")
    for col in ("events", "Spark s", "DuckDB s", "Spark / DuckDB", "same total"):
        duck.add_column(col, justify="right")
    for r in results:
        d = r["daily_counts"]
        duck.add_row(
            label(r["events"]),
            f"{d['spark_s']:.1f}",
            f"{d['duckdb_s']:.1f}",
            f"{d['spark_s'] / d['duckdb_s']:.1f}×",
            "yes" if d["spark_events"] == d["duckdb_events"] else f"no ({d['spark_events']} vs {d['duckdb_events']})",
        )
    console.print(duck)

    targets = _targets(results)
    table = Table(title=f"Targets on 2 cores (load average {load['before']} before, {load['after']} after)")
    for col in ("target", "measured", "verdict"):
        table.add_column(col)
    colour = {"met": "green", "not met": "red", "not measured": "yellow"}
    for t in targets:
        table.add_row(t["target"], t["measured"], f"[{colour[t['verdict']]}]{t['verdict']}[/]")
    console.print(table)
    return targets


def _targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def verdict(ok: bool | None) -> str:
        return "not measured" if ok is None else ("met" if ok else "not met")

    out = []
    big = next((r for r in results if r["events"] >= TARGET_10M), None)
    total = sum(big["stages_s"].values()) if big else None
    out.append(
        {
            "target": "bronze + silver + gold on 10M events within 10 min",
            "measured": f"{total:.0f} s" if total is not None else "no 10M run (drop --quick)",
            "verdict": verdict(None if total is None else total <= TARGET_FULL_S),
        }
    )
    pairs = [(a, b) for a, b in itertools.pairwise(results) if b["events"] >= 10 * a["events"] * 0.99]
    if pairs:
        a, b = pairs[-1]
        growth = sum(b["stages_s"].values()) / sum(a["stages_s"].values())
        events_ratio = b["events"] / a["events"]
        out.append(
            {
                "target": "10× the events in at most 10× the time",
                "measured": f"{events_ratio:.0f}× events: {growth:.1f}× time",
                "verdict": verdict(growth <= events_ratio),
            }
        )
    else:
        out.append({"target": "10× the events in at most 10× the time", "measured": "-", "verdict": verdict(None)})
    last = results[-1]
    i, s = last["increment"]["stages_s"], last["stages_s"]
    share = (i["bronze"] + i["silver"]) / (s["bronze"] + s["silver"])
    out.append(
        {
            "target": f"incremental run (1% new) at most 10% of a full run ({label(last['events'])})",
            "measured": f"{share:.1%}",
            "verdict": verdict(share <= TARGET_INCREMENT_SHARE),
        }
    )
    b = last["bytes_per_event"]
    out.append(
        {
            "target": f"bronze at most 1/8 of raw JSON ({label(last['events'])})",
            "measured": f"{b['bronze_parquet']:.1f} of {b['raw_json']:.1f} B/event "
            f"= 1/{b['raw_json'] / b['bronze_parquet']:.1f}",
            "verdict": verdict(b["bronze_parquet"] <= b["raw_json"] * TARGET_BRONZE_SHARE_OF_JSON),
        }
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="benchmarks/lakehouse.py",
        description="Bronze → silver → gold on simulated events at two sizes: time, storage, compaction, "
        "an incremental run and DuckDB on the same files, against the targets for 2 cores.",
    )
    parser.add_argument("--events", nargs="+", type=parse_count, default=None, help="sizes, e.g. 1M 10M (the default)")
    parser.add_argument("--quick", action="store_true", help="100k and 1M events instead")
    parser.add_argument("--days", type=int, default=30, help="days of history (event_date partitions), default 30")
    parser.add_argument("--events-per-player", type=int, default=200, help="average events per player, default 200")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-gx", action="store_true", help="silver without its Great Expectations run per batch")
    parser.add_argument("--duckdb-threads", type=int, default=2, help="DuckDB threads (Spark runs local[2]), default 2")
    parser.add_argument("--workdir", default=None, help="where the work folders go (default: the system temp)")
    parser.add_argument("--keep", action="store_true", help="keep each size's work folder")
    parser.add_argument("--out", default=None, help="also write every figure as JSON to this file")
    args = parser.parse_args(argv)
    sizes = args.events or ([100_000, 1_000_000] if args.quick else [1_000_000, 10_000_000])
    sizes = sorted(sizes)

    console = Console()
    try:
        import duckdb  # noqa: F401
    except ImportError:
        console.print("[red]duckdb is not installed[/]: pip install -e '.[dev]'")
        return 1
    from pipelines.session import get_spark

    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    console.print(f"cores: {os.cpu_count()}, load average: {load_before}")
    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
    spark_settings = load_settings("local", Path(tempfile.mkdtemp(prefix="pp-lake-spark-", dir=args.workdir)))
    # A loaded machine can take longer than Spark's 15 s for a Python worker to connect back;
    # waiting longer changes no figure, failing the run would lose them all.
    spark_conf = {**spark_settings.spark.conf, "spark.python.authenticate.socketTimeout": "180s"}
    spark_settings = spark_settings.model_copy(
        update={"spark": spark_settings.spark.model_copy(update={"conf": spark_conf})}
    )
    spark = get_spark(spark_settings, app_name="playerpulse-bench-lakehouse")
    try:
        results = [run_size(spark, n, args, console) for n in sizes]
    finally:
        spark.stop()
    load = {"before": load_before, "after": " ".join(f"{x:.1f}" for x in os.getloadavg())}
    targets = report(results, console, load)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"load_average": load, "results": results, "targets": targets}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
