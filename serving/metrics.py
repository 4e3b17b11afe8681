"""Prometheus metrics of the serving process (one registry per app, so tests stay isolated)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from features.latency import hop_latencies


class ServingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.accepted = Counter("playerpulse_events_accepted", "Events accepted onto the stream", ["game"], registry=r)
        self.rejected = Counter(
            "playerpulse_events_rejected", "Events rejected and dead-lettered, by reason", ["reason"], registry=r
        )
        self.requests = Counter(
            "playerpulse_requests", "HTTP requests answered, by route and status", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "playerpulse_request_seconds",
            "Request latency by route",
            ["route"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.batch_events = Histogram(
            "playerpulse_batch_events",
            "Events per ingest request",
            buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000),
            registry=r,
        )
        self.bytes_in = Counter("playerpulse_bytes_in", "Request body bytes as received (compressed)", registry=r)
        self.bytes_decoded = Counter("playerpulse_bytes_decoded", "Request body bytes after decompression", registry=r)
        self.bytes_out = Counter(
            "playerpulse_stream_bytes_out", "Bytes written to the stream (zstd records)", registry=r
        )
        self.commit_records = Histogram(
            "playerpulse_stream_commit_records",
            "Stream records per durable write (group commit)",
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500),
            registry=r,
        )
        self.hops = Histogram(
            "playerpulse_hop_seconds",
            "Latency of each hop an event passes (features.latency.HOPS): collector for every ingest "
            "request (received to durable on the stream), the others from the profile a prediction read",
            ["hop"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0),
            registry=r,
        )
        self.prediction_log_dropped = Counter(
            "playerpulse_prediction_log_dropped",
            "Sampled predictions the prediction log dropped (its queue was full, or a write failed)",
            registry=r,
        )
        self.predictions = Counter(
            "playerpulse_predictions", "Predictions served, by model and fallback", ["model", "fallback"], registry=r
        )

        # the children a prediction updates, each looked up once, on its first use (``labels``
        # validates, locks and hashes on every call; a series still appears when first observed)
        self._served_hops: dict[str, Histogram] = {}
        self._predictions: dict[tuple[str, bool], Counter] = {}

    def observe_served_hops(self, timestamps: dict[str, int]) -> None:
        """Each hop of the profile behind one answered prediction, up to its ``served_at``; the
        collector hop is left to the ingest route, which sees every request rather than the
        newest event of each profile read."""
        for hop, ms in hop_latencies(timestamps).items():
            if hop == "collector":
                continue
            child = self._served_hops.get(hop)
            if child is None:
                child = self._served_hops[hop] = self.hops.labels(hop)
            child.observe(max(ms, 0.0) / 1000)

    def count_prediction(self, model: str, fallback: bool) -> None:
        """``playerpulse_predictions{model, fallback}`` + 1 (``fallback`` as ``true``/``false``)."""
        key = (model, fallback)
        child = self._predictions.get(key)
        if child is None:
            child = self._predictions[key] = self.predictions.labels(model, str(fallback).lower())
        child.inc()
