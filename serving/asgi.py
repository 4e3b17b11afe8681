"""ASGI entry for uvicorn workers: ``serving.asgi:app`` built from PLAYERPULSE_ENV / PLAYERPULSE_WORKDIR."""

from __future__ import annotations

import os

from features.config import load_settings
from serving.app import create_app

app = create_app(load_settings(os.environ.get("PLAYERPULSE_ENV"), os.environ.get("PLAYERPULSE_WORKDIR")))
