"""The cost levers, measured on one simulated day: bytes, Kinesis payload units, S3 objects.

```bash
.venv/bin/python benchmarks/cost.py                    # 100,000 players, one day (~2-3 min on 2 cores)
.venv/bin/python benchmarks/cost.py --players 5000     # a quick run
.venv/bin/python benchmarks/cost.py --out conf/cost/measured.json   # refresh the estimator's defaults
```

Every figure comes from the real code paths: the simulator's device batches
(``playerpulse.simulation``), the contract's typed decoding, the collector's per-player record
splitting (``serving.collector``) over the stream codec (``features.streams.codec.encode_events``),
and Parquet/zstd files written with pyarrow the way the bronze job lays them out. The baseline
is what a naive pipeline does: one event per Kinesis record as plain JSON, landed as it is.
The JSON it writes is what ``playerpulse cost estimate`` reads as its measured inputs.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from features.contract import Event, normalise
from playerpulse.simulation import simulate
from playerpulse.simulation.sender import stamped_body
from serving.collector import _encode_within_limit

PUT_UNIT_BYTES = 25 * 1024
"""Provisioned Kinesis bills PutRecords in 25 KB payload units per record (rounded up)."""
ON_DEMAND_ROUND_BYTES = 1024
"""On-demand Kinesis bills ingested data with each record rounded up to 1 KB."""
COMPACTED_FILE_BYTES = 128 * 1024 * 1024
SAMPLE_EVERY = 10
_event_decoder = msgspec.json.Decoder(Event)
_encode = msgspec.json.encode

LAYOUTS: dict[str, tuple[str, ...]] = {
    "unpartitioned": (),
    "event_date": ("event_date",),
    "event_date/event_type": ("event_date", "event_type"),
    "event_date/hour": ("event_date", "hour"),
}


def _units(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


def _parquet_bytes(table: pa.Table) -> int:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return int(sink.getvalue().size)


def _stream_side(sim: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Wire, record and Kinesis figures; returns them and the bronze rows (with arrival times).

    Single-event gzip and zstd sizes are averaged over every ``SAMPLE_EVERY``-th event: they
    are per-event averages, and compressing each of a million events alone would dominate the run.
    """
    gz_single = zstd_single = sampled = 0
    events = requests = body_bytes = 0
    record_sizes: list[int] = []
    single_sizes: list[int] = []
    rows: list[dict[str, Any]] = []
    zstd = zstandard.ZstdCompressor(level=3)
    cpu = 0.0
    for delivery in sim.deliveries:
        sent_at = delivery.simulated_send_ms + delivery.skew_ms
        received_at = delivery.simulated_send_ms + 80
        requests += 1
        body_bytes += len(stamped_body(delivery, sent_at))
        started = time.perf_counter()
        valid: list[Event] = []
        for raw in delivery.events:
            if not isinstance(raw, dict):
                continue
            data = _encode({**raw, "sent_at": sent_at})
            try:
                valid.append(_event_decoder.decode(data))
            except (msgspec.ValidationError, msgspec.DecodeError):
                continue
            if len(single_sizes) % SAMPLE_EVERY == 0:
                gz_single += len(gzip.compress(data, compresslevel=6, mtime=0))
                zstd_single += len(zstd.compress(data))
                sampled += 1
            single_sizes.append(len(data))
        records = _encode_within_limit(valid, received_at, received_at) if valid else []
        cpu += time.perf_counter() - started
        record_sizes.extend(len(r) for r in records)
        for ev in valid:
            row = normalise(ev, received_at)
            row["properties"] = _encode(row["properties"]).decode()
            rows.append(row)
        events += len(valid)
    raw_bytes = sum(single_sizes)
    batch_bytes = sum(record_sizes)
    per_m = 1_000_000 / events
    figures = {
        "events": events,
        "requests": requests,
        "records": len(record_sizes),
        "events_per_request": events / requests,
        "events_per_record": events / len(record_sizes),
        "collector_cpu_ms_per_request": 1000 * cpu / requests,
        "bytes_per_event": {
            "raw_json": raw_bytes / events,
            "gzip_one_event": gz_single / sampled,
            "zstd_one_event": zstd_single / sampled,
            "gzip_device_batch": body_bytes / events,
            "zstd_player_record": batch_bytes / events,
        },
        "kinesis": {
            "put_units_per_million_events": {
                "one_event_json": sum(_units(s, PUT_UNIT_BYTES) for s in single_sizes) * per_m,
                "player_batches_zstd": sum(_units(s, PUT_UNIT_BYTES) for s in record_sizes) * per_m,
            },
            "on_demand_billed_bytes_per_event": {
                "one_event_json": sum(_units(s, ON_DEMAND_ROUND_BYTES) for s in single_sizes) * 1024 / events,
                "player_batches_zstd": sum(_units(s, ON_DEMAND_ROUND_BYTES) for s in record_sizes) * 1024 / events,
            },
            "records_per_million_events": {
                "one_event_json": len(single_sizes) * per_m,
                "player_batches_zstd": len(record_sizes) * per_m,
            },
        },
    }
    return figures, rows


def _bronze_table(rows: list[dict[str, Any]]) -> pa.Table:
    table = pa.Table.from_pylist(rows)
    times = np.asarray(table["event_time"].to_numpy(), dtype="datetime64[ms]")
    table = table.append_column("event_date", pa.array(times.astype("datetime64[D]")))
    return table.append_column("hour", pa.array(times.astype("datetime64[h]").astype(np.int64) % 24, pa.int8()))


