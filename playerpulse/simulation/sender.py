"""Post deliveries to the collector the way a game client SDK does.

Each delivery becomes one gzip-compressed ``POST /v1/events`` with the game's key. ``sent_at``
is stamped (device clock: now plus the device's skew) on every event of a batch just before each
attempt, which is what lets the collector undo clock skew on history replayed today.

Ordering: deliveries leave in the given order through a window of ``concurrency`` requests in
flight (one worker thread each, sharing one ``httpx.Client`` connection pool; threads rather than
asyncio because httpx's async path halved the requests per second in a measurement), and a delivery
never starts before the previous delivery of the same player finished.
So one player's batches arrive in the order the device sent them (the late and duplicate
batches the simulator made stay where it put them), while different players interleave.

Retries: 503 and 429 (honouring ``Retry-After``) and connection errors are retried a few times
with tenacity; any other non-2xx answer is final and reported in ``SendReport.errors``.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from features.contract import now_ms
from playerpulse.simulation.delivery import Delivery

RETRIED_STATUSES = frozenset({429, 503})
MAX_RETRY_AFTER_S = 30.0
MAX_ERRORS_KEPT = 1000


@dataclass
class SendReport:
    """What the collector made of a replay."""

    accepted: int = 0
    rejected: int = 0
    requests: int = 0
    """HTTP requests made, retries included."""
    duplicate_sends: int = 0
    """Deliveries sent that re-send an earlier delivery's events."""
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    """Deliveries that were not taken (a final non-2xx answer or retries exhausted)."""
    deliveries: int = 0
    failed_deliveries: int = 0
    rejection_reasons: Counter[str] = field(default_factory=Counter)
    """Per-event rejection reasons the collector gave in its 202 answers, counted."""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()  # sender threads update one report

    def _count_request(self) -> None:
        with self._lock:
            self.requests += 1

    def _count_delivery(self, duplicate: bool) -> None:
        with self._lock:
            self.deliveries += 1
            self.duplicate_sends += duplicate

    def _error(self, message: str) -> None:
        with self._lock:
            self.failed_deliveries += 1
            if len(self.errors) < MAX_ERRORS_KEPT:
                self.errors.append(message)

    def _add(self, accepted: int, rejected: int, reasons: Iterable[str]) -> None:
        with self._lock:
            self.accepted += accepted
            self.rejected += rejected
            self.rejection_reasons.update(reasons)


class _RetryableStatus(Exception):
    def __init__(self, status: int, retry_after: float | None):
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


def _retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to the backoff


_backoff = wait_exponential_jitter(initial=0.2, max=5.0)


def _wait(state: RetryCallState) -> float:
    """The server's ``Retry-After`` when it gave one, else exponential backoff with jitter."""
    exc = state.outcome.exception() if state.outcome is not None else None
    if isinstance(exc, _RetryableStatus) and exc.retry_after is not None:
        return exc.retry_after
    return _backoff(state)


def stamped_body(delivery: Delivery, sent_at_ms: int) -> bytes:
    """The gzip body of one attempt: every event object gets the device-clock ``sent_at``."""
    events = [{**e, "sent_at": sent_at_ms} if isinstance(e, dict) else e for e in delivery.events]
    return gzip.compress(msgspec.json.encode({"events": events}), compresslevel=5, mtime=0)


def _post(client: httpx.Client, delivery: Delivery, report: SendReport, attempts: int) -> httpx.Response:
    for attempt in Retrying(
        stop=stop_after_attempt(attempts),
        wait=_wait,
        retry=retry_if_exception_type((_RetryableStatus, httpx.TransportError)),
        reraise=True,
    ):
        with attempt:
            body = stamped_body(delivery, now_ms() + delivery.skew_ms)
            report._count_request()
            response = client.post("/v1/events", content=body)
            if response.status_code in RETRIED_STATUSES:
                raise _RetryableStatus(response.status_code, _retry_after_seconds(response))
            return response
    raise AssertionError("unreachable: tenacity re-raises the last failure")


def _record(report: SendReport, label: str, response: httpx.Response) -> None:
    if response.status_code // 100 != 2:
        report._error(f"{label}: HTTP {response.status_code}: {response.text[:300]}")
        return
    try:
        answer: dict[str, Any] = response.json()
    except ValueError:
        report._error(f"{label}: HTTP {response.status_code} with a body that is not JSON")
        return
    reasons = [str(err.get("reason", "?"))[:160] for err in answer.get("errors") or ()]
    report._add(int(answer.get("accepted", 0)), int(answer.get("rejected", 0)), reasons)


def send_deliveries(
    url: str,
    api_key: str,
    deliveries: Iterable[Delivery],
    concurrency: int = 8,
    on_progress: Callable[[int], None] | None = None,
    *,
    attempts: int = 5,
    timeout_s: float = 30.0,
) -> SendReport:
    """Post every delivery to ``{url}/v1/events``; ``on_progress(1)`` after each delivery finishes."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    report = SendReport()
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json", "Content-Encoding": "gzip"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    window = threading.BoundedSemaphore(concurrency)
    last_of_player: dict[str, Future[None]] = {}
    started = time.perf_counter()

    def deliver(number: int, delivery: Delivery, previous: Future[None] | None) -> None:
        # The previous delivery of this player was submitted earlier to this FIFO pool, so it
        # is running or done by the time a worker waits here: the wait cannot deadlock.
        try:
            if previous is not None:
                wait([previous])
            label = f"delivery {number} ({delivery.player_id})"
            try:
                response = _post(client, delivery, report, attempts)
            except _RetryableStatus as exc:
                report._error(f"{label}: {exc} after {attempts} attempts")
            except httpx.TransportError as exc:
                report._error(f"{label}: {type(exc).__name__} after {attempts} attempts: {exc}")
            except httpx.HTTPError as exc:
                report._error(f"{label}: {type(exc).__name__}: {exc}")
            else:
                _record(report, label, response)
            report._count_delivery(delivery.duplicate)
        finally:
            window.release()
            if on_progress is not None:
                on_progress(1)

    with (
        httpx.Client(base_url=url.rstrip("/"), headers=headers, limits=limits, timeout=timeout_s) as client,
        ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="sender") as pool,
    ):
        futures = []
        for number, delivery in enumerate(deliveries):
            window.acquire()
            future = pool.submit(deliver, number, delivery, last_of_player.get(delivery.player_id))
            last_of_player[delivery.player_id] = future
            futures.append(future)
        for future in futures:
            future.result()  # surfaces a bug in on_progress instead of swallowing it
    report.seconds = time.perf_counter() - started
    return report
