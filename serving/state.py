"""What the HTTP routes share, built once per process and reached through a dependency.

A typed object instead of a dict of closures: each router asks for ``ServingState`` and gets
the configured stream, stores, writer, keys and metrics; nothing opens on import, so tests and
workers build as many apps as they like.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import Depends
from starlette.requests import Request

from features.config import Settings
from features.contract import now_ms
from features.deadletter import DeadLetterStore, open_dead_letter_store
from features.errors import StreamUnavailable
from features.online import OnlineStore, open_online_store
from features.streams import Stream, open_stream
from serving.auth import BearerKeys, GameKeys
from serving.collector import Collector, Prepared, reason_kind, stream_unavailable
from serving.metrics import ServingMetrics
from serving.prediction_log import PredictionLog, log_folder
from serving.writer import GroupCommitWriter

if TYPE_CHECKING:
    from serving.predict import Predictor

T = TypeVar("T")
_settled = False
"""Whether this process has frozen its start-up objects (``ServingState.settle``)."""
PREDICT_THREADS = 40
"""Predictions in flight at once per process: anyio's default thread limit, which predictions
ran under before they had their own pool."""


@dataclass
class ServingState:
    settings: Settings
    metrics: ServingMetrics = field(default_factory=ServingMetrics)
    stream: Stream | None = None
    dead_letters: DeadLetterStore | None = None
    online: OnlineStore | None = None
    writer: GroupCommitWriter | None = None
    prediction_log: PredictionLog | None = None
    _predictor: Predictor | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.keys = GameKeys(self.settings.games)
        self.collector = Collector.from_settings(self.settings, self.keys)
        self.metrics_keys = BearerKeys(self.settings.serving.metrics.keys)
        cfg = self.settings.collector
        self._decode_pool = ThreadPoolExecutor(cfg.decode_threads, thread_name_prefix="decode")
        self._decode_slots = asyncio.BoundedSemaphore(cfg.max_queued_decodes)
        self._predict_pool = ThreadPoolExecutor(PREDICT_THREADS, thread_name_prefix="predict")

    def settle(self) -> None:
        """Once the first prediction has been answered with a model (the predictor built, its
        champion loaded: the imports and objects a serving process keeps), move every object
        the garbage collector tracks into its permanent generation (``gc.freeze``): without it,
        a full collection walks all of them, ~0.2-0.7 s on this process, stalling every request
        in flight (the 8-connection p99 went to ~300 ms when one fell in the benchmark)."""
        global _settled
        if not _settled:  # once a process: a long-lived server has one app
            _settled = True
            gc.freeze()

    async def run_predict(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a prediction worker thread: the loop's own executor hand-off, about
        half the CPU of ``anyio.to_thread.run_sync``'s (limiter, cancel scope, worker queue)."""
        return await asyncio.get_running_loop().run_in_executor(self._predict_pool, fn, *args)

    async def prepare_events(self, headers: Mapping[str, str], body: bytes) -> Prepared:
        """``Collector.prepare`` on the loop for small bodies, in the decode pool for large ones.

        Handing every request to a thread would cost throughput (GIL hand-offs); the collector
        instead tries inline with a decompression budget and says when a body is over it.
        """
        prepared = self.collector.prepare(headers, body, inline_budget=self.settings.collector.inline_decode_bytes)
        if prepared is not None:
            return prepared
        if self._decode_slots.locked():
            return stream_unavailable(RuntimeError("the collector is busy decoding large bodies"))
        async with self._decode_slots:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._decode_pool, self.collector.prepare, headers, body)

    def open(self) -> None:
        self.stream = open_stream(self.settings.stream)
        self.dead_letters = open_dead_letter_store(self.settings.dead_letter)
        self.online = open_online_store(self.settings.online_store, self.settings.serving.store_timeout_ms)
        self.writer = GroupCommitWriter(
            self.stream,
            self.settings.collector.group_commit_max_wait_ms,
            on_commit=lambda recs: self.metrics.commit_records.observe(len(recs)),
        )
        self.prediction_log = PredictionLog(
            self.settings.serving.prediction_log,
            log_folder(self.settings.reports_location),
            endpoint_url=self.settings.lake.endpoint_url,
            region=self.settings.lake.region,
            on_drop=self.metrics.prediction_log_dropped.inc,
        )

    async def commit(self, prepared: Prepared) -> Prepared:
        """Make a prepared request durable (dead letters, then records) and count it: what every
        ingest route does after its own decoding; the 503 when the stream or store refuses."""
        try:
            if prepared.dead_letters:
                assert self.dead_letters is not None
                await asyncio.to_thread(self.dead_letters.put, prepared.dead_letters)
            assert self.writer is not None
            await self.writer.write(prepared.records)
        except StreamUnavailable as exc:
            return stream_unavailable(exc)
        if prepared.status == 202:
            m = self.metrics
            if prepared.records and prepared.received_at is not None:  # durable now: the collector hop
                m.hops.labels("collector").observe(max(now_ms() - prepared.received_at, 0) / 1000)
            m.accepted.labels(prepared.game or "").inc(prepared.accepted)
            m.batch_events.observe(prepared.events_in)
            m.bytes_decoded.inc(prepared.decoded_bytes)
            m.bytes_out.inc(prepared.bytes_out)
            for err in prepared.errors:
                m.rejected.labels(reason_kind(err["reason"])).inc()
        return prepared

    async def close(self) -> None:
        self._decode_pool.shutdown(wait=False, cancel_futures=True)
        self._predict_pool.shutdown(wait=False, cancel_futures=True)
        if self.writer is not None:
            await self.writer.stop()
        if self.prediction_log is not None:
            await asyncio.to_thread(self.prediction_log.close)
        for resource in (self.stream, self.dead_letters, self.online):
            if resource is not None:
                resource.close()

    def readiness_problems(self) -> list[str]:
        """What keeps this process from serving (empty when ready); blocking: run in a thread."""
        from features.model_config import list_model_configs, served_feature_set
        from serving.model_files import check_context

        problems: list[str] = []
        assert self.online is not None
        try:
            self.online.get("__readyz__", "__readyz__")
        except Exception as exc:
            problems.append(f"online store: {exc}")
        try:
            predictor = self.predictor()
            for cfg in list_model_configs(self.settings):
                try:
                    champion = predictor.champions.get(cfg.name)
                    if champion.feature_set in predictor.feature_sets:  # an older version may name none
                        served_feature_set(cfg.name, champion.feature_set, predictor.feature_sets)
                    check_context(champion, cfg)  # else every prediction would be a model_error fallback
                except Exception as exc:
                    problems.append(f"model {cfg.name}: {exc}")
        except Exception as exc:
            problems.append(f"models: {exc}")
        return problems

    def predictor(self) -> Predictor:
        """Built on first use: importing xgboost and the registry client costs a second."""
        with self._lock:
            if self._predictor is None:
                from serving.predict import Predictor

                assert self.online is not None, "the app's lifespan opens the online store"
                self._predictor = Predictor(self.settings, self.online, prediction_log=self.prediction_log)
            return self._predictor


def serving_state(request: Request) -> ServingState:
    """FastAPI dependency: the state of the app serving this request."""
    return request.app.state.serving


State = Annotated[ServingState, Depends(serving_state)]
"""A route's parameter ``state: State`` receives the app's ``ServingState``."""
