"""A bounded sample of predictions, written as JSON-lines files beside the lake.

Model health needs what each prediction saw and said: the features it scored, the score, the
version that answered (and the challenger's score beside it), the fallback reason. Serving
cannot write Delta (no Spark in a serving process), so it writes whole files under
``{lake reports}/predictions/`` — a local folder or S3, whose objects cannot be appended to —
and the monitoring job (``pipelines.monitoring``) lands them in ``gold.predictions``.

Bounded three ways: only ``sample_rate`` of predictions are kept, at most ``max_queued`` wait
in memory (more are dropped and counted, never waited for), and a file holds at most
``max_file_records``. Writing happens on a background thread, so a prediction costs one
dict and a queue append. Players appear only as ``digest_for_log`` of the id the lake stores
(already the game's pseudonym where the game pseudonymises).

Local files are written under a name starting with ``.`` and renamed when complete: readers
(Spark's file source) skip hidden files, so they never see half a file.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from features.monitoring_config import PredictionLogConfig

log = logging.getLogger(__name__)

FOLDER = "predictions"
"""The log's folder under the lake's reports location."""


def log_folder(reports_location: str) -> str:
    return f"{reports_location.rstrip('/')}/{FOLDER}"


class PredictionLog:
    """Sample, queue and write prediction records; ``close`` writes what is left."""

    def __init__(
        self,
        config: PredictionLogConfig,
        folder: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        rng: Callable[[], float] = random.random,
        on_drop: Callable[[int], None] | None = None,
        background: bool = True,
    ):
        self.config = config
        self.folder = folder.rstrip("/")
        self._rng = rng
        self._on_drop = on_drop
        self._queue: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._s3 = None
        self._prefix = uuid.uuid4().hex[:12]  # one process, one file-name prefix: no two writers collide
        self._files = 0
        self._background = background
        """A writer thread (a server); without one (AWS Lambda, whose container freezes between
        invocations) the caller calls ``flush_if_due`` after each request instead."""
        self._oldest: float | None = None
        self.dropped = 0
        parts = urlsplit(self.folder)
        if parts.scheme in ("s3", "s3a", "s3n"):
            import boto3

            self._s3 = boto3.client("s3", endpoint_url=endpoint_url, region_name=region or "us-east-1")
            self._bucket, self._key_prefix = parts.netloc, parts.path.strip("/")

    def offer(self, record: Mapping[str, Any]) -> bool:
        """Keep ``record`` with probability ``sample_rate``; whether it was queued."""
        rate = self.config.sample_rate
        if rate <= 0 or (rate < 1 and self._rng() >= rate):
            return False
        with self._lock:
            if len(self._queue) >= self.config.max_queued:
                self.dropped += 1
                full, ready = True, False
            else:
                self._queue.append(dict(record))
                if self._oldest is None:
                    self._oldest = time.monotonic()
                full = False
                ready = len(self._queue) >= self.config.max_file_records
        if full:
            if self._on_drop is not None:
                self._on_drop(1)
            return False
        self._start()
        if ready:
            self._wake.set()
        return True

    def flush_if_due(self) -> int:
        """Write the queue if a file's worth is waiting or its oldest record has waited
        ``flush_seconds``; how many records were written."""
        with self._lock:
            size, oldest = len(self._queue), self._oldest
        if size >= self.config.max_file_records or (
            oldest is not None and time.monotonic() - oldest >= self.config.flush_seconds
        ):
            return self.flush()
        return 0

    def _start(self) -> None:
        if not self._background:
            return
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.config.flush_seconds)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        """Write every queued record now (in files of at most ``max_file_records``); how many."""
        written = 0
        while True:
            with self._lock:
                n = min(len(self._queue), self.config.max_file_records)
                batch = [self._queue.popleft() for _ in range(n)]
                if not self._queue:
                    self._oldest = None
            if not batch:
                return written
            try:
                self._write(batch)
                written += len(batch)
            except Exception:  # the log must never take serving down; it says what it lost
                log.exception("could not write %d prediction log records to %s", len(batch), self.folder)
                self.dropped += len(batch)
                if self._on_drop is not None:
                    self._on_drop(len(batch))

    def _write(self, batch: list[dict[str, Any]]) -> None:
        self._files += 1
        name = f"{int(time.time() * 1000):013d}-{self._prefix}-{self._files:06d}.jsonl"
        text = "".join(json.dumps(r, separators=(",", ":"), default=float) + "\n" for r in batch).encode()
        if self._s3 is not None:
            key = f"{self._key_prefix}/{name}" if self._key_prefix else name
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=text)
            return
        folder = Path(self.folder.removeprefix("file://"))
        folder.mkdir(parents=True, exist_ok=True)
        hidden = folder / f".{name}.tmp"
        hidden.write_bytes(text)
        os.replace(hidden, folder / name)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()


def read_log(folder: str) -> list[dict[str, Any]]:
    """Every record of a local log folder, oldest file first (tests and small reports)."""
    path = Path(folder)
    if not path.is_dir():
        return []
    out: list[dict[str, Any]] = []
    for f in sorted(p for p in path.glob("*.jsonl") if not p.name.startswith(".")):
        out.extend(json.loads(line) for line in f.read_text().splitlines() if line.strip())
    return out
