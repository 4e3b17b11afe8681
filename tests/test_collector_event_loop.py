"""The collector's event loop stays free: slow bodies time out, heavy bodies decode off the loop."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from typing import Any

import httpx

from features.config import DEVELOPMENT_KEYS, Settings
from serving.app import create_app
from tests_support import call_asgi, make_event

INGEST = {"Authorization": f"Bearer {DEVELOPMENT_KEYS['ingest']}", "Content-Encoding": "gzip"}


def with_serving(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update={"serving": settings.serving.model_copy(update=changes)})


def test_a_body_trickled_slower_than_the_read_timeout_gets_408(settings):
    app = create_app(with_serving(settings, body_read_timeout_s=0.5))

    async def trickle() -> dict[str, Any]:
        await asyncio.sleep(0.2)
        return {"type": "http.request", "body": b"[", "more_body": True}

    sent = asyncio.run(call_asgi(app, "POST", "/v1/events", {**INGEST, "content-length": "100"}, trickle))
    assert sent[0]["status"] == 408
    assert b"did not arrive within 0.5 s" in sent[1]["body"]


def test_a_heavy_body_is_decoded_off_the_event_loop_and_a_light_one_on_it(settings):
    """Which thread decodes each request: heavy work on the loop's thread is what stalled
    /healthz and every other client behind a few large bodies."""
    heavy = gzip.compress(json.dumps([make_event(properties={"blob": "x" * 7000}) for _ in range(200)]).encode())
    light = gzip.compress(json.dumps([make_event()]).encode())
    app = create_app(settings)
    collector = app.state.serving.collector
    decoded_on: list[tuple[int, bool]] = []
    real_prepare = collector.prepare

    def spy(headers, body, inline_budget=None):
        out = real_prepare(headers, body, inline_budget)
        if out is not None:
            decoded_on.append((len(body), threading.get_ident() == loop_thread))
        return out

    collector.prepare = spy

    async def run() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://pp") as client:
                for body in (heavy, light):
                    r = await client.post("/v1/events", content=body, headers=INGEST)
                    assert r.status_code == 202, r.text

    loop_thread = threading.get_ident()
    asyncio.run(run())
    assert decoded_on == [(len(heavy), False), (len(light), True)]


def test_a_small_body_is_decoded_inline_and_a_large_one_in_a_decode_thread(settings):
    """The threshold is the decompressed size: a small gzip body that inflates past the inline
    budget is still handed to the decode pool."""
    collector = create_app(settings).state.serving.collector
    budget = settings.collector.inline_decode_bytes
    small = gzip.compress(json.dumps([make_event()]).encode())
    inflating = gzip.compress(json.dumps([make_event(properties={"pad": " " * budget})]).encode())
    headers = {"authorization": INGEST["Authorization"], "content-encoding": "gzip"}
    assert len(inflating) < budget
    assert collector.prepare(headers, small, inline_budget=budget).status == 202
    assert collector.prepare(headers, inflating, inline_budget=budget) is None
    assert collector.prepare(headers, inflating).status == 202