def _lake_side(table: pa.Table, batch_seconds: int) -> dict[str, Any]:
    """Objects and bytes of one day landed by micro-batches, per partition layout, before and
    after compaction (one file per partition up to 128 MB, as OPTIMIZE makes)."""
    batch = np.asarray(table["received_at"].to_numpy()) // (batch_seconds * 1000)
    events = table.num_rows
    out: dict[str, Any] = {}
    for name, keys in LAYOUTS.items():
        data = table.drop_columns(["event_date", "hour"])
        codes = _partition_codes(table, keys)
        files = written = 0
        for rows in _groups(batch * (codes.max() + 1) + codes):  # one file per (micro-batch, partition)
            files += 1
            written += _parquet_bytes(data.take(pa.array(rows)))
        compacted = [_parquet_bytes(data.take(pa.array(rows))) for rows in _groups(codes)]
        out[name] = {
            "partitions": len(compacted),
            "objects_before_compaction": files,
            "bytes_before_compaction": written,
            "objects_after_compaction": sum(_units(size, COMPACTED_FILE_BYTES) for size in compacted),
            "bytes_after_compaction": sum(compacted),
            "bytes_per_event_after_compaction": sum(compacted) / events,
        }
    return out


def _partition_codes(table: pa.Table, keys: tuple[str, ...]) -> np.ndarray:
    """One integer per row naming its partition under ``keys`` (0 for every row when unpartitioned)."""
    codes = np.zeros(table.num_rows, dtype=np.int64)
    for key in keys:
        _, inverse = np.unique(np.asarray(table[key].to_numpy(zero_copy_only=False)), return_inverse=True)
        codes = codes * (int(inverse.max()) + 1) + inverse
    return codes


def _groups(codes: np.ndarray) -> list[np.ndarray]:
    """Row indices per distinct code, each in table order."""
    order = np.argsort(codes, kind="stable")
    cuts = np.flatnonzero(np.diff(codes[order])) + 1
    return np.split(order, cuts)


def _hourly_share(table: pa.Table) -> list[float]:
    """Share of the day's events arriving in each UTC hour (what shards must follow)."""
    hours = (np.asarray(table["received_at"].to_numpy()) // 3_600_000) % 24
    counts = np.bincount(hours, minlength=24).astype(float)
    return (counts / counts.sum()).round(5).tolist()


def _print(result: dict[str, Any], console: Console) -> None:
    s = result["stream"]
    b = s["bytes_per_event"]
    t = Table(
        "bytes per event",
        "bytes",
        "vs raw JSON",
        title=f"{result['players']:,} players, {s['events']:,} events, one day",
    )
    for key, label in [
        ("raw_json", "raw JSON, one event"),
        ("gzip_one_event", "gzip, one event"),
        ("zstd_one_event", "zstd, one event"),
        ("gzip_device_batch", f"gzip, device batch ({s['events_per_request']:.1f} events/request)"),
        ("zstd_player_record", f"zstd, collector record ({s['events_per_record']:.1f} events/record)"),
    ]:
        t.add_row(label, f"{b[key]:,.1f}", f"{b['raw_json'] / b[key]:.1f}×")
    console.print(t)
    k = s["kinesis"]
    t = Table("Kinesis, per million events", "one event per record (JSON)", "per-player batches (zstd)", "ratio")
    for key, label in [
        ("put_units_per_million_events", "PUT payload units (25 KB)"),
        ("records_per_million_events", "records"),
        ("on_demand_billed_bytes_per_event", "on-demand billed bytes/event (1 KB rounding)"),
    ]:
        one, batch = k[key]["one_event_json"], k[key]["player_batches_zstd"]
        t.add_row(label, f"{one:,.0f}", f"{batch:,.0f}", f"{one / batch:.1f}×")
    console.print(t)
    t = Table(
        "S3 layout (Parquet/zstd)",
        "objects/day",
        "MB/day",
        "objects after compaction",
        "MB after",
        "bytes/event",
        title=f"micro-batches every {result['batch_seconds']} s",
    )
    for name, v in result["lake"].items():
        t.add_row(
            name,
            f"{v['objects_before_compaction']:,}",
            f"{v['bytes_before_compaction'] / 1e6:,.1f}",
            f"{v['objects_after_compaction']:,}",
            f"{v['bytes_after_compaction'] / 1e6:,.1f}",
            f"{v['bytes_per_event_after_compaction']:,.1f}",
        )
    console.print(t)
    units = k["put_units_per_million_events"]
    s3 = b["raw_json"] / result["lake"]["event_date"]["bytes_per_event_after_compaction"]
    console.print(
        f"batching + zstd vs one-event-per-record JSON: Kinesis payload units "
        f"[bold]{units['one_event_json'] / units['player_batches_zstd']:.1f}×[/] fewer, "
        f"S3 bytes per event [bold]{s3:.1f}×[/] fewer (target ≥ 5×)"
    )


def run(players: int, seed: int, batch_seconds: int) -> dict[str, Any]:
    started = time.perf_counter()
    sim = simulate(players, 1, seed=seed, end=datetime(2026, 11, 2, tzinfo=UTC))
    stream, rows = _stream_side(sim)
    table = _bronze_table(rows)
    lake = _lake_side(table, batch_seconds)
    return {
        "measured_at": date.today().isoformat(),
        "source": "benchmarks/cost.py",
        "players": players,
        "seed": seed,
        "batch_seconds": batch_seconds,
        "stream": stream,
        "lake": lake,
        "hourly_share": _hourly_share(table),
        "run_seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--players", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch-seconds", type=int, default=60, help="Micro-batch interval of the lake landing.")
    parser.add_argument("--out", type=Path, default=Path("var/reports/cost_measured.json"))
    args = parser.parse_args(argv)
    result = run(args.players, args.seed, args.batch_seconds)
    _print(result, Console())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out} ({result['run_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
