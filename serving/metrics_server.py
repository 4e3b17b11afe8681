"""``/metrics`` on its own private port (``serving.metrics.port``), apart from the public API.

A scraper inside the network reads it without a key; the API port, which games reach, does
not serve it at all. One process serves one registry: with several uvicorn workers use
``serving.metrics.keys`` instead (``playerpulse serve`` refuses the combination).
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from features.errors import ConfigError


class MetricsServer:
    def __init__(self, server: WSGIServer, thread: threading.Thread):
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_metrics_server(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigError(
            f"cannot serve metrics on {host}:{port}: {exc}; choose another serving.metrics.port "
            "(one per process), or use serving.metrics.keys"
        ) from exc
    return MetricsServer(server, thread)
