"""A Segment session sent by Segment's own library reaches silver, typed and deduplicated."""

from __future__ import annotations

import pytest
from segment.analytics import Client

from features.config import Settings
from pipelines import bronze, silver
from pipelines.session import table_path
from tests.test_vendor_segment import play_session
from tests.vendor_server import INGEST_KEY, serve, with_vendors

pytestmark = pytest.mark.spark


def test_segment_events_land_in_silver_once_each(spark, settings: Settings, monkeypatch):
    monkeypatch.setenv("PLAYERPULSE_TEST_GA_SECRET", "unused-here")
    vendor_settings = with_vendors(settings)
    with serve(vendor_settings) as url:
        client = Client(INGEST_KEY, host=url, gzip=True, sync_mode=True)
        play_session(client, "player-42")
        client.flush()
    bronze.run(spark, vendor_settings)
    silver.run(spark, vendor_settings, validate=False)
    rows = spark.read.format("delta").load(table_path(vendor_settings, silver.EVENTS_TABLE)).collect()
    quarantined = spark.read.format("delta").load(table_path(vendor_settings, silver.QUARANTINE_TABLE)).count()
    assert sorted(r.event_type for r in rows) == sorted(
        ["custom", "session_start", "level_up", "level_up", "store_view", "purchase"]
    )
    assert quarantined == 0
    assert {r.player_id for r in rows} == {"player-42"}
