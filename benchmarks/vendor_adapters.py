"""In-process cost of one 100-event gzip batch per format: the vendor adapters next to ``/v1/events``.

    .venv/bin/python benchmarks/vendor_adapters.py [--rounds 7] [--batches 200] [--profile FORMAT]

No server and no I/O: ``Collector.prepare`` (the native path) and each ``VendorIngest`` entry
point are called on the same bodies ``benchmarks/collector.py`` posts, and the figure is the
best round's CPU µs per batch (this thread's CPU time, so other processes on a loaded machine
do not count; rounds interleave the formats).
``--profile segment|snowplow|gameanalytics|native`` prints a cProfile of that format instead.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# run as a file, this folder is first on the path and its serving.py would shadow the package
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from benchmarks.collector import (  # noqa: E402
    GA_GAME_KEY,
    GA_SECRET,
    GA_SECRET_ENV,
    KEY,
    batch_body,
    vendor_bodies,
    vendor_conf_dir,
)
from features.config import CONF_DIR_VAR, load_settings  # noqa: E402
from serving.collector import Collector, Prepared  # noqa: E402
from serving.vendors.ingest import VendorIngest  # noqa: E402


def calls(tmp: Path) -> dict[str, Callable[[], Prepared]]:
    """One zero-argument call per format, each preparing its 100-event batch."""
    os.environ[CONF_DIR_VAR] = str(vendor_conf_dir(tmp))
    os.environ[GA_SECRET_ENV] = GA_SECRET
    settings = load_settings("local", tmp / "var")
    collector = Collector.from_settings(settings)
    ingest = VendorIngest(settings, collector)
    native = batch_body()
    bodies = vendor_bodies()
    headers = {"content-encoding": "gzip", "content-type": "application/json"}
    _, seg_body, seg_auth = bodies["segment /v1/batch"]
    _, sp_body, _ = bodies["snowplow tp2"]
    _, ga_body, ga_auth = bodies["gameanalytics /v2/events"]
    return {
        "native": lambda: collector.prepare({**headers, "authorization": f"Bearer {KEY}"}, native),
        "segment": lambda: ingest.segment({**headers, "authorization": seg_auth}, seg_body, None),
        "snowplow": lambda: ingest.snowplow_post("demo", headers, sp_body),
        "gameanalytics": lambda: ingest.gameanalytics_events(
            GA_GAME_KEY, {**headers, "authorization": ga_auth}, ga_body
        ),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--batches", type=int, default=200, help="batches per format per round")
    ap.add_argument("--profile", choices=["native", "segment", "snowplow", "gameanalytics"])
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pp-vendor-bench-") as d:
        fns = calls(Path(d))
        for name, fn in fns.items():
            p = fn()
            if p is None or p.status != 202 or p.accepted != 100:
                got = None if p is None else (p.status, p.accepted, p.errors[:2], p.message)
                raise SystemExit(f"{name}: the benchmark batch was not accepted whole: {got}")
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(args.batches):
                fns[args.profile]()
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
            return 0
        best = dict.fromkeys(fns, float("inf"))
        for _ in range(args.rounds):
            for name, fn in fns.items():
                start = time.thread_time()
                for _ in range(args.batches):
                    fn()
                best[name] = min(best[name], (time.thread_time() - start) / args.batches * 1e6)
    load = os.getloadavg()[0]
    print(f"CPU µs per 100-event gzip batch (best of {args.rounds} rounds of {args.batches}; load {load:.1f})")
    for name, us in best.items():
        print(f"  {name:14s} {us:8.0f} µs   {best['native'] / us:5.2f}× native throughput")
    return 0


if __name__ == "__main__":
    sys.exit(main())
