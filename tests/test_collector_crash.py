"""kill -9 the collector under load: every event that got a 2xx is on the stream exactly once."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections import Counter

import httpx

from features.streams import decode_batch, open_stream
from playerpulse.gateway import Gateway
from tests_support import make_event

AUTH = {"Authorization": "Bearer pp-demo-key-local-only", "Content-Encoding": "gzip"}


def test_acknowledged_events_survive_a_kill_9_exactly_once(settings):
    acked: list[str] = []
    failed_requests = 0
    lock = threading.Lock()
    stop = threading.Event()
    gateway = Gateway(settings).start()

    def load(worker: int) -> None:
        nonlocal failed_requests
        with httpx.Client(base_url=gateway.url, headers=AUTH, timeout=5) as client:
            n = 0
            while not stop.is_set():
                events = [make_event(f"w{worker}-p{n % 7}") for _ in range(50)]
                n += 1
                try:
                    r = client.post("/v1/events", content=gzip.compress(json.dumps(events).encode()))
                except httpx.HTTPError:
                    with lock:
                        failed_requests += 1
                    time.sleep(0.01)
                    continue
                if r.status_code == 202:
                    assert r.json()["accepted"] == len(events)
                    with lock:
                        acked.extend(e["event_id"] for e in events)

    workers = [threading.Thread(target=load, args=(i,)) for i in range(6)]
    for w in workers:
        w.start()
    try:
        deadline = time.monotonic() + 30
        while len(acked) < 3000 and time.monotonic() < deadline:
            time.sleep(0.05)
        gateway.kill()
        time.sleep(0.5)
    finally:
        stop.set()
        for w in workers:
            w.join()
        gateway.stop()

    assert len(acked) >= 3000, "the load never got going"
    assert failed_requests > 0, "the kill did not interrupt any request"
    with open_stream(settings.stream) as stream:
        on_stream = Counter(e["event_id"] for r in stream.read_all() for e in decode_batch(r.data)[1])
    missing = [eid for eid in acked if eid not in on_stream]
    twice = [eid for eid in acked if on_stream[eid] != 1]
    assert not missing, f"{len(missing)} acknowledged events are not on the stream"
    assert not twice, f"{len(twice)} acknowledged events are on the stream more than once"
