"""A real collector on 127.0.0.1 (uvicorn in a thread) for the vendors' own client libraries."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from features.config import GameVendorsConfig, Settings
from features.deadletter import open_dead_letter_store
from features.streams import decode_batch, open_stream
from playerpulse.gateway import free_port
from serving.app import create_app

INGEST_KEY = "pp-demo-key-local-only"
GA_GAME_KEY = "5c6bcb5402204249437fb5a7a80a4959"
GA_SECRET = "16813a12f718bc5c620f56944e1abc3ea13ccbac"  # GameAnalytics' published sandbox secret
GA_SECRET_ENV = "PLAYERPULSE_TEST_GA_SECRET"


def with_vendors(settings: Settings, **vendors: Any) -> Settings:
    """``settings`` with game ``demo`` accepting vendor formats (GameAnalytics keys included)."""
    cfg = GameVendorsConfig(gameanalytics_game_key=GA_GAME_KEY, gameanalytics_secret_env=GA_SECRET_ENV, **vendors)
    demo = settings.games["demo"].model_copy(update={"vendors": cfg})
    return settings.model_copy(update={"games": {**settings.games, "demo": demo}})


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """The app on a free port until the block ends; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the collector did not start")
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def stream_events(settings: Settings) -> list[dict[str, Any]]:
    with open_stream(settings.stream) as s:
        return [e for rec in s.read_all() for e in decode_batch(rec.data)[1]]


def dead_letters(settings: Settings) -> list[Any]:
    store = open_dead_letter_store(settings.dead_letter)
    try:
        return [d for _, d in store.read(None, 1000)]
    finally:
        store.close()
