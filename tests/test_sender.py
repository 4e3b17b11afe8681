"""The sender posts deliveries as a game client would, against a real HTTP server."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from features.contract import now_ms
from playerpulse.simulation import Delivery, live_events, send_deliveries

KEY = "pp-test-key"


@dataclass
class Recorder:
    """What the fake collector saw, and the answers it gives before its normal 202s."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)


def _app(recorder: Recorder) -> Starlette:
    async def events(request: Request) -> Response:
        raw = await request.body()
        body = json.loads(gzip.decompress(raw))
        recorder.requests.append({"headers": dict(request.headers), "body": body, "received_ms": now_ms()})
        if recorder.script:
            status, headers = recorder.script.pop(0)
            return Response(status_code=status, headers=headers)
        bad = [i for i, e in enumerate(body["events"]) if not isinstance(e, dict) or "player_id" not in e]
        return JSONResponse(
            {
                "accepted": len(body["events"]) - len(bad),
                "rejected": len(bad),
                "errors": [{"index": i, "reason": "missing player_id"} for i in bad],
            },
            status_code=202,
        )

    return Starlette(routes=[Route("/v1/events", events, methods=["POST"])])


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    srv = uvicorn.Server(uvicorn.Config(_app(recorder), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", recorder
    srv.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
def collector(server: tuple[str, Recorder]) -> tuple[str, Recorder]:
    url, recorder = server
    recorder.requests.clear()
    recorder.script.clear()
    return url, recorder


def _delivery(pid: str = "p000001", skew_ms: int = 0, n: int = 3, duplicate: bool = False) -> Delivery:
    events = [
        {
            "event_id": f"00000000-0000-4000-8000-{i:012d}",
            "event_type": "store_view",
            "player_id": pid,
            "game_id": "demo",
            "event_time": 1_700_000_000_000 + i,
            "platform": "ios",
            "app_version": "1.4.2",
            "properties": {"section": "gems"},
        }
        for i in range(n)
    ]
    return Delivery(pid, skew_ms, events, simulated_send_ms=0, duplicate=duplicate)


def test_body_is_gzipped_json_holding_the_delivery_events_plus_sent_at(collector):
    url, recorder = collector
    delivery = _delivery()
    send_deliveries(url, KEY, [delivery])
    (request,) = recorder.requests
    sent = request["body"]["events"]
    assert [{k: v for k, v in e.items() if k != "sent_at"} for e in sent] == delivery.events
    assert request["headers"]["content-encoding"] == "gzip"
    assert request["headers"]["content-type"] == "application/json"


def test_the_game_key_goes_in_a_bearer_authorization_header(collector):
    url, recorder = collector
    send_deliveries(url, KEY, [_delivery()])
    assert recorder.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"


def test_sent_at_is_the_device_clock_when_the_batch_leaves(collector):
    url, recorder = collector
    skew = 3 * 3_600_000
    send_deliveries(url, KEY, [_delivery(skew_ms=skew)])
    request = recorder.requests[0]
    stamps = {e["sent_at"] for e in request["body"]["events"]}
    assert len(stamps) == 1
    assert abs(stamps.pop() - skew - request["received_ms"]) < 2_000


def test_the_original_events_are_not_modified_by_stamping(collector):
    url, _ = collector
    delivery = _delivery()
    send_deliveries(url, KEY, [delivery])
    assert all("sent_at" not in e for e in delivery.events)


def test_a_503_is_retried_after_its_retry_after_and_then_counted(collector):
    url, recorder = collector
    recorder.script.append((503, {"Retry-After": "1"}))
    report = send_deliveries(url, KEY, [_delivery(n=4)])
    first, second = recorder.requests
    assert second["received_ms"] - first["received_ms"] >= 900
    assert (report.requests, report.accepted, report.errors) == (2, 4, [])


def test_a_400_is_reported_and_not_retried(collector):
    url, recorder = collector
    recorder.script.append((400, {}))
    report = send_deliveries(url, KEY, [_delivery()])
    assert report.requests == 1
    assert report.accepted == 0
    assert len(report.errors) == 1 and "HTTP 400" in report.errors[0]


def test_events_the_collector_rejects_are_counted_with_their_reasons(collector):
    url, _ = collector
    delivery = _delivery()
    delivery.events.append(["not", "an", "object"])
    report = send_deliveries(url, KEY, [delivery])
    assert (report.accepted, report.rejected) == (3, 1)
    assert report.rejection_reasons == {"missing player_id": 1}


def test_one_players_deliveries_arrive_in_the_order_they_were_sent(collector):
    url, recorder = collector
    deliveries = [_delivery(pid=f"p00000{i % 3}", n=1 + i % 4) for i in range(30)]
    for number, d in enumerate(deliveries):
        d.events[0]["properties"] = {"section": str(number)}
    send_deliveries(url, KEY, deliveries, concurrency=8)
    for pid in ("p000000", "p000001", "p000002"):
        arrived = [
            int(r["body"]["events"][0]["properties"]["section"])
            for r in recorder.requests
            if r["body"]["events"][0]["player_id"] == pid
        ]
        assert arrived == sorted(arrived) and len(arrived) == 10


def test_duplicate_sends_and_progress_are_counted_per_delivery(collector):
    url, _ = collector
    progress: list[int] = []
    report = send_deliveries(url, KEY, [_delivery(), _delivery(duplicate=True)], on_progress=progress.append)
    assert (report.deliveries, report.duplicate_sends, sum(progress)) == (2, 1, 2)


def test_an_unreachable_collector_is_reported_after_the_retries():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    report = send_deliveries(f"http://127.0.0.1:{port}", KEY, [_delivery()], attempts=2)
    assert report.requests == 2
    assert report.failed_deliveries == 1 and "ConnectError" in report.errors[0]


def test_live_events_are_accepted_as_sent(collector):
    url, recorder = collector
    report = send_deliveries(url, KEY, live_events(["p000001", "p000002"], now_ms(), seed=1))
    assert report.accepted == 8 and report.errors == []
    assert {r["body"]["events"][0]["player_id"] for r in recorder.requests} == {"p000001", "p000002"}
