"""The cloud profile under test: the shipped ``conf/aws.yaml`` and only the variables the README lists.

``cloud_settings`` sets the endpoint, bucket, stream and table names, key digests and the MLflow
tracking URI (credentials come from the ``aws_endpoint`` fixture's dummy ones), creates every
resource with ``infra create``'s code, and loads the configuration. ``learnable_history`` makes
a small world whose purchases follow store views, as the collector would have put it on the
stream day by day (``received_at`` a second after each event).
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from event_factory import event

from features.config import Settings, hash_api_key, load_settings
from playerpulse.infra_command import create_resources


@contextmanager
def cloud_settings(aws_endpoint: str, folder: Path) -> Iterator[tuple[Settings, dict[str, str]]]:
    """``conf/aws.yaml`` pointed at the local server, every resource created; settings and keys."""
    suffix = uuid.uuid4().hex[:8]
    keys = {"ingest": secrets.token_urlsafe(24), "serve": secrets.token_urlsafe(24)}
    env = {
        "PLAYERPULSE_AWS_ENDPOINT": aws_endpoint,
        "PLAYERPULSE_BUCKET": f"pp-lake-{suffix}",
        "PLAYERPULSE_KINESIS_STREAM": f"pp-events-{suffix}",
        "PLAYERPULSE_PROFILES_TABLE": f"pp-profiles-{suffix}",
        "PLAYERPULSE_INGEST_KEY_SHA256": hash_api_key(keys["ingest"]),
        "PLAYERPULSE_SERVE_KEY_SHA256": hash_api_key(keys["serve"]),
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        mp.delenv("PLAYERPULSE_SPARK_MASTER", raising=False)
        mp.delenv("MLFLOW_S3_ENDPOINT_URL", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        settings = load_settings("aws", folder / "var")
        create_resources(settings)
        yield settings, keys


def learnable_history(players: int, days: int, end: datetime, seed: int = 7) -> list[dict[str, Any]]:
    """Hand-made events for ``days`` full days before ``end``: each player has a daily number of
    store views, and the more views a day, the likelier a purchase the next day."""
    rng = random.Random(seed)
    start = end - timedelta(days=days)
    out: list[dict[str, Any]] = []
    for p in range(players):
        player = f"p{p:05d}"
        intent = rng.random()
        views_yesterday = 0
        for d in range(days):
            day = start + timedelta(days=d, hours=8 + rng.random() * 8)
            t = int(day.timestamp() * 1000)
            out.append(event("session_start", player, t))
            # about 17% of player-days buy: inside store_offer's declared label share (at most 25%)
            if rng.random() < 0.02 + 0.3 * min(views_yesterday / 4, 1.0):
                out.append(event("purchase", player, t + 30_000, properties={"sku": "gems_100", "price_usd": 4.99}))
            views = sum(rng.random() < intent for _ in range(4))
            for v in range(views):
                out.append(event("store_view", player, t + 60_000 * (v + 2)))
            views_yesterday = views
    out.sort(key=lambda e: (e["player_id"], e["event_time"]))
    return out


def midnight_today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
